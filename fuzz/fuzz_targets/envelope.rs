//! What arrives from Redis on a channel: sequenced and plain publications and presence
//! notices, decoded, then encoded for clients in both wire formats. Nothing may panic; what
//! decodes as a publication carries JSON data; a presence notice survives a round trip.

#![no_main]

use herald_protocol::{envelope::BrokerMessage, server, ChannelName, WireFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let channel = ChannelName::parse("fuzz:channel").expect("a valid name");
    match BrokerMessage::decode(data) {
        Ok(BrokerMessage::Publication(envelope)) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(&envelope.data)
                .expect("publication data is JSON");
            for format in [WireFormat::Json, WireFormat::MsgPack] {
                let _ = server::push(
                    format,
                    &channel,
                    &envelope.data,
                    envelope.offset,
                    envelope.event.as_ref(),
                );
            }
        }
        Ok(BrokerMessage::Presence(notice)) => {
            let again = herald_protocol::presence::PresenceNotice::from_broker(&notice.to_broker())
                .expect("an encoded notice decodes");
            assert_eq!(again, notice);
            for format in [WireFormat::Json, WireFormat::MsgPack] {
                let _ = server::presence(format, &channel, &notice);
            }
        }
        Err(_) => {}
    }
});

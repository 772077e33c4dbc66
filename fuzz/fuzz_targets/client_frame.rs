//! Client input as it arrives off the wire: WebSocket frames in arbitrary chunks, then each
//! message decoded as a request in both wire formats. Nothing may panic, and a frame may never
//! make the decoder hold more than the message limit.

#![no_main]

use bytes::BytesMut;
use herald_protocol::{
    client::ClientRequest,
    ws::{Decoder, Message},
    WireFormat,
};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // Every message, whole, in both formats.
    let _ = ClientRequest::decode(WireFormat::Json, data);
    let _ = ClientRequest::decode(WireFormat::MsgPack, data);

    // The same bytes as a stream of frames, fed in chunks whose size the first byte picks.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new(MAX);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Message::Text(m))) => {
                    assert!(m.len() <= MAX);
                    assert!(std::str::from_utf8(&m).is_ok());
                    let _ = ClientRequest::decode(WireFormat::Json, &m);
                }
                Ok(Some(Message::Binary(m))) => {
                    assert!(m.len() <= MAX);
                    let _ = ClientRequest::decode(WireFormat::MsgPack, &m);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});

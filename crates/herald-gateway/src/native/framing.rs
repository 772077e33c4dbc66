//! How the hub frames what it fans out to native connections, in JSON or MessagePack.

use bytes::Bytes;
use herald_broker::Publication;
use herald_protocol::{presence::PresenceNotice, server, ChannelName, Epoch, WireFormat};

use crate::hub::Framing;

/// The native encoders of one wire format.
pub(crate) struct NativeFraming(pub(crate) WireFormat);

impl Framing for NativeFraming {
    fn publication(&self, p: &Publication) -> Option<Bytes> {
        server::push(self.0, &p.channel, &p.data, p.offset, p.event.as_ref())
            .inspect_err(|e| {
                tracing::warn!(channel = %p.channel, error = %e, "undeliverable publication");
            })
            .ok()
    }

    fn presence(&self, channel: &ChannelName, notice: &PresenceNotice) -> Option<Bytes> {
        Some(server::presence(self.0, channel, notice))
    }

    fn gap(
        &self,
        channel: &ChannelName,
        reason: &str,
        missing: Option<(u64, u64)>,
        epoch: Option<&Epoch>,
    ) -> Option<Bytes> {
        let missing = missing.map(|(from, to)| server::Missing { from, to });
        Some(server::gap(
            self.0,
            channel,
            reason,
            missing,
            epoch.map(Epoch::as_str),
        ))
    }
}

//! How the hub frames what it fans out, per wire format: a table the node fills with each
//! protocol's encoders, so that the hub knows no protocol itself.

use std::sync::Arc;

use bytes::Bytes;
use herald_broker::Publication;
use herald_protocol::{presence::PresenceNotice, ChannelName, Epoch, WireFormat};

/// One protocol's encoders. Each is called at most once per fan-out and format: the bytes are
/// shared by every subscriber of that format. `None`: the protocol sends nothing for it.
pub(crate) trait Framing: Send + Sync {
    /// A publication as a push.
    fn publication(&self, publication: &Publication) -> Option<Bytes>;

    /// A member joined or left a presence channel.
    fn presence(&self, channel: &ChannelName, notice: &PresenceNotice) -> Option<Bytes>;

    /// Publications of `channel` may have been missed (`missing`: the offsets, when known).
    fn gap(
        &self,
        channel: &ChannelName,
        reason: &str,
        missing: Option<(u64, u64)>,
        epoch: Option<&Epoch>,
    ) -> Option<Bytes>;

    /// A member's own connections hear of its joins too (otherwise they are left out, as in
    /// Pusher's protocol).
    fn tells_own_joins(&self) -> bool {
        true
    }

    /// The publication ends its subscribers' connections of this format instead of reaching
    /// them (a Pusher user's termination).
    fn terminates(&self, _publication: &Publication) -> bool {
        false
    }
}

/// The encoders of every wire format, indexed by [`WireFormat::index`].
#[derive(Clone)]
pub(crate) struct Framings([Arc<dyn Framing>; WireFormat::ALL.len()]);

impl Framings {
    /// A table of `json` for [`WireFormat::Json`], and so on.
    pub(crate) fn new(
        json: Arc<dyn Framing>,
        msgpack: Arc<dyn Framing>,
        pusher: Arc<dyn Framing>,
        sse: Arc<dyn Framing>,
    ) -> Self {
        debug_assert_eq!(
            WireFormat::ALL.map(WireFormat::index),
            [0, 1, 2, 3],
            "the table is in WireFormat::index order"
        );
        Self([json, msgpack, pusher, sse])
    }
}

impl std::ops::Index<WireFormat> for Framings {
    type Output = dyn Framing;

    fn index(&self, format: WireFormat) -> &Self::Output {
        &*self.0[format.index()]
    }
}

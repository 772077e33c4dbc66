//! Herald's subscription registry and fan-out planning, with no I/O.
//!
//! A [`HubShard`] owns the subscriptions of the channels that hash to it. It takes commands
//! (subscribe, unsubscribe, disconnect, a broker's answer, a publication) and returns
//! [`Action`]s for the runtime to carry out: subscribe or unsubscribe a channel in the broker,
//! answer a waiting subscribe request. Publications are pushed straight into each subscriber's
//! [`Sink`], which never waits: a full sink evicts its connection.
//!
//! Depends only on herald-protocol, bytes and indexmap; never on tokio or any I/O crate, so the
//! whole of it is tested deterministically with a fake sink.

pub mod recovery;
mod shard;

pub use shard::{Action, Fanout, HubShard, Settlement};

use bytes::Bytes;
use herald_protocol::WireFormat;

/// What happened to a frame pushed into a [`Sink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued for the connection's writer.
    Queued,
    /// The queue was full: the sink has marked its connection for eviction as a slow consumer.
    Evicted,
    /// The connection is already closing; the frame was dropped.
    Closed,
}

/// A connection's outbound queue, as the hub sees it.
pub trait Sink: Clone {
    /// The wire format the connection speaks.
    fn format(&self) -> WireFormat;
    /// Queues a complete frame without waiting.
    fn push(&self, frame: &Bytes) -> Push;
    /// [`Sink::push`] of a publication's frame, at `offset` in its channel (for a sink that
    /// holds frames back and must tell them apart, [`recovery`]).
    fn push_at(&self, frame: &Bytes, offset: Option<u64>) -> Push {
        let _ = offset;
        self.push(frame)
    }
    /// Ends the connection without waiting: the application terminated it (a user's
    /// connections, for instance). It closes after what is already queued, and takes no more.
    fn terminate(&self);
}

/// Which shard of `shards` owns `channel`. Stable for the life of the process.
pub fn shard_of(channel: &herald_protocol::ChannelName, shards: usize) -> usize {
    // FNV-1a: cheap, and channel names are not attacker-chosen keys of a map here.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

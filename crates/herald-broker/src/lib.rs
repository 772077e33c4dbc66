//! The Broker: how publications travel between gateway nodes.
//!
//! A node publishes through [`Broker::publish`], subscribes the channels it has local
//! subscribers for with [`Broker::subscribe`], and receives every publication of those
//! channels, its own included, through the [`Inbox`] it gave the broker. There is one delivery
//! path whatever the origin.
//!
//! This crate holds the trait and the embedded [`MemoryBus`], the default when no Redis is
//! configured; several in-process nodes can join one bus, which is how tests run a cluster
//! without Redis. It may depend on tokio, never on hyper or the WebSocket crates.

mod history;
mod memory;

use std::{future::Future, pin::Pin, sync::Arc};

use bytes::Bytes;
use herald_protocol::{
    presence::PresenceNotice, ChannelName, ConnAddress, Epoch, EventName, MessageId, TraceParent,
};

pub use history::{History, HistoryKeep, HistoryQuery};
pub use memory::{MemoryBroker, MemoryBus};

/// A boxed future, as returned by the object-safe [`Broker`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One publication, as every node receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The channel.
    pub channel: ChannelName,
    /// The data, as JSON text (validated at the edge it came in through).
    pub data: Bytes,
    /// The channel's sequence number for it, the same on every node; `None` for publications
    /// that bypassed sequencing.
    pub offset: Option<u64>,
    /// The publication's id.
    pub id: MessageId,
    /// When the broker sequenced it, in microseconds since the Unix epoch (the broker's clock),
    /// when it says.
    pub published_at_us: Option<u64>,
    /// The trace context of a publication sampled for tracing, from the node that published
    /// it.
    pub trace: Option<TraceParent>,
    /// The event name, when the publisher gave one.
    pub event: Option<EventName>,
    /// A connection that must not receive it (its sender).
    pub exclude: Option<ConnAddress>,
    /// The user id of the client that sent it (a Pusher client event on a presence channel).
    pub user: Option<String>,
    /// The epoch of the channel's sequence, when the broker says (see
    /// [`herald_protocol::position`]).
    pub epoch: Option<Epoch>,
    /// Published straight into Redis by an application, not through a Herald node.
    pub direct: bool,
}

/// What rides along with a publication besides its data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishMeta {
    /// The publish's trace context, when it is sampled.
    pub trace: Option<TraceParent>,
    /// The event name (what Pusher clients bind to).
    pub event: Option<EventName>,
    /// A connection that must not receive it (its sender).
    pub exclude: Option<ConnAddress>,
    /// The user id of the client that sent it, for its receivers (Pusher's `user_id` on a
    /// presence channel's client events).
    pub user: Option<String>,
    /// Keep it as the channel's last publication for [`CACHE_TTL`], for [`Broker::last`] (a
    /// Pusher `cache-` channel).
    pub cache: bool,
    /// How much of the channel's history to keep (the channel's namespace says).
    pub history: HistoryKeep,
}

/// How long a channel's last publication is kept when published with
/// [`PublishMeta::cache`] (Pusher's 30 minutes).
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What the broker says of an accepted publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The publication's id.
    pub id: MessageId,
    /// Its offset in the channel.
    pub offset: Option<u64>,
    /// The epoch its offset counts in.
    pub epoch: Option<Epoch>,
}

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker cannot be reached or is not ready; retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(&'static str),
    /// The request was sent but its answer did not come (timeout, or the connection broke):
    /// it may or may not have taken effect.
    #[error("outcome unknown: {0}")]
    Uncertain(&'static str),
    /// The broker refused the operation: its error reply (a Redis error's text).
    #[error("broker refused: {0}")]
    Refused(String),
    /// The broker answered with something the command never returns (the command named).
    #[error("broker refused: unexpected reply to {0}")]
    Unexpected(&'static str),
    /// Data the broker keeps (a cache channel's last publication) could not be read.
    #[error("broker refused: the kept publication is malformed: {0}")]
    Malformed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The broker was shut down.
    #[error("broker closed")]
    Closed,
}

/// Where a broker delivers the publications of the channels a node subscribed.
pub trait Inbox: Send + Sync + 'static {
    /// Takes one publication. The broker awaits this: a slow inbox slows the broker down
    /// rather than making anything queue without bound.
    fn deliver(&self, publication: Publication) -> BoxFuture<'_, ()>;

    /// The node's subscription to `channel` was lost for a while and is live again:
    /// publications may have been missed. Every local subscriber must be told.
    fn gap(&self, channel: ChannelName, reason: &'static str) -> BoxFuture<'_, ()>;

    /// A member joined or left presence channel `channel`, cluster-wide. Every local
    /// subscriber must be told.
    fn presence(&self, channel: ChannelName, notice: PresenceNotice) -> BoxFuture<'_, ()>;

    /// Presence notices of any channel may have been missed (they travel on a connection of
    /// their own, which was lost and is back). The default does nothing: brokers that carry
    /// notices on each channel's own subscription report such losses as gaps.
    fn presence_lost(&self, reason: &'static str) -> BoxFuture<'_, ()> {
        let _ = reason;
        Box::pin(async {})
    }
}

/// Counters a broker keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Messages received from the broker that were not valid envelopes (dropped).
    pub malformed: u64,
    /// Connections to the broker re-established after a loss.
    pub reconnects: u64,
    /// Channels announced as gaps to the inbox.
    pub gaps: u64,
    /// Writes on the publish connection(s).
    pub publish_writes: u64,
    /// Publish commands sent (many per write when pipelined under load).
    pub publish_commands: u64,
}

impl BrokerStats {
    /// The sum of two sets of counters.
    pub fn plus(self, other: Self) -> Self {
        Self {
            malformed: self.malformed + other.malformed,
            reconnects: self.reconnects + other.reconnects,
            gaps: self.gaps + other.gaps,
            publish_writes: self.publish_writes + other.publish_writes,
            publish_commands: self.publish_commands + other.publish_commands,
        }
    }
}

/// An inbox that drops what it is given: for a broker used only to publish or to read
/// (a tool, a test).
pub struct Discard;

impl Inbox for Discard {
    fn deliver(&self, _: Publication) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn gap(&self, _: ChannelName, _: &'static str) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn presence(&self, _: ChannelName, _: PresenceNotice) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A node's link to the other nodes.
///
/// Subscribe and unsubscribe calls take effect in the order they are made: the request is
/// issued when the method is called, and the returned future only waits for its answer. That
/// is what lets the hub unsubscribe and resubscribe a channel without racing itself.
pub trait Broker: Send + Sync + 'static {
    /// Sequences `data` in `channel` and delivers it to every subscribed node, with `meta`
    /// (trace context, event name) riding along.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the broker cannot take the publication now.
    fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        meta: PublishMeta,
    ) -> BoxFuture<'static, Result<Published, BrokerError>>;

    /// Starts delivering `channel`'s publications to this node's inbox.
    ///
    /// # Errors
    /// [`BrokerError`] when the subscription could not be made; nothing is delivered then.
    fn subscribe(&self, channel: &ChannelName) -> BoxFuture<'static, Result<(), BrokerError>>;

    /// Stops delivering `channel`'s publications to this node.
    fn unsubscribe(&self, channel: &ChannelName);

    /// The channels whose name starts with `prefix` that some node of the cluster subscribes
    /// now (the channels with subscribers anywhere), in no particular order.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be asked.
    fn occupied(&self, prefix: &str) -> BoxFuture<'static, Result<Vec<ChannelName>, BrokerError>>;

    /// The last publication of `channel` kept with [`PublishMeta::cache`] within
    /// [`CACHE_TTL`], if any.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be asked.
    fn last(
        &self,
        channel: &ChannelName,
    ) -> BoxFuture<'static, Result<Option<Publication>, BrokerError>>;

    /// The channel's history: where its stream stands, and what `query` asks of the
    /// publications kept (see [`PublishMeta::history`]).
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be asked.
    fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, BrokerError>>;

    /// Starts a new epoch of `channel`'s sequence, if `seen` is still its epoch: a node saw
    /// the sequence go back within it (a failover that lost acknowledged writes), so offsets
    /// of `seen` no longer name one publication each. Brokers whose sequences never go back
    /// do nothing.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be asked.
    fn new_epoch(
        &self,
        channel: &ChannelName,
        seen: &Epoch,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        let _ = (channel, seen);
        Box::pin(async { Ok(()) })
    }

    /// Whether the broker can take publications now (feeds `/readyz`).
    fn is_ready(&self) -> bool;

    /// The broker's counters.
    fn stats(&self) -> BrokerStats;
}

/// A shared, type-erased broker.
pub type SharedBroker = Arc<dyn Broker>;

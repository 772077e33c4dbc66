//! What a protocol session sees of the world: its connection ([`Peer`]: its id, its queue,
//! the channels it asked for, its publish rate) and its node ([`Env`]: configuration, the hub,
//! the broker, presence). Sessions (`native`, `pusher`) are written against these, so that
//! each is unit-tested with a fake node: requests in, replies and hub commands out.

mod rate;

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use herald_broker::{BrokerError, History, HistoryQuery, PublishMeta, Published};
use herald_presence_core::UserId;
use herald_protocol::{presence::Member, ChannelName, ConnId, EventName};
use herald_pusher::webhook;

use crate::{
    auth::Auth, config::GatewayConfig, hub::SubscribeRequest, metrics::Metrics, outbound::Outbound,
    presence::StoreError, telemetry::PublishPath,
};
use rate::RateBucket;

/// What a session asks of its node.
pub(crate) trait Env: Send + Sync {
    fn config(&self) -> &GatewayConfig;
    fn metrics(&self) -> &Metrics;
    fn auth(&self) -> &Auth;
    /// The event name Pusher clients see for a publication without one
    /// (`pusher.default_event`).
    fn default_event(&self) -> &EventName;
    /// This node's tag in connection addresses (a publication's excluded sender).
    fn node_tag(&self) -> u32;
    /// The hub shard of `channel`.
    fn shard_index(&self, channel: &ChannelName) -> usize;
    /// Subscribes `conn` to `channel` for `request`.
    fn subscribe(
        &self,
        conn: ConnId,
        channel: ChannelName,
        request: &Arc<SubscribeRequest>,
    ) -> impl Future<Output = ()> + Send;
    /// Unsubscribes `conn` from `channel`; `member` is the user it leaves the channel's
    /// presence as, if it is one.
    fn unsubscribe(
        &self,
        conn: ConnId,
        channel: ChannelName,
        member: Option<UserId>,
    ) -> impl Future<Output = ()> + Send;
    /// Resolves once every shard in `shards` (a set of [`crate::hub::Hub::shard_bit`]s) has
    /// handled what was sent to it before.
    fn sync(&self, shards: u64) -> impl Future<Output = ()> + Send;
    /// Publishes a client's publication.
    fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        path: PublishPath,
        meta: PublishMeta,
    ) -> impl Future<Output = Result<Published, BrokerError>> + Send;
    /// Reads `channel`'s history.
    fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<History, BrokerError>> + Send;
    /// The members of presence channel `channel`, cluster-wide.
    fn members(
        &self,
        channel: &ChannelName,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;
    /// How many members `channel` has, cluster-wide.
    fn member_count(
        &self,
        channel: &ChannelName,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Whether some webhook wants events of `kind`.
    fn wants_webhook(&self, kind: webhook::EventKind) -> bool;
    /// Queues a webhook event.
    fn emit_webhook(&self, event: webhook::Event);
}

/// A close a session asks the socket loop for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// A close code and reason of the protocol's own (a Pusher refusal).
    Wire { code: u16, reason: String },
}

/// A session's connection: what both protocols keep per connection.
pub(crate) struct Peer {
    pub(crate) id: ConnId,
    /// Where replies and pushes go, in order.
    pub(crate) outbound: Outbound,
    /// Shards this connection subscribed in (bit `i % 64` for shard `i`): each is told when
    /// it ends.
    pub(crate) shards: u64,
    /// Channels asked for and not left (`limits.max_subscriptions`): a short list per
    /// connection, searched linearly.
    pub(crate) subscribed: Vec<ChannelName>,
    /// Publications allowed now (`limits.publish_rate` or a Pusher app's client event rate);
    /// made on the first publish.
    publish_bucket: Option<Box<RateBucket>>,
}

impl Peer {
    pub(crate) fn new(id: ConnId, outbound: Outbound) -> Self {
        Self {
            id,
            outbound,
            shards: 0,
            subscribed: Vec::new(),
            publish_bucket: None,
        }
    }

    /// Takes one of the `rate` publications per second this connection may send; false, and
    /// counted as a limit hit, when none is left.
    pub(crate) fn take_publish_token(&mut self, rate: u32, metrics: &Metrics) -> bool {
        let now = std::time::Instant::now();
        let bucket = self
            .publish_bucket
            .get_or_insert_with(|| Box::new(RateBucket::full(rate, now)));
        let taken = bucket.take(rate, now);
        if !taken {
            metrics.families.limit_hits.inc("publish_rate");
        }
        taken
    }

    /// Counts `channel` among those asked for, unless it is already: false (and counted as
    /// a limit hit) when that would pass `max` (`limits.max_subscriptions`).
    pub(crate) fn claim_subscription(
        &mut self,
        channel: &ChannelName,
        max: usize,
        metrics: &Metrics,
    ) -> bool {
        if self.subscribed.contains(channel) {
            return true;
        }
        if self.subscribed.len() >= max {
            metrics.families.limit_hits.inc("max_subscriptions");
            return false;
        }
        self.subscribed.push(channel.clone());
        true
    }

    /// Ends the connection's place in the hub: its queue takes no more, and every shard it
    /// subscribed in forgets it (with `presence`, making it leave the presence channels it is
    /// in there: after the joins that shard made for it, whatever their timing).
    pub(crate) async fn leave(&self, hub: &crate::hub::Hub, presence: bool) {
        self.outbound.close();
        for shard in hub.shards_in(self.shards) {
            hub.disconnect(self.id, shard, presence).await;
        }
    }

    /// Subscribes to `channel` in its shard for `request`, and remembers the shard.
    pub(crate) async fn subscribe(
        &mut self,
        env: &impl Env,
        channel: ChannelName,
        request: &Arc<SubscribeRequest>,
    ) {
        self.shards |= crate::hub::Hub::shard_bit(env.shard_index(&channel));
        env.subscribe(self.id, channel, request).await;
    }
}

#[cfg(test)]
pub(crate) mod fake;

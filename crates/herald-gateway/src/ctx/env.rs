//! The node as its protocol sessions see it.

use std::sync::Arc;

use bytes::Bytes;
use herald_broker::{BrokerError, History, HistoryQuery, PublishMeta, Published};
use herald_presence_core::UserId;
use herald_protocol::{presence::Member, ChannelName, ConnId, EventName};
use herald_pusher::webhook;

use super::NodeCtx;
use crate::{
    auth::Auth, config::GatewayConfig, hub::SubscribeRequest, metrics::Metrics, peer::Env,
    presence::StoreError, telemetry::PublishPath,
};

impl Env for NodeCtx {
    fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn auth(&self) -> &Auth {
        &self.auth
    }

    fn default_event(&self) -> &EventName {
        &self.pusher_event
    }

    fn node_tag(&self) -> u32 {
        self.node_id.tag()
    }

    fn shard_index(&self, channel: &ChannelName) -> usize {
        self.hub.shard_index(channel)
    }

    async fn subscribe(&self, conn: ConnId, channel: ChannelName, request: &Arc<SubscribeRequest>) {
        self.hub.subscribe(conn, channel, request).await;
    }

    async fn unsubscribe(&self, conn: ConnId, channel: ChannelName, member: Option<UserId>) {
        self.hub.unsubscribe(conn, channel, member).await;
    }

    async fn sync(&self, shards: u64) {
        for shard in self.hub.shards_in(shards) {
            self.hub.sync(shard).await;
        }
    }

    async fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        path: PublishPath,
        meta: PublishMeta,
    ) -> Result<Published, BrokerError> {
        NodeCtx::publish(self, channel, data, path, None, meta).await
    }

    async fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> Result<History, BrokerError> {
        self.broker.history(channel, query).await
    }

    async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, StoreError> {
        self.presence.members(channel).await
    }

    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        self.presence.count(channel).await
    }

    fn wants_webhook(&self, kind: webhook::EventKind) -> bool {
        self.webhooks.as_ref().is_some_and(|h| h.wants(kind))
    }

    fn emit_webhook(&self, event: webhook::Event) {
        if let Some(hooks) = &self.webhooks {
            hooks.emit(event);
        }
    }
}

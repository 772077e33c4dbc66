//! What every task of a node shares: the configuration, the hub, the broker, presence,
//! metrics, and the publish path every way in (HTTP, client, Pusher) takes. Serves nothing:
//! the node (`node.rs`) builds it, and the listeners (`api`, `ws`) use it.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc,
};

use herald_broker::SharedBroker;
use herald_protocol::{ChannelName, ConnId, EventName, NodeId, TraceParent};

use crate::{
    auth::Auth,
    config::GatewayConfig,
    hub::Hub,
    metrics::Metrics,
    presence::Presence,
    telemetry::{PublishPath, Telemetry},
    webhooks::Webhooks,
};

/// What every task of a node shares.
pub(crate) struct NodeCtx {
    pub(crate) config: GatewayConfig,
    /// The process's identity in the cluster (presence leases, connection tags).
    pub(crate) node_id: NodeId,
    /// The node's name in logs and traces: `node.id`, else `node_id`.
    pub(crate) node_name: String,
    pub(crate) hub: Hub,
    pub(crate) broker: SharedBroker,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) presence: Arc<Presence>,
    pub(crate) auth: Auth,
    /// wss: set when `websocket.tls_cert_file` is.
    pub(crate) tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Traces of publications (a no-op unless `telemetry.otlp_endpoint` is set).
    pub(crate) telemetry: Arc<Telemetry>,
    /// The event name Pusher clients see for a publication without one.
    pub(crate) pusher_event: EventName,
    /// Pusher webhooks, when some app has one.
    pub(crate) webhooks: Option<Arc<Webhooks>>,
    pub(crate) draining: AtomicBool,
    pub(crate) next_conn: AtomicU64,
    /// Connections admitted and not yet ended (`limits.max_connections`).
    pub(crate) slots: AtomicUsize,
    /// Pusher connections per app (`pusher.apps[].max_connections`).
    pub(crate) app_slots: Arc<[AtomicUsize]>,
    /// The node's connections, and the other nodes it heard from.
    pub(crate) cluster: Arc<crate::cluster::Cluster>,
}

mod env;

/// One of the node's connection slots, held by a connection from its upgrade to its end.
pub(crate) struct ConnectionSlot(Arc<NodeCtx>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.slots.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One of a Pusher app's connection slots on this node (`pusher.apps[].max_connections`),
/// held by the connection and given back when it is dropped.
pub(crate) struct AppSlot(Arc<[AtomicUsize]>, usize);

impl Drop for AppSlot {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

impl NodeCtx {
    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Ready for traffic: not draining, the broker takes publications, and the node hears
    /// the other nodes (the control channel is subscribed).
    pub(crate) fn is_ready(&self) -> bool {
        !self.is_draining() && self.broker.is_ready() && self.cluster.is_listening()
    }

    /// Publishes through the broker, timing the round trip (`herald_broker_publish_seconds`,
    /// failures included), counting it by `path` when it is accepted, and tracing it when it
    /// is sampled (as a child of `parent`, an HTTP request's `traceparent`, when given), with
    /// `meta`'s event name and excluded connection (its trace context is set here).
    pub(crate) async fn publish(
        &self,
        channel: ChannelName,
        data: bytes::Bytes,
        path: PublishPath,
        parent: Option<&TraceParent>,
        mut meta: herald_broker::PublishMeta,
    ) -> Result<herald_broker::Published, herald_broker::BrokerError> {
        let span = self.telemetry.publish_span(parent, &channel, path);
        meta.trace = span.as_ref().map(|s| s.trace.clone());
        // A Pusher `cache-` channel keeps its last publication for subscribers to come.
        // The history its namespace keeps (none for a channel of no namespace: a Pusher user's).
        meta.history = self
            .config
            .namespace_of(&channel)
            .map(|ns| ns.history())
            .unwrap_or_default();
        meta.cache = !self.config.pusher.apps.is_empty()
            && herald_pusher::PusherChannel::parse(channel.as_str()).is_ok_and(|c| c.is_cache());
        let started = std::time::Instant::now();
        let result = self.broker.publish(channel, data, meta).await;
        let us = started.elapsed().as_micros();
        self.metrics
            .broker_publish
            .record_us(us.try_into().unwrap_or(u64::MAX));
        if result.is_ok() {
            self.metrics.families.publications.inc(path.as_str());
        }
        if let Some(span) = span {
            span.finish(&result);
        }
        result
    }

    /// How the node stands, as `GET /v1/info` says.
    pub(crate) fn state(&self) -> crate::cluster::NodeState {
        use crate::cluster::NodeState;
        if self.is_draining() {
            NodeState::Draining
        } else if self.is_ready() {
            NodeState::Ready
        } else {
            NodeState::NotReady
        }
    }

    /// Takes one of the node's `limits.max_connections` slots, given back when the returned
    /// guard drops; `None` when the node is full.
    pub(crate) fn claim_slot(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.config.limits.max_connections;
        let held = self.slots.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectionSlot(self.clone());
        (held < max).then_some(slot)
    }

    /// Takes one of Pusher app `app`'s connection slots; `None` when the app is at its
    /// `max_connections` on this node.
    pub(crate) fn claim_app_slot(self: &Arc<Self>, app: usize) -> Option<AppSlot> {
        let max = self.config.pusher.apps[app]
            .max_connections
            .unwrap_or(usize::MAX);
        let held = self.app_slots[app].fetch_add(1, Ordering::Relaxed);
        let slot = AppSlot(self.app_slots.clone(), app);
        (held < max).then_some(slot)
    }
}

//! A node for the sessions' unit tests: it records what a session asks of it, and settles
//! each subscription at once, as a hub whose broker says yes. Presence is real: an embedded
//! table, as a node without Redis has.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use herald_broker::{BrokerError, History, HistoryQuery, MemoryBus, PublishMeta, Published};
use herald_presence_core::UserId;
use herald_protocol::{
    presence::Member, ChannelName, ConnId, EventName, MessageId, NodeId, WireFormat,
};
use herald_pusher::webhook;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Env, Peer};
use crate::{
    auth::Auth,
    config::GatewayConfig,
    hub::{Reads, SubscribeRequest},
    metrics::Metrics,
    outbound::Outbound,
    presence::{Presence, Store, StoreError},
    telemetry::PublishPath,
};

/// What a session asked of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Subscribe(String),
    /// A channel left, and the member it leaves as.
    Unsubscribe(String, Option<String>),
    /// A wait for the shards in the set.
    Sync(u64),
    Publish {
        channel: String,
        data: String,
        event: Option<String>,
        /// The sender is left out.
        excluded: bool,
        user: Option<String>,
    },
}

pub(crate) struct FakeEnv {
    config: GatewayConfig,
    pub(crate) metrics: Metrics,
    auth: Auth,
    default_event: EventName,
    reads: Reads,
    pub(crate) calls: Mutex<Vec<Call>>,
    /// Publishes fail with this, when set.
    pub(crate) publish_error: Mutex<Option<BrokerError>>,
    /// Webhook events of the kinds in `wanted`, as queued.
    pub(crate) webhooks: Mutex<Vec<webhook::Event>>,
    pub(crate) wanted: Vec<webhook::EventKind>,
    _stop: tokio_util::sync::DropGuard,
}

impl FakeEnv {
    /// A node of `config` (in a tokio runtime: presence runs a task).
    pub(crate) fn new(config: GatewayConfig) -> Self {
        let stop = CancellationToken::new();
        let lease = Duration::from_secs(30);
        let store = Store::embedded(lease, Arc::new(herald_broker::Discard), None);
        let presence = Presence::start(
            NodeId::random(),
            store,
            false,
            (lease, Duration::from_secs(10)),
            Arc::new(Metrics::default()),
            stop.clone(),
            &TaskTracker::new(),
        );
        let broker = Arc::new(MemoryBus::new().join(Arc::new(herald_broker::Discard)));
        Self {
            auth: Auth::new(&config.auth, config.presence.max_info_size).expect("auth"),
            default_event: EventName::parse(&config.pusher.default_event).expect("event"),
            config,
            metrics: Metrics::default(),
            reads: Reads {
                presence,
                history: crate::hub::HistoryReads::new(
                    broker.clone(),
                    Arc::new(Metrics::default()),
                ),
                broker,
            },
            calls: Mutex::new(Vec::new()),
            publish_error: Mutex::new(None),
            webhooks: Mutex::new(Vec::new()),
            wanted: Vec::new(),
            _stop: stop.drop_guard(),
        }
    }

    /// What the session asked, since the last call.
    pub(crate) fn calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// The connections of `user` in `channel`'s presence, on this node.
    pub(crate) fn members_here(&self, channel: &str, user: &str) -> Vec<ConnId> {
        let channel = ChannelName::parse(channel).unwrap();
        self.reads.presence.conns_of(&channel, user)
    }

    /// The broker history reads go to (publish into it to give a channel history).
    pub(crate) fn broker(&self) -> &herald_broker::SharedBroker {
        &self.reads.broker
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Env for FakeEnv {
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
        &self.default_event
    }
    fn node_tag(&self) -> u32 {
        7
    }
    fn shard_index(&self, channel: &ChannelName) -> usize {
        herald_hub::shard_of(channel, 4)
    }
    async fn subscribe(&self, _: ConnId, channel: ChannelName, request: &Arc<SubscribeRequest>) {
        self.record(Call::Subscribe(channel.to_string()));
        request.settle(&channel, Ok(true), &self.reads);
    }
    async fn unsubscribe(&self, _: ConnId, channel: ChannelName, member: Option<UserId>) {
        let member = member.map(|m| m.as_str().to_owned());
        self.record(Call::Unsubscribe(channel.to_string(), member));
    }
    async fn sync(&self, shards: u64) {
        self.record(Call::Sync(shards));
    }
    async fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        _: PublishPath,
        meta: PublishMeta,
    ) -> Result<Published, BrokerError> {
        self.record(Call::Publish {
            channel: channel.to_string(),
            data: String::from_utf8_lossy(&data).into_owned(),
            event: meta.event.map(|e| e.as_str().to_owned()),
            excluded: meta.exclude.is_some(),
            user: meta.user,
        });
        match self.publish_error.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(Published {
                id: MessageId::new(),
                offset: None,
                epoch: None,
            }),
        }
    }
    async fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> Result<History, BrokerError> {
        self.reads.broker.history(channel, query).await
    }
    async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, StoreError> {
        self.reads.presence.members(channel).await
    }
    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        self.reads.presence.count(channel).await
    }
    fn wants_webhook(&self, kind: webhook::EventKind) -> bool {
        self.wanted.contains(&kind)
    }
    fn emit_webhook(&self, event: webhook::Event) {
        self.webhooks.lock().unwrap().push(event);
    }
}

/// A connection of `format` for a session under test.
pub(crate) fn peer(format: WireFormat) -> Peer {
    Peer::new(ConnId(1), Outbound::new(format, 1 << 20))
}

/// Waits (at most a second) until `peer`'s last request is answered: a subscribe with
/// channels that keep history replies from a task, once their positions are read.
pub(crate) async fn replied(peer: &Peer) {
    for _ in 0..1000 {
        if !peer.outbound.awaiting_reply() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no reply within a second");
}

/// The payloads of the frames queued for `peer` since the last call (server frames are
/// unmasked: a header of 2, 4 or 10 bytes).
pub(crate) fn sent(peer: &Peer) -> Vec<Bytes> {
    let mut frames = VecDeque::new();
    peer.outbound.take(&mut frames);
    frames
        .into_iter()
        .map(|f| {
            let skip = match f[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            f.slice(skip..)
        })
        .collect()
}

/// The JSON payloads queued for `peer`.
pub(crate) fn sent_json(peer: &Peer) -> Vec<serde_json::Value> {
    sent(peer)
        .iter()
        .map(|p| serde_json::from_slice(p).expect("a JSON frame"))
        .collect()
}

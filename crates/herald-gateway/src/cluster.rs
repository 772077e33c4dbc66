//! The nodes as a cluster: a control channel every node subscribes, on which each says how it
//! stands (a heartbeat, for `GET /v1/info`) and the server API's disconnects and unsubscribes
//! reach every node; the node's connections by id and user ([`Registry`]), which those act
//! on. The control channel travels through the broker like any channel, so this works the
//! same on the embedded broker, Redis and Redis Cluster. It knows nothing of the node around
//! it but what it is given (the broker, the metrics, how the node stands), so that the node's
//! context can hold it.

mod control;
mod inbox;
mod nodes;
mod registry;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use herald_broker::{BrokerError, PublishMeta, SharedBroker};
use herald_presence_core::UserId;
use herald_protocol::{ChannelName, ConnAddress};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use control::{Control, NodeInfo, NodeState, Target as WireTarget};
pub(crate) use inbox::split;
use nodes::Nodes;
pub(crate) use registry::{Action, Registry, Target};

use crate::metrics::Metrics;

/// The channel nodes talk to each other on, in the namespace no configuration may name
/// ([`crate::config::RESERVED_NAMESPACE`]).
pub(crate) const CONTROL_CHANNEL: &str = "_herald:control";
/// How often a node says how it stands.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node not heard from for this long is left out of `GET /v1/info`.
pub(crate) const EXPIRY: Duration = Duration::from_secs(15);
/// How long to wait before subscribing the control channel again after a first failure
/// (the broker may still be connecting), doubling up to [`RETRY_MAX`].
const RETRY: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// What a node knows of the cluster and of its own connections.
pub(crate) struct Cluster {
    /// The node's connections.
    pub(crate) registry: Registry,
    /// The other nodes heard from.
    nodes: Nodes,
    broker: SharedBroker,
    metrics: Arc<Metrics>,
    /// The node's name (`node.id`, else its random id).
    name: String,
    /// The node's tag in connection addresses.
    tag: u32,
    /// When the node started, in seconds since the Unix epoch.
    started_at: u64,
    /// The control channel is subscribed: the node hears the server API (it is not ready
    /// before).
    listening: AtomicBool,
}

fn control_channel() -> ChannelName {
    ChannelName::parse(CONTROL_CHANNEL).expect("a valid channel name")
}

impl Cluster {
    pub(crate) fn new(broker: SharedBroker, metrics: Arc<Metrics>, name: String, tag: u32) -> Self {
        Self {
            registry: Registry::default(),
            nodes: Nodes::default(),
            broker,
            metrics,
            name,
            tag,
            started_at: herald_broker::now_us() / 1_000_000,
            listening: AtomicBool::new(false),
        }
    }

    /// Whether the node hears the control channel.
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Publishes `control` on the control channel, to every node (this one included).
    ///
    /// # Errors
    /// [`BrokerError`] when the broker does not take it.
    pub(crate) async fn send(&self, control: &Control) -> Result<(), BrokerError> {
        let data = serde_json::to_vec(control).expect("control messages always serialise");
        self.broker
            .publish(control_channel(), Bytes::from(data), PublishMeta::default())
            .await
            .map(|_| ())
    }

    /// How this node stands now, in `state`.
    pub(crate) fn own_info(&self, state: NodeState) -> NodeInfo {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        NodeInfo {
            id: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            connections: count(self.metrics.connections.get()),
            channels: count(self.metrics.channels.get()),
            subscriptions: count(self.metrics.subscriptions.get()),
            state,
        }
    }

    /// Every node heard from within [`EXPIRY`]: this one first (in `state`), then the others
    /// by id.
    pub(crate) fn nodes(&self, state: NodeState) -> Vec<NodeInfo> {
        let mut others: Vec<NodeInfo> = self
            .nodes
            .alive(Instant::now(), EXPIRY)
            .into_iter()
            .filter(|n| n.id != self.name)
            .collect();
        others.sort_by(|a, b| a.id.cmp(&b.id));
        std::iter::once(self.own_info(state))
            .chain(others)
            .collect()
    }

    /// Says how this node stands (`state`), to every node.
    pub(crate) async fn announce(&self, state: NodeState) {
        if let Err(e) = self.send(&Control::Node(self.own_info(state))).await {
            tracing::debug!(error = %e, "heartbeat not sent");
        }
    }

    async fn apply(&self, control: Control, state: NodeState) {
        match control {
            Control::Node(info) => {
                if info.id != self.name && self.nodes.heard(info, Instant::now()) {
                    // A newcomer learns of this node now rather than at its next heartbeat.
                    self.announce(state).await;
                }
            }
            Control::Gone { id } => self.nodes.forget(&id),
            Control::Disconnect { target, reconnect } => {
                if let Some(target) = self.local_target(&target) {
                    let action = Action::Disconnect { reconnect };
                    let n = self.registry.act(&target, &action);
                    tracing::debug!(?target, connections = n, "disconnect");
                }
            }
            Control::Unsubscribe { target, channel } => {
                let (Some(target), Ok(channel)) =
                    (self.local_target(&target), ChannelName::parse(&channel))
                else {
                    return;
                };
                let n = self.registry.act(&target, &Action::Leave(channel.clone()));
                tracing::debug!(?target, %channel, connections = n, "unsubscribe");
            }
        }
    }

    /// What `target` names on this node: a user, or a connection whose address is this
    /// node's.
    fn local_target(&self, target: &WireTarget) -> Option<Target> {
        if let Some(user) = &target.user {
            return UserId::parse(user).ok().map(Target::User);
        }
        let address = ConnAddress::parse(target.client.as_deref()?)?;
        (address.node == self.tag).then_some(Target::Conn(address.conn))
    }
}

/// The control task: subscribes the control channel, says how the node stands (`state`)
/// every [`HEARTBEAT`], and acts on what the other nodes and the server API send, until
/// `stop`; then says the node is gone.
pub(crate) async fn run(
    cluster: Arc<Cluster>,
    mut inbox: mpsc::Receiver<Control>,
    state: impl Fn() -> NodeState,
    stop: CancellationToken,
) {
    let channel = control_channel();
    let mut retry = RETRY;
    while let Err(e) = cluster.broker.subscribe(&channel).await {
        if retry >= RETRY_MAX {
            tracing::warn!(error = %e, "cannot subscribe the control channel; retrying");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
    cluster.listening.store(true, Ordering::Release);
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = beat.tick() => cluster.announce(state()).await,
            control = inbox.recv() => match control {
                Some(control) => cluster.apply(control, state()).await,
                None => break,
            },
        }
    }
    let gone = Control::Gone {
        id: cluster.name.clone(),
    };
    let _ = tokio::time::timeout(RETRY_MAX, cluster.send(&gone)).await;
}

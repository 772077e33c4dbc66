//! The cluster presence table a node reports to: in-process with the embedded broker, in Redis
//! otherwise.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use herald_broker::Inbox;
use herald_broker_redis::{JoinOutcome, PresenceError, RedisPresence};
use herald_presence_core::{Event, LocalChange, PresenceTable, UserId};
use herald_protocol::{
    presence::{Change, Member, PresenceNotice},
    ChannelName, NodeId,
};
use herald_pusher::webhook;

/// Where the embedded table's webhook events go (the node's webhooks, when it has some).
pub(crate) type EmitHook = Arc<dyn Fn(webhook::Event) + Send + Sync>;

/// Why the table could not be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The Redis table failed.
    #[error(transparent)]
    Redis(#[from] PresenceError),
}

/// The table in this process: the nodes on the embedded broker share it.
pub(crate) struct Embedded {
    table: Mutex<PresenceTable>,
    /// Which nodes have subscribers of which channels: a table of the same kind, whose one
    /// member per channel ([`OCCUPANT`]) is there while some node is.
    occupancy: Mutex<PresenceTable>,
    /// Each node's subscriber count per channel.
    subscriptions: Mutex<HashMap<NodeId, HashMap<ChannelName, usize>>>,
    started: Instant,
    /// Where notices go: the node's hub.
    hub: Arc<dyn Inbox>,
    webhooks: Option<EmitHook>,
}

/// The member of [`Embedded::occupancy`].
const OCCUPANT: &str = "*";

/// Where the table lives.
#[derive(Clone)]
pub(crate) enum Store {
    /// In this process; notices go straight to the hub.
    Embedded(Arc<Embedded>),
    /// In Redis; notices come back through the broker subscription.
    Redis(Arc<RedisPresence>),
}

impl Store {
    pub(crate) fn embedded(
        lease: Duration,
        hub: Arc<dyn Inbox>,
        webhooks: Option<EmitHook>,
    ) -> Self {
        let lease = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        Self::Embedded(Arc::new(Embedded {
            table: Mutex::new(PresenceTable::new(lease)),
            occupancy: Mutex::new(PresenceTable::new(lease)),
            subscriptions: Mutex::new(HashMap::new()),
            started: Instant::now(),
            hub,
            webhooks,
        }))
    }

    /// `node`'s subscriber counts of `counts`' channels now. False when the table does not
    /// know the node.
    pub(crate) async fn set_subscriptions(
        &self,
        node: NodeId,
        counts: &[(ChannelName, usize)],
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => {
                let mut all = e.subscriptions();
                let mine = all.entry(node).or_default();
                for (channel, n) in counts {
                    if *n == 0 {
                        mine.remove(channel);
                    } else {
                        mine.insert(channel.clone(), *n);
                    }
                }
                Ok(true)
            }
            Store::Redis(r) => Ok(r.set_subscriptions(node, counts).await?),
        }
    }

    /// Each of `channels`' subscriber count, summed over the nodes.
    pub(crate) async fn subscriptions(
        &self,
        channels: &[ChannelName],
    ) -> Result<Vec<u64>, StoreError> {
        match self {
            Store::Embedded(e) => {
                let all = e.subscriptions();
                Ok(channels
                    .iter()
                    .map(|c| all.values().filter_map(|m| m.get(c)).sum::<usize>() as u64)
                    .collect())
            }
            Store::Redis(r) => Ok(r.subscriptions(channels).await?),
        }
    }

    /// `node` has subscribers of `channel` now (`occupied`), or no longer. False when the
    /// table does not know the node.
    pub(crate) async fn occupancy(
        &self,
        node: NodeId,
        channel: &ChannelName,
        occupied: bool,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => {
                let now = e.now();
                let occupant = UserId::parse(OCCUPANT).expect("a valid id");
                let event = {
                    let mut table = e.occupancy();
                    if occupied {
                        table.join(node, channel.clone(), occupant, bytes::Bytes::new(), now)
                    } else {
                        table.leave(node, channel, &occupant, now)
                    }
                };
                e.occupancy_hooks(event.into_iter().collect());
                Ok(true)
            }
            Store::Redis(r) => Ok(r.occupancy(node, channel, occupied).await?),
        }
    }

    /// Reports one change of `node`. False when the table does not know the node: it must
    /// renew its lease and report everything again.
    pub(crate) async fn report(
        &self,
        node: NodeId,
        change: &LocalChange,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => {
                let now = e.now();
                let event = {
                    let mut table = e.table();
                    match change.clone() {
                        LocalChange::Joined {
                            channel,
                            user,
                            info,
                        } => table.join(node, channel, user, info, now),
                        LocalChange::Left { channel, user } => {
                            table.leave(node, &channel, &user, now)
                        }
                    }
                };
                e.deliver(event.into_iter().collect()).await;
                Ok(true)
            }
            Store::Redis(r) => {
                match change {
                    LocalChange::Joined {
                        channel,
                        user,
                        info,
                    } => Ok(r.join(node, channel, user.as_str(), info).await?
                        != JoinOutcome::UnknownNode),
                    LocalChange::Left { channel, user } => {
                        r.leave(node, channel, user.as_str()).await?;
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Renews `node`'s lease. False when the table did not know the node.
    pub(crate) async fn heartbeat(
        &self,
        node: NodeId,
        lease: Duration,
        hooks: bool,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(e) => {
                let now = e.now();
                let (known, events) = {
                    let mut table = e.table();
                    let known = table.heartbeat(node, now);
                    (known, table.expire(now))
                };
                let vacated = {
                    let mut table = e.occupancy();
                    table.heartbeat(node, now);
                    table.expire(now)
                };
                e.occupancy_hooks(vacated);
                e.deliver(events).await;
                Ok(known)
            }
            Store::Redis(r) => Ok(r.heartbeat_with(node, lease, hooks).await?),
        }
    }

    /// `node` leaves for good: its members leave now. Returns how many left their channel.
    pub(crate) async fn node_gone(&self, node: NodeId) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(e) => {
                let vacated = e.occupancy().node_gone(node);
                e.occupancy_hooks(vacated);
                e.subscriptions().remove(&node);
                let events = e.table().node_gone(node);
                let left = events.len() as u64;
                e.deliver(events).await;
                Ok(left)
            }
            Store::Redis(r) => Ok(r.node_gone(node).await?),
        }
    }

    pub(crate) async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, StoreError> {
        match self {
            Store::Embedded(e) => Ok(e
                .table()
                .members(channel)
                .iter()
                .map(|(user, info)| super::member(user, info))
                .collect()),
            Store::Redis(r) => Ok(r.members(channel).await?),
        }
    }

    pub(crate) async fn count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(e) => Ok(e.table().count(channel) as u64),
            Store::Redis(r) => Ok(r.count(channel).await?),
        }
    }
}

impl Embedded {
    fn table(&self) -> std::sync::MutexGuard<'_, PresenceTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscriptions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<NodeId, HashMap<ChannelName, usize>>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn occupancy(&self) -> std::sync::MutexGuard<'_, PresenceTable> {
        self.occupancy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the webhooks of channels becoming occupied or vacated.
    fn occupancy_hooks(&self, events: Vec<Event>) {
        let Some(hooks) = &self.webhooks else {
            return;
        };
        for event in events {
            let (occupied, channel) = match event {
                Event::Join { channel, .. } => (true, channel),
                Event::Leave { channel, .. } => (false, channel),
            };
            hooks(webhook::Event::occupancy(occupied, channel.as_str()));
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn deliver(&self, events: Vec<Event>) {
        for event in events {
            let (change, channel, user, info) = match event {
                Event::Join {
                    channel,
                    user,
                    info,
                } => (Change::Join, channel, user, info),
                Event::Leave {
                    channel,
                    user,
                    info,
                } => (Change::Leave, channel, user, info),
            };
            if let Some(hooks) = &self.webhooks {
                let added = matches!(change, Change::Join);
                hooks(webhook::Event::member(
                    added,
                    channel.as_str(),
                    user.as_str(),
                ));
            }
            let notice = PresenceNotice {
                change,
                member: super::member(&user, &info),
            };
            self.hub.presence(channel, notice).await;
        }
    }
}

//! Presence on a gateway node: which of its connections are members of which presence
//! channels, reported in order to the cluster table (embedded or in Redis).
//!
//! Connections tell [`Presence`] when they enter and leave; [`LocalPresence`] folds several
//! connections of one user into one member. Changes go through one reporter task, so that the
//! table sees each node's joins and leaves in the order they happened. The same task renews the
//! node's lease and re-reports every member when the table has forgotten the node.
//!
//! The hub shards report through it too ([`TableReports`]): when some app wants
//! `channel_occupied` / `channel_vacated` webhooks, that this node got its first subscriber of
//! a channel or lost its last (the table makes a channel occupied with its first node and
//! vacates it with its last, or when the last one's lease runs out); and, for Pusher's
//! `subscription_count`, the subscriber counts of the channels that changed, about once a
//! second (the table sums them over the live nodes).

mod store;

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use bytes::Bytes;
use herald_presence_core::{LocalChange, LocalPresence, UserId};
use herald_protocol::{presence::Member, ChannelName, ConnId, NodeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::auth::Identity;
use crate::metrics::Metrics;
pub(crate) use store::{EmitHook, Store, StoreError};

/// The presence channels of a request, entered as each one's subscription succeeds (so that a
/// member is always a subscriber, and sees the notices from its own join on).
pub(crate) struct Membership {
    pub(crate) conn: ConnId,
    pub(crate) identity: Identity,
    pub(crate) channels: Vec<ChannelName>,
}

/// What the reporter task is asked to do.
enum Op {
    Change(LocalChange),
    /// This node has subscribers of `channel` now, or no longer.
    Occupancy {
        channel: ChannelName,
        occupied: bool,
    },
    /// This node's subscriber counts of the channels whose count changed.
    Counts(Vec<(ChannelName, usize)>),
    /// Answered once everything reported before it is in the table.
    Written(tokio::sync::oneshot::Sender<()>),
}

/// How long a query waits for this node's own reports to reach the table before it reads
/// anyway (the table is slow or unreachable: the read then says so, or is as fresh as it can
/// be).
const READ_YOUR_WRITES: Duration = Duration::from_secs(1);

/// Where hub shards report to the table: channels this node holds, and subscriber counts.
#[derive(Clone)]
pub(crate) struct TableReports(mpsc::UnboundedSender<Op>);

impl TableReports {
    /// This node got its first subscriber of `channel` (`occupied`), or lost its last.
    pub(crate) fn occupancy(&self, channel: ChannelName, occupied: bool) {
        let _ = self.0.send(Op::Occupancy { channel, occupied });
    }

    /// The subscriber counts of channels whose count changed (0: none left).
    pub(crate) fn counts(&self, counts: Vec<(ChannelName, usize)>) {
        let _ = self.0.send(Op::Counts(counts));
    }
}

/// The node's presence: local members, and the queue to the cluster table.
pub(crate) struct Presence {
    local: Mutex<LocalPresence>,
    ops: mpsc::UnboundedSender<Op>,
    store: Store,
}

impl Presence {
    /// Starts the reporter task; it runs until `stop` is cancelled, then tells the table that
    /// the node is gone.
    pub(crate) fn start(
        node: NodeId,
        store: Store,
        hooks: bool,
        (lease, heartbeat): (Duration, Duration),
        metrics: std::sync::Arc<Metrics>,
        stop: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> std::sync::Arc<Self> {
        let (ops, rx) = mpsc::unbounded_channel();
        let presence = std::sync::Arc::new(Self {
            local: Mutex::new(LocalPresence::new()),
            ops,
            store,
        });
        let reporter = Reporter {
            node,
            lease,
            hooks,
            occupied: Mutex::new(HashSet::new()),
            counts: Mutex::new(HashMap::new()),
            presence: std::sync::Arc::downgrade(&presence),
            store: presence.store.clone(),
            metrics,
        };
        tracker.spawn(reporter.run(rx, heartbeat, stop));
        presence
    }

    /// The handle hub shards report through.
    pub(crate) fn reports(&self) -> TableReports {
        TableReports(self.ops.clone())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalPresence> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, change: Option<LocalChange>) {
        if let Some(change) = change {
            let _ = self.ops.send(Op::Change(change));
        }
    }

    /// `conn` of `user` entered presence channel `channel`.
    pub(crate) fn enter(&self, conn: ConnId, identity: &Identity, channel: ChannelName) {
        let change =
            self.local()
                .enter(conn, identity.user.clone(), channel, identity.info.clone());
        self.report(change);
    }

    /// `conn` of `user` left presence channel `channel`.
    pub(crate) fn exit(&self, conn: ConnId, user: &UserId, channel: &ChannelName) {
        let change = self.local().exit(conn, user, channel);
        self.report(change);
    }

    /// This node's connections of `user` in `channel`.
    pub(crate) fn conns_of(&self, channel: &ChannelName, user: &str) -> Vec<ConnId> {
        UserId::parse(user).map_or_else(
            |_| Vec::new(),
            |user| self.local().conns(channel, &user).to_vec(),
        )
    }

    /// `conn` is gone: it leaves every presence channel it was in.
    pub(crate) fn disconnect(&self, conn: ConnId) {
        let changes = self.local().disconnect(conn);
        for change in changes {
            self.report(Some(change));
        }
    }

    /// Waits (at most [`READ_YOUR_WRITES`]) until the joins and leaves this node reported so
    /// far are in the table, so that a read that follows sees them: a member who subscribes
    /// right after another on the same node sees that one in the list.
    async fn written(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.ops.send(Op::Written(tx)).is_ok() {
            let _ = tokio::time::timeout(READ_YOUR_WRITES, rx).await;
        }
    }

    /// The members of `channel`, cluster-wide, in user id order; this node's own joins and
    /// leaves included, however recent.
    pub(crate) async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, StoreError> {
        self.written().await;
        self.store.members(channel).await
    }

    /// Whether the counts of [`Presence::subscriptions`] are the cluster's: the table is in
    /// Redis, or the node runs on the embedded broker (the nodes of a process share its table).
    pub(crate) fn counts_cluster_wide(&self, broker: crate::config::BrokerKind) -> bool {
        matches!(self.store, Store::Redis(_)) || broker == crate::config::BrokerKind::Memory
    }

    /// How many connections are subscribed to each of `channels`, cluster-wide (as of the
    /// nodes' last reports, made every 0.1 s).
    pub(crate) async fn subscriptions(
        &self,
        channels: &[ChannelName],
    ) -> Result<Vec<u64>, StoreError> {
        self.store.subscriptions(channels).await
    }

    /// How many members `channel` has, cluster-wide; this node's own joins and leaves
    /// included, however recent.
    pub(crate) async fn count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        self.written().await;
        self.store.count(channel).await
    }
}

struct Reporter {
    node: NodeId,
    lease: Duration,
    /// This node delivers webhooks: its heartbeats tell the table to queue their events.
    hooks: bool,
    /// The channels this node has subscribers of, as reported (re-reported on a resync).
    occupied: Mutex<HashSet<ChannelName>>,
    /// This node's subscriber count per channel, as reported (re-reported on a resync).
    counts: Mutex<HashMap<ChannelName, usize>>,
    presence: std::sync::Weak<Presence>,
    store: Store,
    metrics: std::sync::Arc<Metrics>,
}

/// Delay between attempts while the table is unreachable.
const RETRY: Duration = Duration::from_millis(250);

impl Reporter {
    async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<Op>,
        heartbeat: Duration,
        stop: CancellationToken,
    ) {
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                op = rx.recv() => match op {
                    Some(op) => self.handle(op, &stop).await,
                    None => break,
                },
                _ = beat.tick() => self.heartbeat(&stop).await,
            }
        }
        // Changes queued before the stop (connections closing) still count.
        while let Ok(op) = rx.try_recv() {
            self.handle(op, &stop).await;
        }
        match self.store.node_gone(self.node).await {
            Ok(left) => tracing::debug!(left, "presence: node gone"),
            Err(e) => {
                tracing::warn!(error = %e, "presence: could not report the node gone; its lease will run out")
            }
        }
    }

    async fn handle(&self, op: Op, stop: &CancellationToken) {
        match op {
            Op::Change(change) => self.apply(Report::Member(change), stop).await,
            Op::Occupancy { channel, occupied } => {
                {
                    let mut set = self.occupied.lock().unwrap_or_else(|e| e.into_inner());
                    if occupied {
                        set.insert(channel.clone());
                    } else {
                        set.remove(&channel);
                    }
                }
                self.apply(Report::Occupancy(channel, occupied), stop).await;
            }
            Op::Counts(counts) => {
                {
                    let mut all = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                    for (channel, n) in &counts {
                        if *n == 0 {
                            all.remove(channel);
                        } else {
                            all.insert(channel.clone(), *n);
                        }
                    }
                }
                self.apply(Report::Counts(counts), stop).await;
            }
            // Ops are handled in order: everything before this one is written.
            Op::Written(done) => {
                let _ = done.send(());
            }
        }
    }

    async fn send(&self, report: &Report) -> Result<bool, StoreError> {
        match report {
            Report::Member(change) => self.store.report(self.node, change).await,
            Report::Occupancy(channel, occupied) => {
                self.store.occupancy(self.node, channel, *occupied).await
            }
            Report::Counts(counts) => self.store.set_subscriptions(self.node, counts).await,
        }
    }

    /// Reports one change, retrying while the table is unreachable (order matters more than
    /// speed: a leave must not overtake the join before it).
    async fn apply(&self, report: Report, stop: &CancellationToken) {
        loop {
            match self.send(&report).await {
                Ok(true) => {
                    self.metrics.presence_reports.inc();
                    return;
                }
                // The table forgot this node: renew the lease and report everything again,
                // which includes this change.
                Ok(false) => return self.resync(stop).await,
                Err(e) => {
                    self.metrics.presence_failures.inc();
                    tracing::debug!(error = %e, "presence: report failed; retrying");
                    if stop.is_cancelled() {
                        return;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    async fn heartbeat(&self, stop: &CancellationToken) {
        match self
            .store
            .heartbeat(self.node, self.lease, self.hooks)
            .await
        {
            Ok(true) => self.metrics.presence_heartbeats.inc(),
            Ok(false) => self.resync(stop).await,
            Err(e) => {
                self.metrics.presence_failures.inc();
                tracing::debug!(error = %e, "presence: heartbeat failed");
            }
        }
    }

    /// Renews the lease and reports every local member again.
    async fn resync(&self, stop: &CancellationToken) {
        let Some(presence) = self.presence.upgrade() else {
            return;
        };
        if let Err(e) = self
            .store
            .heartbeat(self.node, self.lease, self.hooks)
            .await
        {
            tracing::debug!(error = %e, "presence: heartbeat failed");
        }
        self.metrics.presence_resyncs.inc();
        let snapshot = presence.local().snapshot();
        let occupied: Vec<ChannelName> = self
            .occupied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        tracing::info!(
            members = snapshot.len(),
            channels = occupied.len(),
            "presence: re-reporting this node's members"
        );
        let counts: Vec<(ChannelName, usize)> = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(c, n)| (c.clone(), *n))
            .collect();
        let reports = snapshot
            .into_iter()
            .map(Report::Member)
            .chain(occupied.into_iter().map(|c| Report::Occupancy(c, true)))
            .chain((!counts.is_empty()).then_some(Report::Counts(counts)));
        for report in reports {
            if stop.is_cancelled() {
                return;
            }
            if let Err(e) = self.send(&report).await {
                tracing::debug!(error = %e, "presence: re-report failed; the next heartbeat retries");
                return;
            }
        }
    }
}

/// One report to the table.
enum Report {
    Member(LocalChange),
    Occupancy(ChannelName, bool),
    Counts(Vec<(ChannelName, usize)>),
}

/// Converts a user id and info for the table's notices.
pub(crate) fn member(user: &UserId, info: &Bytes) -> Member {
    Member {
        user: user.as_str().to_owned(),
        info: serde_json::from_slice(info).unwrap_or(serde_json::Value::Null),
    }
}

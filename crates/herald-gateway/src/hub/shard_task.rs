//! The task that runs one hub shard.

use std::sync::Arc;

use herald_broker::{BrokerError, Publication, SharedBroker};
use herald_hub::{Action, HubShard, Settlement};
use herald_protocol::{server::ChannelFailure, ChannelName, ErrorCode, WireFormat};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{framing::Framings, request::Reads, Hub, ShardCommand, SubscribeRequest};
use crate::outbound::Subscriber;
use crate::{
    metrics::Metrics,
    presence::{Presence, TableReports},
    telemetry::Telemetry,
};

mod notices;
mod repair;

pub(crate) use repair::Repaired;

/// Commands a shard takes per wake-up.
const BATCH: usize = 64;

/// The history a channel's namespace keeps.
pub(crate) type HistoryOf = Arc<dyn Fn(&ChannelName) -> herald_broker::HistoryKeep + Send + Sync>;

/// What every shard task shares with the node.
pub(crate) struct ShardEnv {
    pub(crate) broker: SharedBroker,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) telemetry: Arc<Telemetry>,
    /// How each wire format frames what the shard fans out.
    pub(crate) framings: Framings,
    /// The history a channel's namespace keeps (what a repair may read).
    pub(crate) history_of: HistoryOf,
    /// The node's shared history reads (recoveries).
    pub(crate) history_reads: Arc<super::HistoryReads>,
    /// This node's tag in connection addresses.
    pub(crate) node_tag: u32,
    /// Where channels held and given back are reported (for occupancy webhooks), and
    /// subscriber counts (for Pusher's `subscription_count`).
    pub(crate) reports: TableReports,
    /// Report the channels this node holds and gives back.
    pub(crate) occupancy: bool,
    /// Report subscriber counts.
    pub(crate) counting: bool,
    /// The node's presence: whose connections a member's are.
    pub(crate) presence: Arc<Presence>,
}

/// Starts one task per receiver, each on a thread of its own (see [`super::thread`]). They
/// stop when `stop` is cancelled.
///
/// # Errors
/// When a thread or its runtime cannot be made. The shards already started stop, as the
/// others do, when `stop` is cancelled.
pub(crate) fn spawn_shards(
    hub: &Hub,
    receivers: Vec<mpsc::Receiver<ShardCommand>>,
    env: &ShardEnv,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    for (index, rx) in receivers.into_iter().enumerate() {
        let shard = ShardTask {
            hub: HubShard::new(),
            reads: Reads {
                broker: env.broker.clone(),
                presence: env.presence.clone(),
                history: env.history_reads.clone(),
            },
            metrics: env.metrics.clone(),
            telemetry: env.telemetry.clone(),
            framings: env.framings.clone(),
            history_of: env.history_of.clone(),
            repairs: repair::Repairs::default(),
            node_tag: env.node_tag,
            reports: env.reports.clone(),
            occupancy: env.occupancy,
            counting: env.counting,
            me: hub.weak(index),
        };
        let name = format!("herald-hub-{index}");
        super::thread::spawn(name, shard.run(rx, stop.clone()), tracker)?;
    }
    Ok(())
}

struct ShardTask {
    hub: HubShard<Subscriber, Arc<SubscribeRequest>>,
    /// The broker (subscriptions) and the node's presence (joins and leaves), which answers
    /// may read too.
    reads: Reads,
    metrics: Arc<Metrics>,
    telemetry: Arc<Telemetry>,
    framings: Framings,
    history_of: HistoryOf,
    repairs: repair::Repairs,
    node_tag: u32,
    reports: TableReports,
    occupancy: bool,
    counting: bool,
    me: mpsc::WeakSender<ShardCommand>,
}

/// How often a shard reports the subscriber counts that changed: a table write per node at
/// most this often, however many connections come and go (a reconnect storm is thousands a
/// second), and counts that lag the subscriptions by about this much.
const COUNT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl ShardTask {
    async fn run(mut self, mut rx: mpsc::Receiver<ShardCommand>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut count_timer = self.counting.then(|| {
            self.hub.count_subscriptions();
            let mut timer = tokio::time::interval(COUNT_EVERY);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => break,
                n = rx.recv_many(&mut batch, BATCH) => n,
                () = tick(count_timer.as_mut()) => {
                    let counts = self.hub.take_counts();
                    if !counts.is_empty() {
                        self.reports.counts(counts);
                    }
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            let before = self.counts();
            for command in batch.drain(..) {
                self.handle(command);
            }
            let after = self.counts();
            self.metrics.channels.add(after.0 - before.0);
            self.metrics.subscriptions.add(after.1 - before.1);
        }
        let (channels, subscriptions) = self.counts();
        self.metrics.channels.add(-channels);
        self.metrics.subscriptions.add(-subscriptions);
    }

    /// This shard's channels and live subscriptions, for the node's gauges.
    fn counts(&self) -> (i64, i64) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        (
            count(self.hub.channel_count()),
            count(self.hub.subscription_count()),
        )
    }

    fn handle(&mut self, command: ShardCommand) {
        let (actions, broker_error) = match command {
            ShardCommand::Subscribe {
                conn,
                sink,
                channel,
                request,
            } => (
                self.hub
                    .subscribe(conn, sink, channel, request)
                    .into_iter()
                    .collect(),
                None,
            ),
            ShardCommand::Unsubscribe {
                conn,
                channel,
                member,
            } => {
                let actions = self.hub.unsubscribe(conn, &channel);
                if let Some(user) = member {
                    self.reads.presence.exit(conn, &user, &channel);
                }
                (actions, None)
            }
            ShardCommand::Disconnect { conn, presence } => {
                let actions = self.hub.disconnect(conn);
                if presence {
                    self.reads.presence.disconnect(conn);
                }
                (actions, None)
            }
            ShardCommand::BrokerSubscribed { channel, error } => {
                // Held in the broker from now until its `BrokerUnsubscribe`.
                if self.occupancy && error.is_none() {
                    self.reports.occupancy(channel.clone(), true);
                }
                (self.hub.broker_subscribed(&channel, error.is_none()), error)
            }
            ShardCommand::Publication(p) => match self.hold_for_repair(p) {
                Some(p) => (self.deliver(p), None),
                None => (Vec::new(), None),
            },
            ShardCommand::Gap { channel, reason } => {
                // Repaired from history when it covers what was missed; told otherwise.
                if self.start_repair(&channel, reason) {
                    (Vec::new(), None)
                } else {
                    (self.gap(&channel, reason), None)
                }
            }
            ShardCommand::Repaired(r) => (self.repaired(*r), None),
            ShardCommand::GapAll { reason } => {
                let channels: Vec<ChannelName> = self.hub.channels().cloned().collect();
                let actions = channels
                    .iter()
                    .flat_map(|channel| self.gap(channel, reason))
                    .collect();
                (actions, None)
            }
            ShardCommand::Presence { channel, notice } => (self.member(&channel, &notice), None),
            ShardCommand::Sync(done) => {
                let _ = done.send(());
                (Vec::new(), None)
            }
        };
        for action in actions {
            self.perform(action, broker_error.as_ref());
        }
    }

    /// Delivers `p`, and remembers where its channel stands.
    fn deliver(&mut self, p: Box<Publication>) -> Vec<Action<Arc<SubscribeRequest>>> {
        if self.delivered_already(&p) {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if self.went_back(&p) {
            // Its subscribers saw publications that are gone: they are told.
            actions.extend(self.gap(&p.channel, "the channel's sequence went back"));
        }
        actions.extend(self.publish(&p));
        self.note_delivered(&p);
        actions
    }

    fn publish(&mut self, p: &Publication) -> Vec<Action<Arc<SubscribeRequest>>> {
        self.metrics.broker_publications.inc();
        if p.direct {
            let path = crate::telemetry::PublishPath::Redis;
            self.metrics.families.publications.inc(path.as_str());
        }
        let span = self.telemetry.deliver_span(p);
        if let Some(at) = p.published_at_us {
            // Clocks of different hosts may disagree by a little: a negative delay counts as 0.
            let delay = herald_broker::now_us().saturating_sub(at);
            self.metrics.broker_delay.record_us(delay);
        }
        // A publication that ends connections (a Pusher user's termination): a typed end,
        // not a frame.
        let mut terminated = false;
        for format in WireFormat::ALL {
            if self.framings[format].terminates(p) {
                self.hub.terminate(&p.channel, format);
                terminated = true;
            }
        }
        if terminated {
            if let Some(span) = span {
                crate::telemetry::finish_delivery(span, 0);
            }
            return Vec::new();
        }
        // The sender is left out on its own node only.
        let except = p
            .exclude
            .filter(|a| a.node == self.node_tag)
            .map(|a| a.conn);
        let framings = &self.framings;
        let fanout = self
            .hub
            .publish_at(&p.channel, except.as_slice(), p.offset, |format| {
                framings[format].publication(p)
            });
        self.metrics.deliveries.add(fanout.delivered as u64);
        self.metrics
            .slow_consumer_evictions
            .add(fanout.evicted.len() as u64);
        if let Some(span) = span {
            crate::telemetry::finish_delivery(span, fanout.delivered);
        }
        fanout.actions
    }

    fn perform(
        &mut self,
        action: Action<Arc<SubscribeRequest>>,
        broker_error: Option<&BrokerError>,
    ) {
        match action {
            Action::BrokerSubscribe(channel) => {
                let answer = self.reads.broker.subscribe(&channel);
                let me = self.me.clone();
                tokio::spawn(async move {
                    let error = answer.await.err();
                    if let Some(me) = me.upgrade() {
                        let _ = me
                            .send(ShardCommand::BrokerSubscribed { channel, error })
                            .await;
                    }
                });
            }
            Action::BrokerUnsubscribe(channel) => {
                self.reads.broker.unsubscribe(&channel);
                self.forget(&channel);
                if self.occupancy {
                    self.reports.occupancy(channel, false);
                }
            }
            Action::Settled {
                waiter,
                channel,
                outcome,
            } => {
                let outcome = match outcome {
                    Settlement::Subscribed => Ok(true),
                    Settlement::Withdrawn => Ok(false),
                    Settlement::Refused => Err(ChannelFailure::new(
                        channel.as_str(),
                        ErrorCode::Unavailable,
                        broker_error
                            .map_or_else(|| "broker unavailable".into(), ToString::to_string),
                    )),
                };
                waiter.settle(&channel, outcome, &self.reads);
            }
        }
    }
}

/// The next tick of `timer`; never without one.
async fn tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

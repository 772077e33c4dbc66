//! The task that runs one hub shard.

use std::sync::Arc;

use bytes::Bytes;
use herald_broker::{BrokerError, Publication, SharedBroker};
use herald_hub::{Action, HubShard, Settlement};
use herald_presence_core::UserId;
use herald_protocol::{
    presence::PresenceNotice,
    server::{self, ChannelFailure},
    ChannelName, ConnId, ErrorCode, EventName, WireFormat,
};
use herald_runtime::metrics::Counter;
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Hub, SubscribeRequest};
use crate::outbound::Subscriber;
use crate::{
    metrics::Metrics,
    presence::{Presence, TableReports},
    telemetry::Telemetry,
};

/// What a shard task is asked to do.
pub(crate) enum ShardCommand {
    /// Subscribe a connection to a channel of this shard.
    Subscribe {
        conn: ConnId,
        sink: Subscriber,
        channel: ChannelName,
        request: Arc<SubscribeRequest>,
    },
    /// Unsubscribe a connection from a channel of this shard; `member`, the user it leaves
    /// the channel's presence as. The shard makes the exit: a join comes from the shard too
    /// (when the subscription settles), so an exit made anywhere else could precede it.
    Unsubscribe {
        conn: ConnId,
        channel: ChannelName,
        member: Option<UserId>,
    },
    /// A connection is gone; `presence` when it may be a member of presence channels, which
    /// it then leaves (made here for the same reason as an unsubscribe's exit).
    Disconnect { conn: ConnId, presence: bool },
    /// A publication from the broker.
    /// Boxed: a command is as large as its largest kind, and every connection's task holds
    /// one while it sends it (its disconnect); a publication is several hundred bytes.
    Publication(Box<Publication>),
    /// The broker lost and regained `channel`: tell its subscribers they may have missed some.
    Gap {
        channel: ChannelName,
        reason: &'static str,
    },
    /// Notices of any channel may have been missed: a gap notice to every channel held.
    GapAll { reason: &'static str },
    /// A member joined or left presence channel `channel`.
    Presence {
        channel: ChannelName,
        notice: PresenceNotice,
    },
    /// Answered once the commands sent before it are handled (what they report to the
    /// presence table included).
    Sync(tokio::sync::oneshot::Sender<()>),
    /// The broker's answer to a subscribe this shard asked for.
    BrokerSubscribed {
        channel: ChannelName,
        error: Option<BrokerError>,
    },
}

/// Commands a shard takes per wake-up.
const BATCH: usize = 64;

/// What every shard task shares with the node.
pub(crate) struct ShardEnv {
    pub(crate) broker: SharedBroker,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) telemetry: Arc<Telemetry>,
    /// The event name Pusher clients see for a publication without one.
    pub(crate) pusher_event: EventName,
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
            broker: env.broker.clone(),
            metrics: env.metrics.clone(),
            telemetry: env.telemetry.clone(),
            pusher_event: env.pusher_event.clone(),
            node_tag: env.node_tag,
            reports: env.reports.clone(),
            occupancy: env.occupancy,
            counting: env.counting,
            presence: env.presence.clone(),
            me: hub.weak(index),
        };
        let name = format!("herald-hub-{index}");
        super::thread::spawn(name, shard.run(rx, stop.clone()), tracker)?;
    }
    Ok(())
}

struct ShardTask {
    hub: HubShard<Subscriber, Arc<SubscribeRequest>>,
    broker: SharedBroker,
    metrics: Arc<Metrics>,
    telemetry: Arc<Telemetry>,
    /// The event name Pusher clients see for a publication without one.
    pusher_event: EventName,
    node_tag: u32,
    reports: TableReports,
    occupancy: bool,
    counting: bool,
    presence: Arc<Presence>,
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
                    self.presence.exit(conn, &user, &channel);
                }
                (actions, None)
            }
            ShardCommand::Disconnect { conn, presence } => {
                let actions = self.hub.disconnect(conn);
                if presence {
                    self.presence.disconnect(conn);
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
            ShardCommand::Publication(p) => (self.publish(&p), None),
            ShardCommand::Gap { channel, reason } => (self.gap(&channel, reason), None),
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

    /// A member joined or left: native subscribers get the notice, Pusher subscribers
    /// `member_added` / `member_removed`, except the member's own connections, which (as with
    /// Pusher) never hear that their own user was added.
    fn member(
        &mut self,
        channel: &ChannelName,
        notice: &PresenceNotice,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        let encode = |format| server::presence(format, channel, notice);
        let mut actions = self.notify(channel, encode, |m| &m.presence_notices);
        let own = match notice.change {
            herald_protocol::presence::Change::Join => {
                self.presence.conns_of(channel, &notice.member.user)
            }
            herald_protocol::presence::Change::Leave => Vec::new(),
        };
        let pusher = self.hub.publish_except(channel, &own, |format| {
            (format == WireFormat::Pusher)
                .then(|| pusher_member(channel, notice))
                .flatten()
        });
        self.metrics.presence_notices.add(pusher.delivered as u64);
        self.metrics
            .slow_consumer_evictions
            .add(pusher.evicted.len() as u64);
        actions.extend(pusher.actions);
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
        let pusher_event = &self.pusher_event;
        // The sender is left out on its own node only.
        let except = p
            .exclude
            .filter(|a| a.node == self.node_tag)
            .map(|a| a.conn);
        // A user's termination ends their Pusher connections: a typed end, not a frame.
        let terminate = crate::pusher::is_user_channel(&p.channel)
            && p.event
                .as_ref()
                .is_some_and(|e| e.as_str() == crate::pusher::TERMINATE);
        if terminate {
            self.hub.terminate(&p.channel, WireFormat::Pusher);
            if let Some(span) = span {
                crate::telemetry::finish_delivery(span, 0);
            }
            return Vec::new();
        }
        let fanout = self.hub.publish_except(&p.channel, except.as_slice(), |format| {
            if format == WireFormat::Pusher {
                let Ok(data) = std::str::from_utf8(&p.data) else {
                    return None;
                };
                let name = p.event.as_ref().unwrap_or(pusher_event);
                let channel = crate::pusher::pusher_name(&p.channel);
                let text = herald_pusher::message::event(
                    name.as_str(),
                    &channel,
                    data,
                    p.user.as_deref(),
                );
                return Some(crate::pusher::frame(&text));
            }
            server::push(format, &p.channel, &p.data, p.offset, p.event.as_ref())
                .inspect_err(|e| tracing::warn!(channel = %p.channel, error = %e, "undeliverable publication"))
                .ok()
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

    fn gap(&mut self, channel: &ChannelName, reason: &str) -> Vec<Action<Arc<SubscribeRequest>>> {
        let encode = |format| server::gap(format, channel, reason);
        self.notify(channel, encode, |m| &m.gap_notices)
    }

    /// Sends a notice (a gap, a join, a leave) to every subscriber of `channel`, counting the
    /// deliveries in `counter`.
    fn notify(
        &mut self,
        channel: &ChannelName,
        encode: impl Fn(WireFormat) -> Bytes,
        counter: impl Fn(&Metrics) -> &Counter,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        // Gap and presence notices are Herald's protocol; Pusher clients get neither.
        let fanout = self.hub.publish(channel, |format| {
            (format != WireFormat::Pusher).then(|| encode(format))
        });
        counter(&self.metrics).add(fanout.delivered as u64);
        self.metrics
            .slow_consumer_evictions
            .add(fanout.evicted.len() as u64);
        fanout.actions
    }

    fn perform(&self, action: Action<Arc<SubscribeRequest>>, broker_error: Option<&BrokerError>) {
        match action {
            Action::BrokerSubscribe(channel) => {
                let answer = self.broker.subscribe(&channel);
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
                self.broker.unsubscribe(&channel);
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
                waiter.settle(&channel, outcome);
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

/// A join or leave as Pusher clients see it: on `presence-` channels only.
fn pusher_member(channel: &ChannelName, notice: &PresenceNotice) -> Option<Bytes> {
    if !channel.as_str().starts_with("presence-") {
        return None;
    }
    let user = &notice.member.user;
    let text = match notice.change {
        herald_protocol::presence::Change::Join => herald_pusher::message::member_added(
            channel.as_str(),
            user,
            &notice.member.info.to_string(),
        ),
        herald_protocol::presence::Change::Leave => {
            herald_pusher::message::member_removed(channel.as_str(), user)
        }
    };
    Some(crate::pusher::frame(&text))
}

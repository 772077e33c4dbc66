//! Pusher webhooks: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`
//! and `client_event`, `POST`ed to each app's webhook URLs, signed, retried with backoff.
//!
//! Each event is queued once cluster-wide and delivered by one node per webhook:
//!
//! - **Which events.** Member events come from the presence table, channel occupancy from a
//!   table of the same kind whose members are nodes (each node reports when it gets its first
//!   subscriber of a channel and loses its last; a dead node's channels are vacated when its
//!   lease runs out). Both tables emit each transition once, whichever node causes it. Client
//!   events come from the node that relays them.
//! - **Queue.** With Redis, the tables' functions append their events to a Redis stream in the
//!   same atomic step as the transition, and nodes append client events
//!   ([`herald_broker_redis::WebhookEntry`]). Each webhook reads the stream as a consumer group
//!   of its own, every node with webhooks a consumer, so each event goes to one node per
//!   webhook; it is acknowledged only after delivery, and events a dead node had taken are
//!   taken over by another after `pusher.webhook_claim_after`. With the embedded broker, each
//!   webhook has a queue in the process.
//! - **Delivery.** The events a webhook's worker reads at once (up to 100) go out as one
//!   request, retried `pusher.webhook_attempts` times, waiting `pusher.webhook_retry`,
//!   doubling, between attempts. Each webhook has its own worker, so one that keeps failing
//!   holds back only itself.

mod client;
mod worker;

use std::sync::Arc;

use herald_broker_redis::RedisPresence;
use herald_pusher::webhook::{Event, EventKind};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{config::PusherConfig, metrics::Metrics};
use herald_runtime::logging::every::LogEvery;

/// Events a node may hold per queue before they are delivered (embedded) or appended to the
/// Redis stream; beyond it they are dropped and counted.
const QUEUE: usize = 10_000;

/// A node's webhooks: which kinds some app wants, and where events go.
pub(crate) struct Webhooks {
    kinds: Vec<EventKind>,
    queues: Queues,
    metrics: Arc<Metrics>,
}

/// Where emitted events go.
enum Queues {
    /// Each webhook's own queue in this process, with the kinds it wants.
    Local(Vec<(Vec<EventKind>, mpsc::Sender<Event>)>),
    /// The task that appends them to the Redis stream, which every webhook reads.
    Redis(mpsc::Sender<Event>),
}

/// Where the queue lives.
pub(crate) enum Queue {
    /// In this process: the node delivers what it queues.
    Embedded,
    /// In Redis: `writer` appends client events; each webhook reads the stream on a connection
    /// of its own (`readers`, one per webhook, in the order of the configuration: a read waits
    /// on its connection), as consumer `consumer`.
    Redis {
        writer: Arc<RedisPresence>,
        readers: Vec<RedisPresence>,
        consumer: String,
    },
}

impl Webhooks {
    /// How many webhooks the apps of `config` have (the Redis readers [`Self::start`] needs).
    pub(crate) fn count(config: &PusherConfig) -> usize {
        config.apps.iter().map(|a| a.webhooks.len()).sum()
    }

    /// Starts delivering webhooks, when some app has one; the tasks run until `stop`.
    pub(crate) fn start(
        config: &PusherConfig,
        queue: Queue,
        metrics: Arc<Metrics>,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Option<Arc<Self>> {
        let targets = worker::targets(config);
        if targets.is_empty() {
            return None;
        }
        let settings = Arc::new(worker::Settings::new(
            config,
            metrics.clone(),
            stop.clone(),
        )?);
        let mut kinds: Vec<EventKind> = targets.iter().flat_map(|t| t.kinds.clone()).collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let workers = targets.into_iter().map(|target| worker::Worker {
            target,
            settings: settings.clone(),
            warn: LogEvery::new(worker::WARN_EVERY),
        });
        let queues = match queue {
            Queue::Embedded => Queues::Local(
                workers
                    .map(|worker| {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        let wanted = worker.target.kinds.clone();
                        tracker.spawn(worker.run_local(rx));
                        (wanted, tx)
                    })
                    .collect(),
            ),
            Queue::Redis {
                writer,
                readers,
                consumer,
            } => {
                for (worker, reader) in workers.zip(readers) {
                    tracker.spawn(worker.run_redis(reader, consumer.clone()));
                }
                let (tx, rx) = mpsc::channel(QUEUE);
                tracker.spawn(worker::append(rx, writer, metrics.clone(), stop.clone()));
                Queues::Redis(tx)
            }
        };
        Some(Arc::new(Self {
            kinds,
            queues,
            metrics,
        }))
    }

    /// Whether some app wants events of `kind`.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Queues `event` for delivery (dropped and counted where a queue is full).
    pub(crate) fn emit(&self, event: Event) {
        if !self.wants(event.name) {
            return;
        }
        let sent = match &self.queues {
            Queues::Redis(tx) => tx.try_send(event).is_ok(),
            Queues::Local(queues) => {
                let mut sent = true;
                for (_, tx) in queues
                    .iter()
                    .filter(|(wanted, _)| wanted.contains(&event.name))
                {
                    sent &= tx.try_send(event.clone()).is_ok();
                }
                sent
            }
        };
        if !sent {
            self.metrics.families.webhooks.inc("dropped");
        }
    }
}

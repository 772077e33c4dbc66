//! Pusher webhooks: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`
//! and `client_event`, `POST`ed to each app's webhook URLs, signed, retried with backoff.
//!
//! Each event is queued once cluster-wide and delivered by one node:
//!
//! - **Which events.** Member events come from the presence table, channel occupancy from a
//!   table of the same kind whose members are nodes (each node reports when it gets its first
//!   subscriber of a channel and loses its last; a dead node's channels are vacated when its
//!   lease runs out). Both tables emit each transition once, whichever node causes it. Client
//!   events come from the node that relays them.
//! - **Queue.** With Redis, the tables' functions append their events to a Redis stream in the
//!   same atomic step as the transition, and nodes append client events
//!   ([`herald_broker_redis::WebhookEntry`]). Every node with webhooks reads the stream as one
//!   consumer group, so each event goes to one node; it is acknowledged only after delivery,
//!   and events a dead node had taken are taken over by another after
//!   `pusher.webhook_claim_after`. With the embedded broker, the queue is in the process.
//! - **Delivery.** The events a node reads at once (up to 100) go out as one request per
//!   webhook whose `event_types` they match, retried `pusher.webhook_attempts` times, waiting
//!   `pusher.webhook_retry`, doubling, between attempts.

mod client;
mod worker;

use std::sync::Arc;

use herald_broker_redis::RedisPresence;
use herald_pusher::webhook::{Event, EventKind};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{config::PusherConfig, metrics::Metrics};

/// Events a node may hold before they are delivered (embedded) or queued in Redis; beyond
/// it they are dropped and counted.
const QUEUE: usize = 10_000;

/// A node's webhooks: which kinds some app wants, and the queue events go into.
pub(crate) struct Webhooks {
    kinds: Vec<EventKind>,
    queue: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
}

/// Where the queue lives.
pub(crate) enum Queue {
    /// In this process: the node delivers what it queues.
    Embedded,
    /// In Redis: `writer` appends client events, `reader` takes events for delivery (a
    /// connection of its own, as it waits on the stream), as consumer `consumer`.
    Redis {
        writer: Arc<RedisPresence>,
        reader: Arc<RedisPresence>,
        consumer: String,
    },
}

impl Webhooks {
    /// Starts delivering webhooks, when some app has one; the tasks run until `stop`.
    pub(crate) fn start(
        config: &PusherConfig,
        queue: Queue,
        metrics: Arc<Metrics>,
        stop: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Option<Arc<Self>> {
        let worker = worker::Worker::new(config, metrics.clone(), stop.clone())?;
        let mut kinds: Vec<EventKind> = worker.kinds().collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let (tx, rx) = mpsc::channel(QUEUE);
        match queue {
            Queue::Embedded => {
                tracker.spawn(worker.run_local(rx));
            }
            Queue::Redis {
                writer,
                reader,
                consumer,
            } => {
                tracker.spawn(worker::append(rx, writer, metrics.clone(), stop.clone()));
                tracker.spawn(worker.run_redis(reader, consumer));
            }
        }
        Some(Arc::new(Self {
            kinds,
            queue: tx,
            metrics,
        }))
    }

    /// Whether some app wants events of `kind`.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Queues `event` for delivery (dropped and counted when the queue is full).
    pub(crate) fn emit(&self, event: Event) {
        if !self.wants(event.name) {
            return;
        }
        if self.queue.try_send(event).is_err() {
            self.metrics.families.webhooks.inc("dropped");
        }
    }
}

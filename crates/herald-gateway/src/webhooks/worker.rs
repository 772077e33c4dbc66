//! Reading queued webhook events and delivering them.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use herald_broker_redis::{PresenceError, RedisPresence, WebhookEntry};
use herald_protocol::ChannelName;
use herald_pusher::webhook::{self, Event, EventKind};
use tokio::sync::mpsc;
use tokio_rustls::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;

use super::client::{self, Endpoint};
use crate::{config::PusherConfig, metrics::Metrics};

/// Events delivered together, at most.
const BATCH: usize = 100;
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Delay before trying Redis again after a failure.
const RETRY: Duration = Duration::from_millis(250);
/// How long one read waits for new events.
const BLOCK: Duration = Duration::from_secs(1);
/// Consumers of the group (nodes) that held nothing and read nothing this long are removed.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// One webhook of one app.
struct Target {
    key: String,
    secret: String,
    url: String,
    endpoint: Endpoint,
    kinds: Vec<EventKind>,
}

/// Delivers batches of events to every webhook that wants them.
pub(super) struct Worker {
    targets: Vec<Target>,
    timeout: Duration,
    retry: Duration,
    attempts: u32,
    claim_after: Duration,
    tls: Arc<ClientConfig>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
}

impl Worker {
    /// `None` when no app has a webhook.
    pub(super) fn new(
        config: &PusherConfig,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Option<Self> {
        let targets: Vec<Target> = config
            .apps
            .iter()
            .flat_map(|app| {
                app.webhooks.iter().filter_map(|hook| {
                    Some(Target {
                        key: app.key.clone(),
                        secret: app.secret.clone(),
                        url: hook.url.clone(),
                        // Validated with the configuration.
                        endpoint: Endpoint::parse(&hook.url)?,
                        kinds: hook
                            .event_types
                            .iter()
                            .filter_map(|t| EventKind::parse(t))
                            .collect(),
                    })
                })
            })
            .collect();
        if targets.is_empty() {
            return None;
        }
        let tls = herald_broker_redis::TlsConfig::new(None)
            .map(|t| t.client_config())
            .ok()?;
        Some(Self {
            targets,
            timeout: config.webhook_timeout,
            retry: config.webhook_retry,
            attempts: config.webhook_attempts,
            claim_after: config.webhook_claim_after,
            tls,
            metrics,
            stop,
        })
    }

    /// Every kind some webhook wants.
    pub(super) fn kinds(&self) -> impl Iterator<Item = EventKind> + '_ {
        self.targets.iter().flat_map(|t| t.kinds.iter().copied())
    }

    /// Delivers the events queued in this process.
    pub(super) async fn run_local(self, mut rx: mpsc::Receiver<Event>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let received = tokio::select! {
                _ = self.stop.cancelled() => return,
                n = rx.recv_many(&mut batch, BATCH) => n,
            };
            if received == 0 {
                return;
            }
            let events: Vec<Event> = batch.drain(..).map(pusher_names).collect();
            if !self.deliver(&events, || async {}).await {
                return;
            }
        }
    }

    /// Delivers the events of the Redis stream, as `consumer` of the workers' group.
    pub(super) async fn run_redis(self, link: Arc<RedisPresence>, consumer: String) {
        let mut group = false;
        let mut claimed_at: Option<Instant> = None;
        while !self.stop.is_cancelled() {
            if !group {
                match link.webhook_group().await {
                    Ok(()) => group = true,
                    Err(e) => {
                        tracing::debug!(error = %e, "webhooks: cannot create the consumer group");
                        self.pause().await;
                        continue;
                    }
                }
            }
            // Now and then, take over what dead nodes left undelivered.
            let claim = claimed_at.is_none_or(|at| at.elapsed() >= self.claim_after / 2);
            let entries = if claim {
                claimed_at = Some(Instant::now());
                match link.webhook_forget_consumers(&consumer, FORGET_AFTER).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(consumers = n, "webhooks: forgot gone nodes"),
                    Err(e) => tracing::debug!(error = %e, "webhooks: cannot list consumers"),
                }
                link.webhook_claim(&consumer, self.claim_after, BATCH).await
            } else {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    read = link.webhook_read(&consumer, BATCH, BLOCK) => read,
                }
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    if matches!(&e, PresenceError::Refused(m) if m.starts_with("NOGROUP")) {
                        group = false;
                    }
                    tracing::debug!(error = %e, "webhooks: cannot read the queue");
                    self.pause().await;
                    continue;
                }
            };
            if entries.is_empty() {
                continue;
            }
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let events = parse(entries);
            let touch = || async {
                if let Err(e) = link.webhook_touch(&consumer, &ids).await {
                    tracing::debug!(error = %e, "webhooks: cannot keep events being retried");
                }
            };
            if !self.deliver(&events, touch).await {
                // Stopping: what is not acknowledged is delivered by another node.
                return;
            }
            for _ in 0..3 {
                match link.webhook_ack(&ids).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "webhooks: cannot acknowledge delivered events");
                        self.pause().await;
                    }
                }
            }
        }
    }

    async fn pause(&self) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(RETRY) => {}
        }
    }

    /// Sends `events` to every webhook that wants some of them, retrying each request;
    /// `touch` runs before each retry. False when the node stopped meanwhile.
    async fn deliver<F, Fut>(&self, events: &[Event], touch: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let time_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for target in &self.targets {
            let chosen: Vec<&Event> = events
                .iter()
                .filter(|e| target.kinds.contains(&e.name))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let count = chosen.len() as u64;
            let body = webhook::body(time_ms, chosen);
            let headers = [
                ("X-Pusher-Key", target.key.clone()),
                (
                    "X-Pusher-Signature",
                    herald_pusher::signature::webhook_signature(&target.secret, &body),
                ),
            ];
            let body = Bytes::from(body);
            let mut wait = self.retry;
            for attempt in 1..=self.attempts {
                let sent = client::post(
                    &target.endpoint,
                    &self.tls,
                    &headers,
                    body.clone(),
                    self.timeout,
                )
                .await;
                let Err(e) = sent else {
                    self.metrics.families.webhooks.add("delivered", count);
                    break;
                };
                if attempt == self.attempts {
                    self.metrics.families.webhooks.add("given_up", count);
                    tracing::warn!(url = %target.url, attempts = attempt, error = %e, events = count, "webhooks: giving up");
                    break;
                }
                self.metrics.families.webhooks.add("retried", count);
                tracing::debug!(url = %target.url, attempt, error = %e, "webhooks: retrying");
                tokio::select! {
                    _ = self.stop.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(MAX_BACKOFF);
                touch().await;
            }
        }
        true
    }
}

/// Appends the events this node queues (client events) to the Redis stream, in order.
pub(super) async fn append(
    mut rx: mpsc::Receiver<Event>,
    link: Arc<RedisPresence>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = rx.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        let json = event.to_json();
        let mut sent = false;
        for _ in 0..3 {
            match link.webhook_add(&json).await {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "webhooks: cannot queue an event");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        if !sent {
            metrics.families.webhooks.inc("dropped");
        }
    }
}

/// The events of stream entries; an entry that is not one is logged and skipped.
fn parse(entries: Vec<WebhookEntry>) -> Vec<Event> {
    entries
        .into_iter()
        .filter_map(|entry| match Event::from_json(&entry.event) {
            Ok(event) => Some(pusher_names(event)),
            Err(e) => {
                tracing::warn!(id = entry.id, error = %e, "webhooks: skipping an entry that is not an event");
                None
            }
        })
        .collect()
}

/// Channels by the names Pusher clients know them by.
fn pusher_names(mut event: Event) -> Event {
    if let Ok(channel) = ChannelName::parse(&event.channel) {
        event.channel = crate::pusher::pusher_name(&channel).into_owned();
    }
    event
}

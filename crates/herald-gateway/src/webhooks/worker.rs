//! Reading queued webhook events and delivering them: one worker per webhook, so that a
//! webhook that keeps failing holds back only itself.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use herald_broker_redis::{PresenceError, RedisPresence, WebhookEntry};
use herald_pusher::webhook::{self, ChannelFilter, Event, EventKind};
use tokio::sync::mpsc;
use tokio_rustls::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;

use super::client::{self, Endpoint};
use crate::{config::PusherConfig, metrics::Metrics};
use herald_runtime::logging::every::LogEvery;

/// Events delivered together, at most.
const BATCH: usize = 100;
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Delay before trying Redis again after a failure.
const RETRY: Duration = Duration::from_millis(250);
/// How long one read waits for new events.
const BLOCK: Duration = Duration::from_secs(1);
/// Consumers of a group (nodes) that held nothing and read nothing this long are removed.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// One webhook of one app.
pub(super) struct Target {
    key: String,
    secret: String,
    url: String,
    endpoint: Endpoint,
    pub(super) kinds: Vec<EventKind>,
    /// Which channels' events it wants.
    channels: ChannelFilter,
    /// Its consumer group in the Redis stream: the same on every node.
    group: String,
}

/// Every webhook of every app.
pub(super) fn targets(config: &PusherConfig) -> Vec<Target> {
    config
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
                    // Validated with the configuration.
                    channels: ChannelFilter::new(&hook.channels).ok()?,
                    group: format!("herald-webhooks:{}:{}", app.id, hook.url),
                })
            })
        })
        .collect()
}

/// What every worker of a node shares.
pub(super) struct Settings {
    timeout: Duration,
    retry: Duration,
    attempts: u32,
    claim_after: Duration,
    tls: Arc<ClientConfig>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
}

impl Settings {
    pub(super) fn new(
        config: &PusherConfig,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Option<Self> {
        let tls = herald_broker_redis::TlsConfig::new(None)
            .map(|t| t.client_config())
            .ok()?;
        Some(Self {
            timeout: config.webhook_timeout,
            retry: config.webhook_retry,
            attempts: config.webhook_attempts,
            claim_after: config.webhook_claim_after,
            tls,
            metrics,
            stop,
        })
    }

    async fn pause(&self) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Delivers the events one webhook wants.
pub(super) struct Worker {
    pub(super) target: Target,
    pub(super) settings: Arc<Settings>,
    /// Failed attempts are warned of at most once per [`WARN_EVERY`].
    pub(super) warn: LogEvery,
}

/// At most one warning of failed deliveries per webhook this often.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    /// Delivers the events queued for this webhook in this process.
    pub(super) async fn run_local(self, mut rx: mpsc::Receiver<Event>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let received = tokio::select! {
                _ = self.settings.stop.cancelled() => return,
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

    /// Delivers the events of the Redis stream, as `consumer` of this webhook's group.
    pub(super) async fn run_redis(self, link: RedisPresence, consumer: String) {
        let (settings, group) = (&self.settings, self.target.group.as_str());
        let mut created = false;
        let mut claimed_at: Option<Instant> = None;
        while !settings.stop.is_cancelled() {
            if !created {
                match link.webhook_group(group).await {
                    Ok(()) => created = true,
                    Err(e) => {
                        tracing::debug!(error = %e, "webhooks: cannot create the consumer group");
                        settings.pause().await;
                        continue;
                    }
                }
            }
            // Now and then, take over what dead nodes left undelivered.
            let claim = claimed_at.is_none_or(|at| at.elapsed() >= settings.claim_after / 2);
            let entries = if claim {
                claimed_at = Some(Instant::now());
                match link
                    .webhook_forget_consumers(group, &consumer, FORGET_AFTER)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(consumers = n, "webhooks: forgot gone nodes"),
                    Err(e) => tracing::debug!(error = %e, "webhooks: cannot list consumers"),
                }
                link.webhook_claim(group, &consumer, settings.claim_after, BATCH)
                    .await
            } else {
                tokio::select! {
                    _ = settings.stop.cancelled() => return,
                    read = link.webhook_read(group, &consumer, BATCH, BLOCK) => read,
                }
            };
            let entries = match entries {
                Ok(entries) => entries,
                Err(e) => {
                    if matches!(&e, PresenceError::Refused(m) if m.starts_with("NOGROUP")) {
                        created = false;
                    }
                    tracing::debug!(error = %e, "webhooks: cannot read the queue");
                    settings.pause().await;
                    continue;
                }
            };
            if entries.is_empty() {
                continue;
            }
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let events = parse(entries);
            let touch = || async {
                if let Err(e) = link.webhook_touch(group, &consumer, &ids).await {
                    tracing::debug!(error = %e, "webhooks: cannot keep events being retried");
                }
            };
            if !self.deliver(&events, touch).await {
                // Stopping: what is not acknowledged is delivered by another node.
                return;
            }
            for _ in 0..3 {
                match link.webhook_ack(group, &ids).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "webhooks: cannot acknowledge delivered events");
                        settings.pause().await;
                    }
                }
            }
        }
    }

    /// Sends the events of `events` this webhook wants as one request, retrying with growing
    /// waits; `touch` runs every third of `pusher.webhook_claim_after` meanwhile, so that no
    /// other node takes the events. False when the node stopped first.
    async fn deliver<F, Fut>(&self, events: &[Event], touch: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let chosen: Vec<&Event> = events
            .iter()
            .filter(|e| {
                self.target.kinds.contains(&e.name) && self.target.channels.matches(&e.channel)
            })
            .collect();
        if chosen.is_empty() {
            return true;
        }
        let count = chosen.len() as u64;
        let time_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let send = self.send(webhook::body(time_ms, chosen), count);
        tokio::pin!(send);
        let mut keep = tokio::time::interval(self.settings.claim_after / 3);
        keep.tick().await;
        loop {
            tokio::select! {
                done = &mut send => return done,
                _ = keep.tick() => touch().await,
            }
        }
    }

    /// Sends one request, retrying with growing waits. False when the node stopped first.
    async fn send(&self, body: String, count: u64) -> bool {
        let (target, settings) = (&self.target, &self.settings);
        let headers = [
            ("X-Pusher-Key", target.key.clone()),
            (
                "X-Pusher-Signature",
                herald_pusher::signature::webhook_signature(&target.secret, &body),
            ),
        ];
        let body = Bytes::from(body);
        let outcomes = &settings.metrics.families.webhooks;
        let mut wait = settings.retry;
        for attempt in 1..=settings.attempts {
            let sent = client::post(
                &target.endpoint,
                &settings.tls,
                &headers,
                body.clone(),
                settings.timeout,
            )
            .await;
            let Err(e) = sent else {
                outcomes.add("delivered", count);
                return true;
            };
            if attempt == settings.attempts {
                outcomes.add("given_up", count);
                tracing::warn!(url = %target.url, attempts = attempt, error = %e, events = count, "webhooks: giving up");
                return true;
            }
            outcomes.add("retried", count);
            if let Some(held) = self.warn.admit() {
                tracing::warn!(
                    url = %target.url,
                    attempt,
                    error = %e,
                    events = count,
                    failures_not_logged = held,
                    "webhooks: delivery failed, retrying"
                );
            }
            tokio::select! {
                _ = settings.stop.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_BACKOFF);
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
    event.channel = herald_pusher::channel::pusher_name(&event.channel).into_owned();
    event
}

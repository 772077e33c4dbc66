//! `[pusher]`: the Pusher Channels protocol's apps, their limits and webhooks.

use std::time::Duration;

use serde::Deserialize;

/// `[pusher]`: Pusher Channels protocol 7 on `/app/{key}` and the Pusher HTTP API on the API
/// listener, for the apps configured. Off while there are none.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PusherConfig {
    /// `[[pusher.apps]]`, default none: `id`, `key` and `secret` of each app (file only).
    pub apps: Vec<PusherApp>,
    /// `pusher.activity_timeout`, default `120s`: what `pusher:connection_established` tells
    /// clients; they ping after this much silence.
    #[serde(with = "herald_config::values::duration")]
    pub activity_timeout: Duration,
    /// `pusher.default_event`, default `message`: the event name Pusher clients see for a
    /// publication that has none (published through Herald's own API or protocol).
    pub default_event: String,
    /// `pusher.timestamp_window`, default `600s`: how far a signed HTTP API request's
    /// `auth_timestamp` may be from the node's clock.
    #[serde(with = "herald_config::values::duration")]
    pub timestamp_window: Duration,
    /// `pusher.max_event_size`, default `10240`: the largest event `data` in bytes (413
    /// beyond), Pusher's limit.
    pub max_event_size: usize,
    /// `pusher.client_event_rate`, default `10`: client events per second one connection may
    /// send (Pusher's limit); beyond it, `pusher:error` 4301.
    pub client_event_rate: u32,
    /// `pusher.subscription_count`, default `true`: count subscriptions cluster-wide for
    /// `GET /v1/channels` and the Pusher HTTP API's `info=subscription_count` (each hub shard
    /// hands over the counts that changed every 0.1 s: at most ten table writes a second per
    /// shard, however many connections come and go). `false`: `/v1/channels` lists no counts,
    /// and Pusher's queries for them get 400.
    #[serde(deserialize_with = "herald_config::values::boolean")]
    pub subscription_count: bool,
    /// `pusher.webhook_timeout`, default `5s`: how long a webhook request may take; longer
    /// counts as a failure, retried.
    #[serde(with = "herald_config::values::duration")]
    pub webhook_timeout: Duration,
    /// `pusher.webhook_retry`, default `1s`: the wait before a failed webhook request's first
    /// retry; it doubles with each retry, up to a minute.
    #[serde(with = "herald_config::values::duration")]
    pub webhook_retry: Duration,
    /// `pusher.webhook_attempts`, default `8`: attempts per webhook request before its events
    /// are given up (logged and counted).
    pub webhook_attempts: u32,
    /// `pusher.webhook_claim_after`, default `30s`: with Redis, events another node took and
    /// left undelivered this long (it died) are delivered by this node.
    #[serde(with = "herald_config::values::duration")]
    pub webhook_claim_after: Duration,
}

impl Default for PusherConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            activity_timeout: Duration::from_secs(120),
            default_event: "message".into(),
            timestamp_window: Duration::from_secs(600),
            max_event_size: 10 * 1024,
            client_event_rate: 10,
            subscription_count: true,
            webhook_timeout: Duration::from_secs(5),
            webhook_retry: Duration::from_secs(1),
            webhook_attempts: 8,
            webhook_claim_after: Duration::from_secs(30),
        }
    }
}

/// One Pusher app.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PusherApp {
    /// The app id, in the HTTP API's paths (`/apps/{id}/...`).
    pub id: String,
    /// The public key, in the WebSocket path (`/app/{key}`) and in signatures.
    pub key: String,
    /// The secret that signs channel authorizations and API requests (or `secret_file`).
    #[serde(default)]
    pub secret: String,
    /// A file holding the secret (trailing newline ignored), read at startup: a mounted
    /// Kubernetes Secret, for instance.
    #[serde(default)]
    pub secret_file: Option<std::path::PathBuf>,
    /// This app's Pusher connections on one node, at most (none: only
    /// `limits.max_connections`); beyond it, `pusher:error` and a close with 4004.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// This app's `pusher.client_event_rate`, when it differs.
    #[serde(default)]
    pub client_event_rate: Option<u32>,
    /// This app's `pusher.max_event_size`, when it differs.
    #[serde(default)]
    pub max_event_size: Option<usize>,
    /// `client_events`, default false: whether this app's clients may send `client-` events
    /// on private and presence channels (Pusher's "Enable client events" app setting). Off,
    /// they are refused with a `pusher:error`.
    #[serde(default, deserialize_with = "herald_config::values::boolean")]
    pub client_events: bool,
    /// `[[pusher.apps.webhooks]]`, default none: where this app's webhooks go.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook of a Pusher app: events of the kinds listed are `POST`ed to `url`, signed with
/// the app's key and secret.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Which events: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`,
    /// `client_event` (default all).
    #[serde(default = "all_webhook_events")]
    pub event_types: Vec<String>,
    /// Which channels' events, as patterns where `*` stands for any run of characters
    /// (`["presence-*", "private-orders-*"]`); default none: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
}

fn all_webhook_events() -> Vec<String> {
    herald_pusher::webhook::EventKind::ALL
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect()
}

impl PusherApp {
    /// An app with the node-wide limits.
    pub fn new(id: &str, key: &str, secret: &str) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            max_connections: None,
            client_event_rate: None,
            max_event_size: None,
            client_events: false,
            secret_file: None,
            webhooks: Vec::new(),
        }
    }
}

impl std::fmt::Debug for PusherApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PusherApp")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("client_event_rate", &self.client_event_rate)
            .field("max_event_size", &self.max_event_size)
            .field("client_events", &self.client_events)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

//! The gateway's configuration: every key, its default, and why.
//!
//! Loaded once at startup by [`GatewayConfig::load`]: defaults, then an optional TOML file,
//! then `HERALD__SECTION__KEY` environment variables. docs/configuration.md lists every key.

mod checks;
mod console;
mod demo;
mod namespace;
mod node;
mod pusher;
mod sse;
mod validate;

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

pub use console::ConsoleConfig;
pub use demo::{DemoConfig, Toggle};
pub use herald_auth::{AuthConfig, KeyConfig, TokenAlgorithm};
use herald_protocol::{ChannelName, ErrorCode};
use herald_runtime::config::ConfigError;
pub use namespace::{NamespaceConfig, SubscribePolicy};
pub use node::{
    BrokerConfig, BrokerKind, MemoryConfig, NodeConfig, NodeName, RedisConfig, RedisMode,
};
pub use pusher::{PusherApp, PusherConfig, WebhookConfig};
use serde::Deserialize;
pub use sse::SseConfig;

/// The namespace of the nodes' own channels (`_herald:control`, where they talk to each
/// other); no configuration may name it.
pub(crate) const RESERVED_NAMESPACE: &str = "_herald";

/// The whole gateway configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Listening addresses.
    pub listen: ListenConfig,
    /// This node's identity.
    pub node: NodeConfig,
    /// How publications travel between nodes.
    pub broker: BrokerConfig,
    /// WebSocket connections.
    pub websocket: WebSocketConfig,
    /// Server-Sent Events streams.
    pub sse: SseConfig,
    /// The demo page.
    pub demo: DemoConfig,
    /// The web console.
    pub console: ConsoleConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// The hub.
    pub hub: HubConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Who may connect: tokens.
    pub auth: AuthConfig,
    /// Per-node and per-connection limits.
    pub limits: LimitsConfig,
    /// Presence channels.
    pub presence: PresenceConfig,
    /// Options of channels without a namespace prefix.
    pub channels: NamespaceConfig,
    /// Options per namespace: `namespaces.chat` applies to channels named `chat:...`. A channel
    /// whose prefix names no namespace here is refused.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// Logging.
    pub log: herald_runtime::logging::LogConfig,
    /// OpenTelemetry traces of publications.
    pub telemetry: TelemetryConfig,
    /// The Pusher Channels protocol.
    pub pusher: PusherConfig,
}

/// `[telemetry]`: OpenTelemetry traces, exported with OTLP over HTTP. Off unless
/// `otlp_endpoint` is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `telemetry.otlp_endpoint`, default none (traces off): the OTLP/HTTP collector, such as
    /// `http://otel-collector:4318` (or the same ending in `/v1/traces`); spans go to its
    /// `/v1/traces` (protobuf). Plain HTTP only:
    /// run the collector (or an agent) next to the node.
    pub otlp_endpoint: Option<String>,
    /// `telemetry.sample_ratio`, default `0.01`: the share of publications that start a trace
    /// (client publishes, and HTTP publishes without a `traceparent`). An HTTP publish whose
    /// `traceparent` is sampled is always traced, one that is not never is.
    pub sample_ratio: f64,
    /// `telemetry.service_name`, default `herald-gateway`: the `service.name` of the spans.
    pub service_name: String,
    /// `telemetry.export_interval`, default `5s`: how often finished spans are sent in a batch.
    #[serde(with = "herald_config::values::duration")]
    pub export_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: 0.01,
            service_name: "herald-gateway".into(),
            export_interval: Duration::from_secs(5),
        }
    }
}

/// `[listen]`: where the node listens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// `listen.websocket`, default `0.0.0.0:8080`: the WebSocket listener (clients).
    #[serde(deserialize_with = "herald_config::values::socket_addr")]
    pub websocket: SocketAddr,
    /// `listen.api`, default `0.0.0.0:9090`: the internal HTTP listener (publish API, health,
    /// metrics). Keep it off the public internet or set `api.keys`.
    #[serde(deserialize_with = "herald_config::values::socket_addr")]
    pub api: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            websocket: SocketAddr::from(([0, 0, 0, 0], 8080)),
            api: SocketAddr::from(([0, 0, 0, 0], 9090)),
        }
    }
}

/// `[websocket]`: client connections.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// `websocket.path`, default `/ws`: the upgrade path.
    pub path: String,
    /// `websocket.max_message_size`, default 65536: the largest message a client may send, in
    /// bytes, after reassembly. Larger frames close the connection with 1009 as soon as their
    /// header arrives, so a client can never make the server allocate more.
    pub max_message_size: usize,
    /// `websocket.outbound_queue_bytes`, default 1048576: bytes queued for one client before it
    /// is closed as a slow consumer (4001). Larger rides out longer stalls; smaller bounds the
    /// memory a stalled client can pin. At least twice the largest publication (checked), and
    /// better several times: publications that reach a connection together, before its task
    /// runs, must fit.
    pub outbound_queue_bytes: usize,
    /// `websocket.ping_interval`, default `25s`: how often the server pings each client.
    #[serde(with = "herald_config::values::duration")]
    pub ping_interval: Duration,
    /// `websocket.idle_timeout`, default `60s`: a client heard nothing from (no frame, no pong)
    /// for this long is closed with 4002. Must exceed `ping_interval`.
    #[serde(with = "herald_config::values::duration")]
    pub idle_timeout: Duration,
    /// `websocket.close_timeout`, default `2s`: how long to wait for the client's close frame
    /// after sending ours.
    #[serde(with = "herald_config::values::duration")]
    pub close_timeout: Duration,
    /// `websocket.handshake_timeout`, default `10s`: time allowed for the HTTP upgrade request.
    #[serde(with = "herald_config::values::duration")]
    pub handshake_timeout: Duration,
    /// `websocket.allowed_origins`, default none (any): the `Origin` values browsers may
    /// connect from, exact match with the scheme (`https://app.example.com`). Others get 403.
    /// Requests without `Origin` (not from a browser) are not affected. From the environment,
    /// comma-separated.
    pub allowed_origins: Vec<String>,
    /// `websocket.tls_cert_file`, default none: a PEM certificate chain. With
    /// `websocket.tls_key_file`, the WebSocket listener speaks TLS only (wss).
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// `websocket.tls_key_file`, default none: the PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<std::path::PathBuf>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            path: "/ws".into(),
            max_message_size: 64 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[api]`: the HTTP API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `api.keys`, default none: bearer keys accepted by the publish API
    /// (`Authorization: Bearer <key>`). With none, the API is open: keep its listener private.
    /// From the environment, comma-separated.
    pub keys: Vec<String>,
    /// `api.max_data_size`, default 65536: the largest publication `data`, in bytes of JSON.
    pub max_data_size: usize,
    /// `api.max_body_size`, default 1048576: the largest request body (a batch included).
    pub max_body_size: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            max_data_size: 64 * 1024,
            max_body_size: 1024 * 1024,
        }
    }
}

/// `[hub]`: fan-out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// `hub.shards`, default 0 (one per CPU): hub shards, each a task owning the channels that
    /// hash to it. More shards spread fan-out over more cores.
    pub shards: usize,
}

/// `[shutdown]`: draining on SIGTERM.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// `shutdown.drain_window`, default `10s`: clients are closed with 4000 (reconnect) at
    /// random moments spread over this window, so they do not all reconnect at once.
    #[serde(with = "herald_config::values::duration")]
    pub drain_window: Duration,
    /// `shutdown.grace_period`, default `25s`: the process exits within this time of the
    /// signal, whatever is left. Keep it under Kubernetes' `terminationGracePeriodSeconds`.
    #[serde(with = "herald_config::values::duration")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_window: Duration::from_secs(10),
            grace_period: Duration::from_secs(25),
        }
    }
}

/// `[presence]`: who is in each presence channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// `presence.lease`, default `10s`: how long the cluster keeps a node's members after its
    /// last heartbeat. A node killed without a goodbye has its members leave within this plus
    /// the presence service's `expire_interval`.
    #[serde(with = "herald_config::values::duration")]
    pub lease: Duration,
    /// `presence.heartbeat_interval`, default `2s`: how often the node renews its lease.
    #[serde(with = "herald_config::values::duration")]
    pub heartbeat_interval: Duration,
    /// `presence.max_info_size`, default `1024`: the largest `info` (JSON bytes) a connection
    /// may give.
    pub max_info_size: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(2),
            max_info_size: 1024,
        }
    }
}

/// `[limits]`: what one node and one connection may use.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `limits.max_connections`, default 100000: WebSocket connections the node holds at most;
    /// upgrades beyond it get 503 (the client tries another node).
    pub max_connections: usize,
    /// `limits.max_subscriptions`, default 1024: channels one connection may be subscribed to
    /// at once; more fail with 109.
    pub max_subscriptions: usize,
    /// `limits.publish_rate`, default 50: publications per second one connection may send
    /// (a token bucket as deep as one second's worth); more fail with 109.
    pub publish_rate: u32,
    /// `limits.max_channel_length`, default 255 (the most): the longest channel name, in bytes;
    /// longer names fail with 102.
    pub max_channel_length: usize,
    /// `limits.max_json_depth`, default 32: how deeply publication data may nest (arrays and
    /// objects); deeper data fails with 101.
    pub max_json_depth: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_subscriptions: 1024,
            publish_rate: 50,
            max_channel_length: herald_protocol::channel::MAX_LEN,
            max_json_depth: 32,
        }
    }
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &["api.keys", "websocket.allowed_origins"];

impl GatewayConfig {
    /// Loads and validates the configuration from `file` (optional) and the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key that is unknown or has a bad value.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: Self = herald_runtime::config::load(file, LIST_KEYS)?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// [`GatewayConfig::load`] with an explicit environment, for tests.
    ///
    /// # Errors
    /// As [`GatewayConfig::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config: Self = herald_runtime::config::load_from(file, env, LIST_KEYS)?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the Pusher apps' `secret_file`s into their `secret`.
    ///
    /// # Errors
    /// [`ConfigError`] naming `pusher.apps` when an app has both or a file cannot be read.
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        for (i, app) in self.pusher.apps.iter_mut().enumerate() {
            let Some(path) = app.secret_file.take() else {
                continue;
            };
            let invalid = |reason: String| ConfigError::Invalid {
                key: "pusher.apps",
                reason: format!("apps[{i}]: {reason}"),
            };
            if !app.secret.is_empty() {
                return Err(invalid("give secret or secret_file, not both".into()));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
            app.secret = text.trim_end_matches(['\n', '\r']).to_owned();
        }
        Ok(())
    }

    /// The options that apply to `channel`.
    ///
    /// # Errors
    /// [`ErrorCode::UnknownNamespace`] when its prefix names no configured namespace.
    pub fn namespace_of(&self, channel: &ChannelName) -> Result<&NamespaceConfig, ErrorCode> {
        match channel.namespace() {
            None => Ok(&self.channels),
            Some(ns) => self.namespaces.get(ns).ok_or(ErrorCode::UnknownNamespace),
        }
    }

    /// The number of hub shards to run.
    pub fn shard_count(&self) -> usize {
        if self.hub.shards > 0 {
            self.hub.shards
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }
}

//! `[node]` and `[broker]`: who the node is, and how publications travel between nodes.

use std::time::Duration;

use herald_runtime::config::ConfigError;
use serde::Deserialize;

/// `[node]`: identity.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// `node.id`, default the process's own UUID: the node's name in logs and traces, such as
    /// a Kubernetes pod's name. Only a name: the cluster tells processes apart by a UUID each
    /// makes at startup, so a restarted node with the same name never inherits the presence
    /// of the process before it.
    pub id: Option<NodeName>,
}

/// A node's name: 1 to 253 letters, digits, `-`, `_` and `.`, such as a Kubernetes pod's
/// name, a host name or a UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName(String);

impl NodeName {
    /// The longest name, a DNS name's length.
    pub const MAX_LEN: usize = 253;

    /// Checks `name`.
    ///
    /// # Errors
    /// When it is empty, too long, or has other characters; the message says what is valid.
    pub fn parse(name: &str) -> Result<Self, NodeNameError> {
        let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if name.is_empty() || name.len() > Self::MAX_LEN || !name.bytes().all(valid) {
            return Err(NodeNameError(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `node.id` that is not a node name.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a node name: 1 to 253 letters, digits, `-`, `_` and `.`")]
pub struct NodeNameError(pub String);

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// `[broker]`: how publications travel between nodes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// `broker.kind`, default `memory`: `memory` runs one node alone on the embedded broker;
    /// `redis` relays through Redis so that any number of nodes form a cluster.
    #[serde(deserialize_with = "herald_config::values::one_of")]
    pub kind: BrokerKind,
    /// `[broker.redis]`, used when `broker.kind = "redis"`.
    pub redis: RedisConfig,
    /// `[broker.memory]`, used when `broker.kind = "memory"`.
    pub memory: MemoryConfig,
}

/// `[broker.memory]`: the embedded broker.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// `broker.memory.offset_ttl`, default `24h`: how long a channel's sequence (its offset,
    /// epoch and history) outlives its last publication (`0s`: forever). After it, the
    /// channel's offsets start again at 1 in a new epoch, as on Redis.
    #[serde(with = "herald_config::values::duration")]
    pub offset_ttl: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            offset_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Which broker a node uses.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// The embedded in-memory broker: one node, no dependencies.
    #[default]
    Memory,
    /// Redis pub/sub.
    Redis,
}

/// How Redis is deployed.
pub use herald_broker_redis::RedisMode;

/// `[broker.redis]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `broker.redis.mode`, default `standalone`.
    #[serde(deserialize_with = "herald_config::values::one_of")]
    pub mode: RedisMode,
    /// `broker.redis.url`, default `redis://127.0.0.1:6379`: `redis://[user:password@]host:port[/db]`;
    /// in cluster mode, comma-separated seed URLs; in sentinel mode
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]` (the
    /// sentinels, and the master's credentials).
    pub url: String,
    /// `broker.redis.sentinel_password`, default none: the sentinels' password (sentinel
    /// mode).
    pub sentinel_password: Option<String>,
    /// `broker.redis.prefix`, default `herald:`: prefix of every key and channel, so that
    /// several deployments can share a Redis.
    pub prefix: String,
    /// `broker.redis.timeout`, default `2s`: how long a request may wait for Redis before the
    /// connection counts as stalled and is rebuilt. Lower notices a stall sooner; too low
    /// drops healthy connections under load.
    #[serde(with = "herald_config::values::duration")]
    pub timeout: Duration,
    /// `broker.redis.offset_ttl`, default `24h`: how long a channel's offset counter outlives
    /// its last publication (`0s`: forever). After it expires offsets start again at 1.
    #[serde(with = "herald_config::values::duration")]
    pub offset_ttl: Duration,
    /// `broker.redis.wait_replicas`, default `0`: replicas a publication must reach before
    /// it is acknowledged (Redis `WAIT`, within a quarter of `broker.redis.timeout`). With 1
    /// or more, a failover loses no acknowledged publication; one that did not reach them in
    /// time is answered as uncertain (504, error 108) and may or may not be kept.
    pub wait_replicas: u32,
    /// `broker.redis.tls_ca_file`, default none: a PEM file of the certificate authorities
    /// trusted for `rediss://` URLs; without it, the Mozilla root set is trusted.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl RedisConfig {
    /// The Redis client options this section names, offsets' time to live included.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the bad key.
    pub fn options(&self) -> Result<herald_broker_redis::RedisOptions, ConfigError> {
        use herald_broker_redis::{RedisSetting, RedisSettings};
        let settings = RedisSettings {
            mode: self.mode,
            url: &self.url,
            sentinel_password: self.sentinel_password.as_deref(),
            prefix: &self.prefix,
            timeout: self.timeout,
            tls_ca_file: self.tls_ca_file.as_deref(),
        };
        let mut options = settings.options().map_err(|e| {
            let key = match e.setting {
                RedisSetting::Url => "broker.redis.url",
                RedisSetting::Prefix => "broker.redis.prefix",
                RedisSetting::Timeout => "broker.redis.timeout",
                RedisSetting::TlsCaFile => "broker.redis.tls_ca_file",
                RedisSetting::SentinelPassword => "broker.redis.sentinel_password",
            };
            ConfigError::Invalid {
                key,
                reason: e.reason,
            }
        })?;
        options.offset_ttl = self.offset_ttl;
        options.wait_replicas = self.wait_replicas;
        Ok(options)
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            mode: RedisMode::Standalone,
            url: "redis://127.0.0.1:6379".into(),
            sentinel_password: None,
            prefix: "herald:".into(),
            timeout: Duration::from_secs(2),
            offset_ttl: Duration::from_secs(24 * 3600),
            wait_replicas: 0,
            tls_ca_file: None,
        }
    }
}

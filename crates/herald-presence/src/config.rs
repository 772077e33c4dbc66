//! The presence service's configuration: every key, its default, and why.
//!
//! Loaded like the gateway's: defaults, then an optional TOML file, then `HERALD__SECTION__KEY`
//! environment variables. docs/configuration.md lists every key.

use std::{net::SocketAddr, path::Path, time::Duration};

use herald_broker_redis::{RedisOptions, RedisSetting, RedisSettings};
use herald_runtime::{config::ConfigError, logging::LogConfig};
use serde::Deserialize;

/// The whole presence service configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceServiceConfig {
    /// Listening address.
    pub listen: ListenConfig,
    /// The Redis that holds the presence table: the gateways' `broker.redis`.
    pub redis: RedisConfig,
    /// Lease expiry.
    pub expiry: ExpiryConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `[listen]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// `listen.api`, default `0.0.0.0:9091`: the HTTP listener (presence queries, health,
    /// metrics).
    #[serde(deserialize_with = "herald_config::values::socket_addr")]
    pub api: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            api: SocketAddr::from(([0, 0, 0, 0], 9091)),
        }
    }
}

/// `[redis]`: must name the same Redis and prefix as the gateways' `broker.redis`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis.mode`, default `standalone`: `standalone`, `cluster` or `sentinel`, as the
    /// gateways' `broker.redis.mode`.
    #[serde(deserialize_with = "herald_config::values::one_of")]
    pub mode: RedisMode,
    /// `redis.url`, default `redis://127.0.0.1:6379`: `redis[s]://[user:password@]host:port[/db]`;
    /// in cluster mode, comma-separated seed URLs; in sentinel mode a `redis+sentinel://` URL,
    /// as the gateways'.
    pub url: String,
    /// `redis.sentinel_password`, default none: the sentinels' password (sentinel mode).
    pub sentinel_password: Option<String>,
    /// `redis.prefix`, default `herald:`: the gateways' `broker.redis.prefix`.
    pub prefix: String,
    /// `redis.timeout`, default `2s`: how long a call may wait for Redis before the
    /// connection counts as stalled and is rebuilt.
    #[serde(with = "herald_config::values::duration")]
    pub timeout: Duration,
    /// `redis.tls_ca_file`, default none: a PEM file of the certificate authorities trusted
    /// for `rediss://` URLs; without it, the Mozilla root set is trusted.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            mode: RedisMode::Standalone,
            url: "redis://127.0.0.1:6379".into(),
            sentinel_password: None,
            prefix: "herald:".into(),
            timeout: Duration::from_secs(2),
            tls_ca_file: None,
        }
    }
}

/// How the Redis is deployed (as the gateways' `broker.redis.mode`).
pub use herald_broker_redis::RedisMode;

/// `[expiry]`: removing the members of nodes that died without a goodbye.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// `expiry.interval`, default `1s`: how often the service removes nodes whose lease ran
    /// out. A crashed node's members leave within the gateways' `presence.lease` plus this.
    /// Each run is one Redis call, whatever the number of replicas.
    #[serde(with = "herald_config::values::duration")]
    pub interval: Duration,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
        }
    }
}

/// `[api]`: the HTTP API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `api.keys`, default none: bearer keys the presence queries require
    /// (`Authorization: Bearer <key>`). With none, the API is open: keep its listener private.
    /// From the environment, comma-separated.
    pub keys: Vec<String>,
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &["api.keys"];

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl PresenceServiceConfig {
    /// Loads and validates the configuration from `file` (optional) and the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key that is unknown or has a bad value.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// [`PresenceServiceConfig::load`] with an explicit environment, for tests.
    ///
    /// # Errors
    /// As [`PresenceServiceConfig::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config: Self = herald_runtime::config::load_from(file, env, LIST_KEYS)?;
        config.redis_options()?;
        let interval = config.expiry.interval;
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(60) {
            return Err(invalid("expiry.interval", "must be between 10ms and 60s"));
        }
        if config.api.keys.iter().any(String::is_empty) {
            return Err(invalid("api.keys", "a key must not be empty"));
        }
        Ok(config)
    }

    /// The Redis client options the configuration names.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a bad URL, prefix, timeout or CA file.
    pub fn redis_options(&self) -> Result<RedisOptions, ConfigError> {
        let redis = &self.redis;
        let settings = RedisSettings {
            mode: redis.mode,
            url: &redis.url,
            sentinel_password: redis.sentinel_password.as_deref(),
            prefix: &redis.prefix,
            timeout: redis.timeout,
            tls_ca_file: redis.tls_ca_file.as_deref(),
        };
        settings.options().map_err(|e| {
            let key = match e.setting {
                RedisSetting::Url => "redis.url",
                RedisSetting::Prefix => "redis.prefix",
                RedisSetting::Timeout => "redis.timeout",
                RedisSetting::TlsCaFile => "redis.tls_ca_file",
                RedisSetting::SentinelPassword => "redis.sentinel_password",
            };
            invalid(key, e.reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<PresenceServiceConfig, ConfigError> {
        PresenceServiceConfig::load_from(
            None,
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_are_valid_and_every_bad_value_is_named() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.api.port(), 9091);
        assert_eq!(c.expiry.interval, Duration::from_secs(1));
        let c = load(&[
            ("HERALD__EXPIRY__INTERVAL", "250ms"),
            ("HERALD__API__KEYS", "a,b"),
        ])
        .unwrap();
        assert_eq!(c.expiry.interval, Duration::from_millis(250));
        assert_eq!(c.api.keys, ["a", "b"]);

        for (key, value, named) in [
            ("HERALD__EXPIRY__INTERVAL", "0s", "expiry.interval"),
            ("HERALD__EXPIRY__INTERVAL", "soon", "interval"),
            ("HERALD__REDIS__URL", "http://x", "redis.url"),
            ("HERALD__REDIS__URL", "redis://a:1,redis://b:2", "redis.url"),
            ("HERALD__REDIS__PREFIX", "a{b}", "redis.prefix"),
            ("HERALD__REDIS__TIMEOUT", "1ms", "redis.timeout"),
            (
                "HERALD__REDIS__TLS_CA_FILE",
                "/nonexistent.pem",
                "tls_ca_file",
            ),
            ("HERALD__EXPIRY__INTERVL", "1s", "interval"),
        ] {
            let e = load(&[(key, value)]).unwrap_err().to_string();
            assert!(e.contains(named), "{key}={value}: {e}");
        }
    }
}

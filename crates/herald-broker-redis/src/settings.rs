//! The Redis settings both binaries read (the gateway's `[broker.redis]`, the presence
//! service's `[redis]`), checked and turned into [`RedisOptions`] in one place. Each binary
//! keeps its own section, whose keys and docs name its own settings; this is what they share.

use std::{path::Path, time::Duration};

use crate::{Endpoint, RedisOptions, TableMode};

/// How Redis is deployed.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One Redis server (PUBLISH/SUBSCRIBE).
    #[default]
    Standalone,
    /// A Redis Cluster with sharded pub/sub (SPUBLISH/SSUBSCRIBE); the presence table lives in
    /// the `{presence}` slot.
    Cluster,
    /// A master with replicas watched by Redis Sentinel: the sentinels say which server is
    /// the master, and the node follows failovers. Otherwise as standalone.
    Sentinel,
}

impl RedisMode {
    /// Where the presence table lives.
    pub fn table(self) -> TableMode {
        match self {
            RedisMode::Standalone | RedisMode::Sentinel => TableMode::Standalone,
            RedisMode::Cluster => TableMode::Cluster,
        }
    }
}

/// A binary's Redis settings.
#[derive(Clone, Copy, Debug)]
pub struct RedisSettings<'a> {
    /// How Redis is deployed.
    pub mode: RedisMode,
    /// One URL, comma-separated seed URLs in cluster mode, or a `redis+sentinel://` URL in
    /// sentinel mode.
    pub url: &'a str,
    /// The sentinels' password (sentinel mode).
    pub sentinel_password: Option<&'a str>,
    /// The prefix of every key and channel.
    pub prefix: &'a str,
    /// How long a request may wait for Redis.
    pub timeout: Duration,
    /// The certificate authorities trusted for `rediss://` URLs (the Mozilla roots without).
    pub tls_ca_file: Option<&'a Path>,
}

/// The setting a bad value is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisSetting {
    /// [`RedisSettings::url`].
    Url,
    /// [`RedisSettings::prefix`].
    Prefix,
    /// [`RedisSettings::timeout`].
    Timeout,
    /// [`RedisSettings::tls_ca_file`].
    TlsCaFile,
    /// [`RedisSettings::sentinel_password`].
    SentinelPassword,
}

/// A bad Redis setting: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct SettingError {
    /// The setting.
    pub setting: RedisSetting,
    /// Why its value is refused.
    pub reason: String,
}

/// The shortest `timeout` accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(50);

impl RedisSettings<'_> {
    /// The client options these settings name (offsets never expire: set `offset_ttl`
    /// after).
    ///
    /// # Errors
    /// [`SettingError`] for a bad URL (or several in standalone mode), prefix, timeout (under
    /// 50 ms) or CA file.
    pub fn options(&self) -> Result<RedisOptions, SettingError> {
        let error = |setting, reason: String| SettingError { setting, reason };
        if self.sentinel_password.is_some() && self.mode != RedisMode::Sentinel {
            let reason = "is for the sentinel mode only".into();
            return Err(error(RedisSetting::SentinelPassword, reason));
        }
        if self.mode == RedisMode::Sentinel {
            let url = crate::SentinelUrl::parse(self.url)
                .map_err(|e| error(RedisSetting::Url, e.to_string()))?;
            self.check_rest()?;
            let (prefix, timeout, ca) = (self.prefix, self.timeout, self.tls_ca_file);
            return RedisOptions::with_sentinels(url, self.sentinel_password, prefix, timeout, ca)
                .map_err(|e| error(RedisSetting::TlsCaFile, e.to_string()));
        }
        let endpoints =
            Endpoint::parse_list(self.url).map_err(|e| error(RedisSetting::Url, e.to_string()))?;
        if self.mode == RedisMode::Standalone && endpoints.len() != 1 {
            let reason =
                "takes exactly one URL in standalone mode (several seeds need the cluster mode)";
            return Err(error(RedisSetting::Url, reason.into()));
        }
        self.check_rest()?;
        let ca_error = |e: crate::TlsError| error(RedisSetting::TlsCaFile, e.to_string());
        RedisOptions::new(endpoints, self.prefix, self.timeout, self.tls_ca_file).map_err(ca_error)
    }

    /// The prefix, the timeout and the CA file.
    fn check_rest(&self) -> Result<(), SettingError> {
        let error = |setting, reason: String| SettingError { setting, reason };
        RedisOptions::check_prefix(self.prefix)
            .map_err(|e| error(RedisSetting::Prefix, e.into()))?;
        if self.timeout < MIN_TIMEOUT {
            return Err(error(RedisSetting::Timeout, "must be at least 50ms".into()));
        }
        // A CA file is checked even while no URL is `rediss://`: it is there to be used.
        if let Some(path) = self.tls_ca_file {
            crate::TlsConfig::new(Some(path))
                .map_err(|e| error(RedisSetting::TlsCaFile, e.to_string()))?;
        }
        Ok(())
    }
}

//! `[sse]`: Server-Sent Events streams (`GET /v1/sse` on the WebSocket listener).

use std::time::Duration;

use serde::Deserialize;

/// `[sse]`: event streams.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    /// `sse.enabled`, default true: whether the WebSocket listener serves `GET /v1/sse`
    /// (when false, it answers 404).
    #[serde(deserialize_with = "herald_config::values::boolean")]
    pub enabled: bool,
    /// `sse.keepalive_interval`, default `15s`: how often an idle stream gets a comment line,
    /// so that proxies keep it open. More than zero.
    #[serde(with = "herald_config::values::duration")]
    pub keepalive_interval: Duration,
    /// `sse.retry`, default `1s`: the reconnection delay a stream tells browsers (`retry:`).
    #[serde(with = "herald_config::values::duration")]
    pub retry: Duration,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keepalive_interval: Duration::from_secs(15),
            retry: Duration::from_secs(1),
        }
    }
}

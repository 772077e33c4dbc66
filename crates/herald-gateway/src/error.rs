//! Why a gateway could not start or run.

use std::net::SocketAddr;

/// A failure of the gateway as a whole (single connections never fail the node).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A setting that [`crate::config::GatewayConfig::load`] checks cannot be used (a
    /// configuration built in code skips that check).
    #[error(transparent)]
    Config(#[from] herald_runtime::config::ConfigError),
    /// The WebSocket listener's certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A key of `auth.keys` cannot be used.
    #[error(transparent)]
    AuthKey(#[from] crate::auth::KeyError),
    /// The trace exporter cannot be built.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// A hub shard's thread could not be started.
    #[error("cannot start a hub thread: {0}")]
    HubThread(std::io::Error),
}

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
    /// The broker configuration cannot be used.
    #[error("broker: {0}")]
    Broker(String),
}

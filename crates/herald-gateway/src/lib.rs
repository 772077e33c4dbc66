//! The Herald gateway node: WebSocket server, HTTP API, hub shards and the broker link.
//!
//! The binary (`main.rs`) only parses arguments, loads [`config::GatewayConfig`], starts
//! logging and calls [`run`]; tests start the same server in-process on port 0 through
//! [`Listeners::bind`].
//!
//! Shape of a node: an accept loop upgrades HTTP requests on `websocket.path` to WebSocket
//! connections (`ws`); each connection is one task that owns its socket, decodes client frames
//! and writes queued server frames in batches. Subscriptions go to hub shards (`hub`), one task
//! per shard, which push publications from the broker into each subscriber's bounded queue
//! (`outbound`). The HTTP API (`api`) publishes through the broker and serves health and
//! metrics. May depend on everything below it; nothing depends on it but the test kit.

mod api;
mod auth;
pub mod config;
mod ctx;
mod error;
mod hub;
mod metrics;
mod node;
mod outbound;
mod presence;
mod pusher;
mod telemetry;
mod tls;
mod webhooks;
mod ws;

pub use auth::KeyError;
pub use error::GatewayError;
pub use tls::TlsError;

/// The error code a broker failure is reported with, to HTTP and WebSocket publishers alike.
pub(crate) fn broker_error_code(e: &herald_broker::BrokerError) -> herald_protocol::ErrorCode {
    use herald_broker::BrokerError;
    use herald_protocol::ErrorCode;
    match e {
        BrokerError::Uncertain(_) => ErrorCode::Uncertain,
        BrokerError::Unavailable(_) | BrokerError::Closed => ErrorCode::Unavailable,
        BrokerError::Refused(_) => ErrorCode::Internal,
    }
}
pub use node::{run, run_on_bus, Listeners};

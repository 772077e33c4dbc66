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
mod cluster;
pub mod config;
mod ctx;
mod error;
mod hub;
mod metrics;
mod native;
mod node;
mod outbound;
mod peer;
mod presence;
mod pusher;
mod refusal;
mod session;
mod sse;
mod telemetry;
mod tls;
mod webhooks;
mod ws;

pub use auth::KeyError;
pub use error::GatewayError;
pub use tls::TlsError;

pub use node::{run, run_on_bus, Listeners};

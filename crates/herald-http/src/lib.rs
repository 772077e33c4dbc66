//! The internal HTTP API plumbing that Herald's deployables share: the accept loop
//! ([`accept`]), an HTTP/1.1 server that stops gracefully ([`serve`]), JSON replies and the
//! one mapping of error codes to statuses ([`reply`]), API keys ([`auth`]), and the shape of
//! the presence routes that the gateway and the presence service both answer ([`routes`]).
//!
//! May depend on hyper and tokio; never on the WebSocket or Redis crates.

pub mod accept;
pub mod auth;
pub mod reply;
pub mod routes;
mod server;

pub use server::{serve, Handler};

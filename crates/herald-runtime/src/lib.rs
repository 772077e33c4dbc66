//! Plumbing shared by Herald's deployables: configuration loading ([`config`]), shutdown
//! signals ([`shutdown`]), logging ([`logging`]) and Prometheus text ([`metrics`]).
//!
//! May depend on tokio, tracing and the `config` crate; never on the WebSocket or HTTP crates.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod shutdown;

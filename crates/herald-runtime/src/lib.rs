//! Plumbing shared by Herald's deployables: configuration loading ([`config`]), shutdown
//! signals ([`shutdown`]), logging ([`logging`]), Prometheus text ([`metrics`]) and the
//! common shape of a `main` ([`service`]).
//!
//! May depend on tokio, tracing and the `config` crate; never on the WebSocket or HTTP crates.

pub mod config;
pub mod logging;
pub mod metrics;
pub mod service;
pub mod shutdown;

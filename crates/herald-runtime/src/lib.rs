//! Plumbing shared by Herald's deployables: configuration loading ([`config`]), shutdown
//! signals ([`shutdown`]), logging ([`logging`]), Prometheus text ([`metrics`]) and the
//! common shape of a `main` ([`service`]).
//!
//! May depend on tokio, tracing and herald-config; never on the WebSocket or HTTP crates.

pub use herald_config as config;
pub mod logging;
pub mod metrics;
pub mod service;
pub mod shutdown;

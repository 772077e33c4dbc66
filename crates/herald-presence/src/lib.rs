//! The Herald presence service: the keeper of the presence table's node leases, and a query
//! endpoint for it.
//!
//! The table lives in Redis and changes only through the atomic functions of
//! `herald_presence_v1` (see `herald-broker-redis`): gateways call them to report joins,
//! leaves and heartbeats, and each call that makes a transition publishes the join or leave
//! into the channel in the same step. This service holds no state of its own. It
//!
//! - runs `herald_presence_expire` every `expiry.interval`, so that the members of a gateway
//!   killed without a goodbye leave once its lease runs out ([`expiry`]);
//! - answers `GET /v1/channels/{channel}/presence[/stats]` from the table, and serves health,
//!   readiness and metrics ([`api`]).
//!
//! Any number of replicas may run side by side, and any may be killed at any time: expiry is
//! one atomic call, so a dead node is removed, and its members' leaves published, exactly once.
//!
//! The binary (`main.rs`) parses arguments, loads [`config::PresenceServiceConfig`], starts
//! logging and calls [`run`]; tests run the binary itself.

mod api;
pub mod config;
mod expiry;
mod metrics;

use std::{net::SocketAddr, sync::Arc};

use herald_broker_redis::RedisPresence;
use herald_runtime::config::ConfigError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::PresenceServiceConfig;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum PresenceServiceError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Binds `listen.api`.
///
/// # Errors
/// [`PresenceServiceError::Bind`] when the address is taken or not ours.
pub async fn bind(config: &PresenceServiceConfig) -> Result<TcpListener, PresenceServiceError> {
    let addr = config.listen.api;
    TcpListener::bind(addr)
        .await
        .map_err(|source| PresenceServiceError::Bind { addr, source })
}

/// Runs the service until `shutdown` is cancelled.
///
/// # Errors
/// [`PresenceServiceError::Config`] when the Redis settings cannot be used.
pub async fn run(
    config: PresenceServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), PresenceServiceError> {
    let table = Arc::new(RedisPresence::new(
        &config.redis_options()?,
        config.redis.mode.table(),
    ));
    let metrics = Arc::new(metrics::Metrics::default());
    tracing::info!(
        api = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        redis = %config.redis.url.split('@').next_back().unwrap_or_default(),
        interval = ?config.expiry.interval,
        "presence service running"
    );
    let expiry = tokio::spawn(expiry::run(
        table.clone(),
        metrics.clone(),
        config.expiry.interval,
        shutdown.clone(),
    ));
    let api = api::Api {
        config,
        table,
        metrics,
    };
    herald_http::serve(listener, Arc::new(api), shutdown).await;
    let _ = expiry.await;
    Ok(())
}

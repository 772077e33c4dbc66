//! `herald-presence`: parse arguments, then load configuration, start logging and run the
//! service (`herald_runtime::service::run`).

use std::{net::SocketAddr, path::Path, process::ExitCode};

use clap::Parser;
use herald_presence::{config::PresenceServiceConfig, PresenceServiceError};
use herald_runtime::{
    config::ConfigError,
    logging::LogConfig,
    service::{Service, ServiceArgs},
};
use tokio_util::sync::CancellationToken;

/// The Herald presence service: expires the presence leases of gateway nodes that died, and
/// answers member queries. Run one or more replicas next to gateways that use Redis.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

struct PresenceService;

impl Service for PresenceService {
    const NAME: &'static str = "herald-presence";
    // One expiry call per interval and a few queries: one thread is plenty.
    const MULTI_THREAD: bool = false;
    type Config = PresenceServiceConfig;
    type Error = PresenceServiceError;

    fn load(file: Option<&Path>) -> Result<PresenceServiceConfig, ConfigError> {
        PresenceServiceConfig::load(file)
    }

    fn api(config: &PresenceServiceConfig) -> SocketAddr {
        config.listen.api
    }

    fn log(config: &PresenceServiceConfig) -> &LogConfig {
        &config.log
    }

    async fn serve(
        config: PresenceServiceConfig,
        shutdown: CancellationToken,
    ) -> Result<(), PresenceServiceError> {
        let listener = herald_presence::bind(&config).await?;
        herald_presence::run(config, listener, shutdown).await
    }
}

fn main() -> ExitCode {
    herald_runtime::service::run::<PresenceService>(&Args::parse().service)
}

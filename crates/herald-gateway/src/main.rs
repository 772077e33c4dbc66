//! `herald-gateway`: parse arguments, then load configuration, start logging and run the node
//! (`herald_runtime::service::run`).

use std::{net::SocketAddr, path::Path, process::ExitCode};

use clap::Parser;
use herald_gateway::{config::GatewayConfig, GatewayError};
use herald_runtime::{
    config::ConfigError,
    logging::LogConfig,
    service::{Service, ServiceArgs},
};
use tokio_util::sync::CancellationToken;

/// The Herald WebSocket gateway. With no configuration it runs one node on the embedded
/// in-memory broker: WebSocket on 0.0.0.0:8080/ws, HTTP API on 0.0.0.0:9090.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

struct Gateway;

impl Service for Gateway {
    const NAME: &'static str = "herald-gateway";
    const MULTI_THREAD: bool = true;
    type Config = GatewayConfig;
    type Error = GatewayError;

    fn load(file: Option<&Path>) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::load(file)
    }

    fn api(config: &GatewayConfig) -> SocketAddr {
        config.listen.api
    }

    fn log(config: &GatewayConfig) -> &LogConfig {
        &config.log
    }

    async fn serve(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let listeners = herald_gateway::Listeners::bind(&config).await?;
        herald_gateway::run(config, listeners, shutdown).await
    }
}

fn main() -> ExitCode {
    herald_runtime::service::run::<Gateway>(&Args::parse().service)
}

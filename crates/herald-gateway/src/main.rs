//! `herald-gateway`: parse arguments, load configuration, start logging, run the node.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use herald_gateway::config::{GatewayConfig, LogFormat};
use tokio_util::sync::CancellationToken;

/// The Herald WebSocket gateway. With no configuration it runs one node on the embedded
/// in-memory broker: WebSocket on 0.0.0.0:8080/ws, HTTP API on 0.0.0.0:9090.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A TOML configuration file. `HERALD__SECTION__KEY` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit: 0 when valid, 2 with the reason when not.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match GatewayConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let json = config.log.format == LogFormat::Json;
    if let Err(e) = herald_runtime::logging::init(&config.log.level, json) {
        eprintln!("herald-gateway: configuration: log.level: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listeners = match herald_gateway::Listeners::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        herald_runtime::shutdown::cancel_on_signal(shutdown.clone());
        match herald_gateway::run(config, listeners, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

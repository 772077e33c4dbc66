//! `herald-gateway`: parse arguments, then load configuration, start logging and run the node
//! (`herald_runtime::service::main`).

use std::process::ExitCode;

use clap::Parser;
use herald_gateway::config::GatewayConfig;
use herald_runtime::service::{Launch, ServiceArgs};

/// The Herald WebSocket gateway. With no configuration it runs one node on the embedded
/// in-memory broker: WebSocket on 0.0.0.0:8080/ws, HTTP API on 0.0.0.0:9090.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    let args = Args::parse().service;
    if let Some(path) = &args.probe {
        let api = |c: &GatewayConfig| c.listen.api;
        return herald_runtime::service::probe(
            "herald-gateway",
            args.config.as_deref(),
            GatewayConfig::load,
            api,
            path,
        );
    }
    let launch = Launch {
        name: "herald-gateway",
        config_file: args.config.as_deref(),
        check_only: args.check_config,
        multi_thread: true,
    };
    herald_runtime::service::main(
        &launch,
        GatewayConfig::load,
        |c| &c.log,
        |config, shutdown| async move {
            let listeners = herald_gateway::Listeners::bind(&config).await?;
            herald_gateway::run(config, listeners, shutdown).await
        },
    )
}

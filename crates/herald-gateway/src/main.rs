//! `herald-gateway`: parse arguments, then load configuration, start logging and run the node
//! (`herald_runtime::service::main`).

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use herald_gateway::config::GatewayConfig;
use herald_runtime::service::Launch;

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

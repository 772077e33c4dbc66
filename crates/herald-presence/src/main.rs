//! `herald-presence`: parse arguments, then load configuration, start logging and run the
//! service (`herald_runtime::service::main`).

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use herald_presence::config::PresenceServiceConfig;
use herald_runtime::service::Launch;

/// The Herald presence service: expires the presence leases of gateway nodes that died, and
/// answers member queries. Run one or more replicas next to gateways that use Redis.
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
        name: "herald-presence",
        config_file: args.config.as_deref(),
        check_only: args.check_config,
        // One expiry call per interval and a few queries: one thread is plenty.
        multi_thread: false,
    };
    herald_runtime::service::main(
        &launch,
        PresenceServiceConfig::load,
        |c| &c.log,
        |config, shutdown| async move {
            let listener = herald_presence::bind(&config).await?;
            herald_presence::run(config, listener, shutdown).await
        },
    )
}

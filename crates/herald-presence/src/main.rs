//! `herald-presence`: parse arguments, then load configuration, start logging and run the
//! service (`herald_runtime::service::main`).

use std::process::ExitCode;

use clap::Parser;
use herald_presence::config::PresenceServiceConfig;
use herald_runtime::service::{Launch, ServiceArgs};

/// The Herald presence service: expires the presence leases of gateway nodes that died, and
/// answers member queries. Run one or more replicas next to gateways that use Redis.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    let args = Args::parse().service;
    if let Some(path) = &args.probe {
        let api = |c: &PresenceServiceConfig| c.listen.api;
        return herald_runtime::service::probe(
            "herald-presence",
            args.config.as_deref(),
            PresenceServiceConfig::load,
            api,
            path,
        );
    }
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

//! What every Herald deployable's `main` does around its own work.

use std::{fmt::Display, future::Future, path::Path, process::ExitCode};

use tokio_util::sync::CancellationToken;

use crate::{config::ConfigError, logging::LogConfig};

/// How a deployable was started.
pub struct Launch<'a> {
    /// The program's name, for messages.
    pub name: &'static str,
    /// `--config PATH`, when given.
    pub config_file: Option<&'a Path>,
    /// `--check-config`: validate the configuration and exit.
    pub check_only: bool,
    /// Run on a multi-threaded runtime (else on the current thread).
    pub multi_thread: bool,
}

/// Loads the configuration with `load` (exit 2 with the reason when it is bad), answers
/// `--check-config`, starts logging as `log` says, then runs `serve` on a tokio runtime with
/// a token cancelled by SIGTERM or SIGINT. Exit 0 when `serve` returns `Ok`, 1 otherwise.
pub fn main<C, E, F>(
    launch: &Launch<'_>,
    load: impl FnOnce(Option<&Path>) -> Result<C, ConfigError>,
    log: impl FnOnce(&C) -> &LogConfig,
    serve: impl FnOnce(C, CancellationToken) -> F,
) -> ExitCode
where
    E: Display,
    F: Future<Output = Result<(), E>>,
{
    let name = launch.name;
    let config = match load(launch.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if launch.check_only {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = log(&config).init() {
        eprintln!("{name}: configuration: log.level: {e}");
        return ExitCode::from(2);
    }
    let mut builder = if launch.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::shutdown::cancel_on_signal(shutdown.clone());
        match serve(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

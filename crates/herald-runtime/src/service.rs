//! What every Herald deployable's `main` does around its own work.

use std::{
    fmt::Display,
    future::Future,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::{config::ConfigError, logging::LogConfig};

/// The command-line options every deployable takes (flatten it into the binary's parser).
#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// A TOML configuration file. `HERALD__SECTION__KEY` environment variables override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit: 0 when valid, 2 with the reason when not.
    #[arg(long)]
    pub check_config: bool,
    /// Ask the running process's internal listener (`listen.api` of the same configuration)
    /// for PATH, such as `/readyz`, and exit 0 when it answers 2xx, 1 otherwise: a health
    /// check for container images without a shell or curl.
    #[arg(long, value_name = "PATH")]
    pub probe: Option<String>,
}

/// `--probe`: loads the configuration as the service would, asks `GET path` of the internal
/// listener that `api` names (a wildcard address is asked on loopback), and exits 0 on a 2xx
/// answer within 2 s, 1 otherwise (2 when the configuration is bad).
pub fn probe<C>(
    name: &'static str,
    config_file: Option<&Path>,
    load: impl FnOnce(Option<&Path>) -> Result<C, ConfigError>,
    api: impl FnOnce(&C) -> SocketAddr,
    path: &str,
) -> ExitCode {
    let config = match load(config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut addr = api(&config);
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    match status_of(addr, path) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("{name}: GET {path} on {addr}: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{name}: GET {path} on {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The status code of `GET path` at `addr`, over one HTTP/1.1 connection.
fn status_of(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    // "HTTP/1.1 200 ..."
    std::str::from_utf8(&head[..read])
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// A deployable, as its `main` runs it ([`run`]): how it loads its configuration, where its
/// internal listener is (for `--probe`), and what it serves.
pub trait Service {
    /// The program's name, for messages.
    const NAME: &'static str;
    /// Run on a multi-threaded runtime when the process may use more than one CPU (else, and
    /// when false, on the current thread).
    const MULTI_THREAD: bool;
    /// Its configuration.
    type Config;
    /// Why serving failed.
    type Error: Display;

    /// Loads the configuration from an optional file and the environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming what is wrong.
    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError>;
    /// The internal listener (`listen.api`) that `--probe` asks.
    fn api(config: &Self::Config) -> SocketAddr;
    /// The logging section.
    fn log(config: &Self::Config) -> &LogConfig;
    /// Binds and serves until `shutdown` is cancelled and the drain is done.
    fn serve(
        config: Self::Config,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// A deployable's whole `main` after parsing its arguments: `--probe`, or [`main`] with `S`.
pub fn run<S: Service>(args: &ServiceArgs) -> ExitCode {
    let file = args.config.as_deref();
    if let Some(path) = &args.probe {
        return probe(S::NAME, file, S::load, S::api, path);
    }
    let launch = Launch {
        name: S::NAME,
        config_file: file,
        check_only: args.check_config,
        multi_thread: S::MULTI_THREAD,
    };
    main(&launch, S::load, S::log, S::serve)
}

/// How a deployable was started.
pub struct Launch<'a> {
    /// The program's name, for messages.
    pub name: &'static str,
    /// `--config PATH`, when given.
    pub config_file: Option<&'a Path>,
    /// `--check-config`: validate the configuration and exit.
    pub check_only: bool,
    /// Run on a multi-threaded runtime when the process may use more than one CPU.
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
    // One CPU (an affinity mask or a cgroup quota of one): the multi-threaded scheduler would
    // run one worker and still pay for its machinery (a wss connect, subscribe and close cost
    // the gateway 12% more CPU on it than on the current-thread runtime; docs/benchmarks.md).
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let multi_thread = launch.multi_thread && cpus > 1;
    let mut builder = if multi_thread {
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
    let code = runtime.block_on(async move {
        let flavor = if multi_thread {
            "multi-thread"
        } else {
            "current-thread"
        };
        tracing::info!(cpus, runtime = flavor, "starting");
        let shutdown = CancellationToken::new();
        crate::shutdown::cancel_on_signal(shutdown.clone());
        match serve(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    });
    // The last lines, if the log reader takes them promptly; never a wait on one that does not.
    crate::logging::sink::flush(Duration::from_millis(500));
    code
}

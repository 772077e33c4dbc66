//! `herald-gateway`: parse arguments, then load configuration, start logging and run the node
//! (`herald_runtime::service::run`); or `herald-gateway token ...`: print a connection token
//! signed with the configured key.

use std::{net::SocketAddr, path::Path, process::ExitCode};

use clap::{Parser, Subcommand};
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a connection token for USER, signed with a key of the configuration's
    /// `[[auth.keys]]` (the first, or `--kid`), with its `auth.audience` and `auth.issuer`:
    /// for trying private channels and presence. Applications sign their own.
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The user (`sub`).
    #[arg(long, value_name = "USER")]
    sub: String,
    /// Private channels the token grants (`channels`), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "CHANNELS")]
    channels: Vec<String>,
    /// How long the token is valid, such as 30m or 1h.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    /// The user's presence info, as JSON (`info`).
    #[arg(long, value_name = "JSON")]
    info: Option<String>,
    /// Sign with the key of this `kid`.
    #[arg(long)]
    kid: Option<String>,
    /// The private key (PEM) of an RS256 or ES256 key; HS256 keys sign with their secret.
    #[arg(long, value_name = "PATH")]
    private_key_file: Option<std::path::PathBuf>,
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
    let args = Args::parse();
    match args.command {
        Some(Command::Token(token)) => print_token(args.service.config.as_deref(), &token),
        None => herald_runtime::service::run::<Gateway>(&args.service),
    }
}

/// `herald-gateway token`: 0 with the token on stdout; 2 for a bad configuration, 1 when no
/// token can be made, with the reason on stderr.
fn print_token(file: Option<&Path>, args: &TokenArgs) -> ExitCode {
    let config = match GatewayConfig::load(file) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("herald-gateway token: {e}");
            return ExitCode::from(2);
        }
    };
    let info = match args.info.as_deref().map(serde_json::from_str).transpose() {
        Ok(info) => info,
        Err(e) => {
            eprintln!("herald-gateway token: --info is not JSON: {e}");
            return ExitCode::from(1);
        }
    };
    let private = match &args.private_key_file {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("herald-gateway token: cannot read {}: {e}", path.display());
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let grant = herald_auth::Grant {
        sub: args.sub.clone(),
        channels: args.channels.clone(),
        ttl: args.ttl,
        info,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match herald_auth::mint(
        &config.auth,
        args.kid.as_deref(),
        private.as_deref(),
        &grant,
        now,
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald-gateway token: {e}");
            ExitCode::from(1)
        }
    }
}

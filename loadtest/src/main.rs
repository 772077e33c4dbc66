//! `herald-loadtest`: a black-box load generator for Herald gateways.
//!
//! It speaks to gateways only over their public interfaces (WebSocket and HTTP API) and
//! depends on herald-protocol alone. It reads server CPU and memory from `/proc` of the pids it
//! is given, reports its own CPU, and marks a step invalid when its own core saturates: a
//! figure measured by a saturated generator measures the generator.

mod client;
mod procfs;
mod report;
mod scenario;
mod sse;
mod stats;
mod tls;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// Load scenarios against running Herald gateways.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Microseconds the generator sleeps before it waits for its sockets again, so that what
    /// arrives meanwhile is read in one go. Its wait for each arrival would otherwise cost the
    /// server's core a wake-up of the generator's thread: on loopback the kernel wakes the
    /// reader from the writer's side. Measured latency includes this sleep (it can only add).
    /// 0 waits at once.
    #[arg(long, global = true, default_value_t = 50)]
    settle_us: u64,
    #[command(flatten)]
    tls: tls::TlsArgs,
}

#[derive(Subcommand)]
enum Scenario {
    /// Open N connections, each subscribed to one of C channels; report connect rate,
    /// handshake latency and server memory per connection.
    Idle(scenario::idle::IdleArgs),
    /// S subscribers on one channel, publishers at increasing fixed rates through the HTTP
    /// API; report deliveries/s, loss, duplicates, reordering, latency, server CPU per
    /// delivery. With `--api` on another node than `--ws`, this is the cross-node scenario.
    Fanout(scenario::fanout::FanoutArgs),
    /// Connect, subscribe and disconnect at a fixed rate; report the server's cost per cycle
    /// and whether its memory comes back.
    Churn(scenario::churn::ChurnArgs),
    /// N clients that missed M publications of one channel come back at once and recover
    /// them; report how long it took and the history reads Redis served.
    Storm(scenario::storm::StormArgs),
}

/// Options every scenario takes.
#[derive(Args, Clone, Debug)]
pub(crate) struct Common {
    /// WebSocket address(es) of the gateway(s), `host:port`, comma-separated; connections are
    /// spread over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    pub(crate) ws: Vec<SocketAddr>,
    /// WebSocket path.
    #[arg(long, default_value = "/ws")]
    pub(crate) path: String,
    /// Pids of the server processes whose CPU and memory are reported, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) server_pid: Vec<u32>,
    /// Where to write the JSON report.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tls::init(&cli.tls);
    // One thread: the generator's cost stays on one core, where it can be measured.
    let settle = std::time::Duration::from_micros(cli.settle_us);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Called when no task is ready, before the runtime waits in epoll.
        .on_thread_park(move || {
            if !settle.is_zero() {
                std::thread::sleep(settle);
            }
        })
        .build()?;
    let mut report = runtime.block_on(async {
        match cli.scenario {
            Scenario::Idle(args) => scenario::idle::run(args).await,
            Scenario::Fanout(args) => scenario::fanout::run(args).await,
            Scenario::Churn(args) => scenario::churn::run(args).await,
            Scenario::Storm(args) => scenario::storm::run(args).await,
        }
    })?;
    if let Some(fields) = report.json.as_object_mut() {
        fields.insert("settle_us".into(), cli.settle_us.into());
        fields.insert("tls".into(), cli.tls.tls.into());
        fields.insert(
            "tls_resumption".into(),
            (cli.tls.tls && !cli.tls.no_resume).into(),
        );
    }
    print!("{}", report.table());
    if let Some(path) = report.path() {
        std::fs::write(path, serde_json::to_vec_pretty(&report.json())?)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

//! `idle`: many subscribed connections doing nothing; what each costs the server.

use std::time::{Duration, Instant};

use clap::Args;
use tokio::net::TcpStream;

use crate::{client, procfs, report::Report, stats::Percentiles, Common};

/// Options of the idle scenario.
#[derive(Args, Debug)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open (this process holds them all: stay under its open-file limit).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Channels to spread the subscriptions over.
    #[arg(long, default_value_t = 100)]
    channels: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to let the server settle before reading its memory.
    #[arg(long, default_value_t = 3)]
    settle_seconds: u64,
}

async fn open_one(args: &IdleArgs, i: usize) -> anyhow::Result<(TcpStream, u32)> {
    let addr = args.common.ws[i % args.common.ws.len()];
    let started = Instant::now();
    let (mut stream, mut pending) = client::connect(addr, &args.common.path).await?;
    let handshake = started.elapsed();
    let channel = format!("idle-{}", i % args.channels.max(1));
    tokio::io::AsyncWriteExt::write_all(&mut stream, &client::subscribe_frame(1, &channel)).await?;
    let reply = client::read_frame(&mut stream, &mut pending).await?;
    anyhow::ensure!(
        reply.starts_with(br#"{"id":1,"ok""#),
        "subscribe failed: {}",
        String::from_utf8_lossy(&reply)
    );
    Ok((stream, handshake.as_micros() as u32))
}

pub(crate) async fn run(args: IdleArgs) -> anyhow::Result<Report> {
    let pids = &args.common.server_pid;
    let rss_before = procfs::rss_of(pids)?;
    let started = Instant::now();
    let mut held = Vec::with_capacity(args.connections);
    let mut handshakes = Vec::with_capacity(args.connections);
    let mut next = 0;
    while next < args.connections {
        let batch = (next..(next + args.concurrency).min(args.connections))
            .map(|i| open_one(&args, i))
            .collect::<Vec<_>>();
        for result in futures_util::future::join_all(batch).await {
            let (stream, micros) = result?;
            held.push(stream);
            handshakes.push(micros);
        }
        next += args.concurrency;
        if next % 5000 < args.concurrency {
            eprint!(
                "\r{} connections, {:.0}/s",
                held.len(),
                held.len() as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let took = started.elapsed();
    eprintln!();
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let rss_after = procfs::rss_of(pids)?;
    let n = held.len();
    let per_conn_kib = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    let rate = n as f64 / took.as_secs_f64();
    let latency = Percentiles::of(&mut handshakes);
    let json = serde_json::json!({
        "scenario": "idle",
        "connections": n,
        "channels": args.channels,
        "connect_seconds": took.as_secs_f64(),
        "connects_per_second": rate,
        "handshake_latency": latency,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "server_kib_per_connection": per_conn_kib,
    });
    Ok(Report {
        title: format!(
            "idle: {n} subscribed connections over {} channels",
            args.channels
        ),
        header: vec![
            "connects/s",
            "handshake p50 ms",
            "p99 ms",
            "server RSS before MiB",
            "after MiB",
            "KiB/conn",
        ],
        rows: vec![vec![
            format!("{rate:.0}"),
            format!("{:.2}", latency.p50_ms),
            format!("{:.2}", latency.p99_ms),
            format!("{:.1}", rss_before as f64 / 1024.0),
            format!("{:.1}", rss_after as f64 / 1024.0),
            format!("{per_conn_kib:.2}"),
        ]],
        summary: vec![],
        json,
        path: args.common.report.clone(),
    })
}

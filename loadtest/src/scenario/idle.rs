//! `idle`: many subscribed connections doing nothing; what each costs the server.
//!
//! One process holds at most its open-file limit (20,000 here) of connections, and one source
//! address about 28k ports per destination. `--workers` spreads the connections over child
//! processes and `--source-ips` over 127.0.0.1, 127.0.0.2, ... so that a run can hold 100k.

use std::{
    io::{BufRead, Write},
    net::{IpAddr, Ipv4Addr},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;

use crate::{client, procfs, report::Report, stats::Percentiles, Common};

/// Options of the idle scenario.
#[derive(Args, Debug)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open in all.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Channels to spread the subscriptions over.
    #[arg(long, default_value_t = 100)]
    channels: usize,
    /// Handshakes in flight at once, per process.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to let the server settle before reading its memory.
    #[arg(long, default_value_t = 3)]
    settle_seconds: u64,
    /// Processes to spread the connections over (each stays under its open-file limit).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Source addresses 127.0.0.1 .. 127.0.0.N to spread the connections over.
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Hold Server-Sent Events streams (`GET /v1/sse`) instead of WebSocket connections.
    #[arg(long)]
    sse: bool,
    /// Internal: run as worker number I of `--workers`, opening connections I, I+W, I+2W...
    #[arg(long, hide = true)]
    worker: Option<usize>,
}

async fn open_one(args: &IdleArgs, i: usize) -> anyhow::Result<(client::Conn, u32)> {
    let addr = args.common.ws[i % args.common.ws.len()];
    let source = (args.source_ips > 1).then(|| {
        IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (i % usize::from(args.source_ips)) as u8,
        ))
    });
    let started = Instant::now();
    let channel = format!("idle-{}", i % args.channels.max(1));
    if args.sse {
        // A stream is subscribed once it has started.
        let (stream, _) = crate::sse::open(addr, &channel, source).await?;
        return Ok((stream, started.elapsed().as_micros() as u32));
    }
    let (mut stream, mut pending) =
        client::connect_with(addr, &args.common.path, None, source).await?;
    let handshake = started.elapsed();
    client::send(&mut stream, &client::subscribe_frame(1, &channel)).await?;
    let reply = client::read_frame(&mut stream, &mut pending).await?;
    anyhow::ensure!(
        reply.starts_with(br#"{"id":1,"ok""#),
        "subscribe failed: {}",
        String::from_utf8_lossy(&reply)
    );
    Ok((stream, handshake.as_micros() as u32))
}

/// Opens this process's share of the connections; returns them and the handshake times.
async fn open_share(
    args: &IdleArgs,
    worker: usize,
    workers: usize,
) -> anyhow::Result<(Vec<client::Conn>, Vec<u32>)> {
    let mine = (worker..args.connections).step_by(workers);
    let mut held = Vec::with_capacity(mine.len());
    let mut handshakes = Vec::with_capacity(mine.len());
    // A new handshake starts as soon as one finishes: no batch waits for its slowest member.
    let mut opened = futures_util::stream::iter(mine)
        .map(|i| open_one(args, i))
        .buffer_unordered(args.concurrency.max(1));
    while let Some(result) = opened.next().await {
        let (stream, micros) = result?;
        held.push(stream);
        handshakes.push(micros);
    }
    Ok((held, handshakes))
}

/// A worker: opens its share, reports it on stdout, holds it until stdin closes.
async fn work(args: &IdleArgs, worker: usize) -> anyhow::Result<Report> {
    let (held, handshakes) = open_share(args, worker, args.workers).await?;
    let line = serde_json::json!({ "handshakes_us": handshakes });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await?;
    drop(held);
    std::process::exit(0);
}

pub(crate) async fn run(args: IdleArgs) -> anyhow::Result<Report> {
    if let Some(worker) = args.worker {
        return work(&args, worker).await;
    }
    let pids = &args.common.server_pid;
    let rss_before = procfs::rss_of(pids)?;
    let started = Instant::now();
    let (held, mut handshakes, children) = if args.workers <= 1 {
        let (held, handshakes) = open_share(&args, 0, 1).await?;
        (held, handshakes, Vec::new())
    } else {
        let mut children = Vec::new();
        for i in 0..args.workers {
            let child = Command::new(std::env::current_exe()?)
                .args(std::env::args().skip(1))
                .args(["--worker", &i.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a worker")?;
            children.push(child);
        }
        let mut handshakes = Vec::new();
        for child in &mut children {
            let stdout = child.stdout.take().context("worker stdout")?;
            let line =
                tokio::task::spawn_blocking(move || std::io::BufReader::new(stdout).lines().next())
                    .await?
                    .context("a worker ended before reporting")??;
            let v: serde_json::Value = serde_json::from_str(&line)?;
            handshakes.extend(
                v["handshakes_us"]
                    .as_array()
                    .context("worker report")?
                    .iter()
                    .filter_map(|x| x.as_u64().map(|n| n as u32)),
            );
        }
        (Vec::new(), handshakes, children)
    };
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let rss_after = procfs::rss_of(pids)?;
    let n = handshakes.len();
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    drop(held);
    let per_conn_kib = (rss_after.saturating_sub(rss_before)) as f64 / n.max(1) as f64;
    let rate = n as f64 / took.as_secs_f64();
    let latency = Percentiles::of(&mut handshakes);
    let json = serde_json::json!({
        "scenario": "idle",
        "transport": if args.sse { "sse" } else { "websocket" },
        "connections": n,
        "channels": args.channels,
        "workers": args.workers,
        "source_ips": args.source_ips,
        "connect_seconds": took.as_secs_f64(),
        "connects_per_second": rate,
        "handshake_latency": latency,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "server_kib_per_connection": per_conn_kib,
    });
    Ok(Report {
        title: format!(
            "idle: {n} subscribed {} over {} channels ({} process(es), {} source address(es))",
            if args.sse {
                "event streams"
            } else {
                "connections"
            },
            args.channels,
            args.workers,
            args.source_ips
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

//! `churn`: connections that connect, subscribe and leave, at a fixed rate. Reports what the
//! server spends per cycle, and whether its memory comes back (a leak shows as growth).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use clap::Args;

use crate::{client, procfs, report::Report, stats::Percentiles, Common};

/// Options of the churn scenario.
#[derive(Args, Debug)]
pub(crate) struct ChurnArgs {
    #[command(flatten)]
    common: Common,
    /// Connect/subscribe/disconnect cycles per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds to churn.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Channels the cycles subscribe to, round robin.
    #[arg(long, default_value_t = 100)]
    channels: usize,
}

async fn cycle(args: &ChurnArgs, i: u64) -> anyhow::Result<u32> {
    let addr = args.common.ws[i as usize % args.common.ws.len()];
    let started = Instant::now();
    let (mut stream, mut pending) = client::connect(addr, &args.common.path).await?;
    let channel = format!("churn-{}", i % args.channels.max(1) as u64);
    client::send(&mut stream, &client::subscribe_frame(1, &channel)).await?;
    let reply = client::read_frame(&mut stream, &mut pending).await?;
    anyhow::ensure!(reply.starts_with(br#"{"id":1,"ok""#), "subscribe failed");
    let took = started.elapsed().as_micros() as u32;
    drop(stream);
    Ok(took)
}

pub(crate) async fn run(args: ChurnArgs) -> anyhow::Result<Report> {
    let args = Arc::new(args);
    let pids = args.common.server_pid.clone();
    let (rss_before, cpu_before, own_before) = (
        procfs::rss_of(&pids)?,
        procfs::cpu_of(&pids)?,
        procfs::cpu_seconds("self")?,
    );
    let failures = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let total = u64::from(args.rate) * args.seconds;
    let mut pace =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        pace.tick().await;
        let (args, failures, latencies) = (args.clone(), failures.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            match cycle(&args, i).await {
                Ok(us) => latencies.lock().unwrap_or_else(|e| e.into_inner()).push(us),
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the server notice the last disconnects before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = procfs::rss_of(&pids)?;
    let server_cpu = procfs::cpu_of(&pids)? - cpu_before;
    let own = (procfs::cpu_seconds("self")? - own_before) / elapsed;
    let failed = failures.load(Ordering::Relaxed);
    let mut samples = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let done = samples.len();
    let latency = Percentiles::of(&mut samples);
    let achieved = done as f64 / elapsed;
    let per_cycle_us = server_cpu * 1e6 / done.max(1) as f64;
    Ok(Report {
        title: format!(
            "churn: {} cycles/s offered for {} s",
            args.rate, args.seconds
        ),
        header: vec![
            "cycles/s",
            "failed",
            "p50 ms",
            "p99 ms",
            "server us/cycle",
            "RSS before MiB",
            "after MiB",
            "generator",
            "valid",
        ],
        rows: vec![vec![
            format!("{achieved:.0}"),
            failed.to_string(),
            format!("{:.2}", latency.p50_ms),
            format!("{:.2}", latency.p99_ms),
            format!("{per_cycle_us:.1}"),
            format!("{:.1}", rss_before as f64 / 1024.0),
            format!("{:.1}", rss_after as f64 / 1024.0),
            format!("{:.0}%", own * 100.0),
            if own < 0.9 {
                "yes".into()
            } else {
                "INVALID".into()
            },
        ]],
        summary: vec![],
        json: serde_json::json!({
            "scenario": "churn", "offered_per_second": args.rate, "seconds": args.seconds,
            "cycles": done, "failed": failed, "cycles_per_second": achieved,
            "cycle_latency": latency, "server_cpu_us_per_cycle": per_cycle_us,
            "server_rss_before_kib": rss_before, "server_rss_after_kib": rss_after,
            "generator_cpu_share": own,
        }),
        path: args.common.report.clone(),
    })
}

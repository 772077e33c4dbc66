//! `fanout` (and cross-node): S subscribers on one channel (or spread over C channels),
//! publications at increasing fixed rates through the HTTP API, taking the channels in turn.
//! Each payload carries its send time; each subscriber checks loss, duplicates and order
//! against its channel's offsets, and records latency.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Args;

use crate::{client, procfs, report::Report, stats::Percentiles, Common};

mod subscriber;

use subscriber::{subscriber, Seen};

/// Options of the fan-out scenario.
#[derive(Args, Debug)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// HTTP API address(es) to publish through, comma-separated. Another node than `--ws`
    /// makes this the cross-node scenario.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9090")]
    api: Vec<SocketAddr>,
    /// Subscribers, spread evenly over the channels.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Channels: subscriber i joins channel i mod C, and publication n goes to channel n mod C.
    /// With more than one, each message reaches S/C subscribers (the light-load scenario:
    /// many small channels).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Publication rates to step through, messages per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,300,500,1000")]
    rates: Vec<u32>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5)]
    step_seconds: u64,
    /// Payload size in bytes (about).
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Concurrent publishing connections.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// A step is held when nothing is lost and p99 stays under this bound.
    #[arg(long, default_value_t = 20.0)]
    p99_bound_ms: f64,
    /// Share of additional subscribers that stop reading once subscribed (the `slow`
    /// scenario, e.g. 0.01). They have small receive buffers; at the end they read again and
    /// report whether the server closed them as slow consumers (4001).
    #[arg(long, default_value_t = 0.0)]
    stalled_fraction: f64,
    /// Subscribe over Server-Sent Events (`GET /v1/sse`) instead of WebSocket.
    #[arg(long)]
    sse: bool,
}

impl FanoutArgs {
    /// The name of channel `k`: `load` when there is one channel, `load-{k}` otherwise.
    fn channel(&self, k: usize) -> String {
        if self.channels <= 1 {
            "load".into()
        } else {
            format!("load-{k}")
        }
    }

    /// How many subscribers each channel has.
    fn subscribers_per_channel(&self) -> Vec<u64> {
        let channels = self.channels.max(1);
        (0..channels)
            .map(|k| ((self.subscribers + channels - 1 - k) / channels) as u64)
            .collect()
    }
}

/// A subscriber that reads nothing until `release`, then reads up to the close frame and
/// returns its code (0 when the connection ended without one).
async fn stalled(
    addr: SocketAddr,
    path: String,
    release: Arc<tokio::sync::Notify>,
) -> anyhow::Result<u16> {
    let (mut stream, mut pending) = client::connect_with(addr, &path, Some(4096), None).await?;
    client::send(&mut stream, &client::subscribe_frame(1, "load")).await?;
    client::read_frame(&mut stream, &mut pending).await?;
    release.notified().await;
    loop {
        match client::read_any_frame(&mut stream, &mut pending).await {
            Ok((8, payload)) if payload.len() >= 2 => {
                return Ok(u16::from_be_bytes([payload[0], payload[1]]))
            }
            Ok((8, _)) => return Ok(1005),
            Ok(_) => {}
            Err(_) => return Ok(0),
        }
    }
}

/// Publishes `count` messages at `rate`/s total from `publishers` connections, message n to
/// channel n mod C; returns how many were accepted and how many deliveries they owe.
async fn publish_step(
    args: &FanoutArgs,
    rate: u32,
    first_seq: u64,
    count: u64,
) -> anyhow::Result<(u64, u64)> {
    let filler = "x".repeat(args.payload.saturating_sub(40));
    let channels: Arc<Vec<String>> =
        Arc::new((0..args.channels.max(1)).map(|k| args.channel(k)).collect());
    let owed = Arc::new(args.subscribers_per_channel());
    let next = Arc::new(AtomicU64::new(first_seq));
    let end = first_seq + count;
    let publishers = args.publishers;
    let period = Duration::from_secs_f64(publishers as f64 / f64::from(rate.max(1)));
    let tasks: Vec<_> = (0..args.publishers)
        .map(|p| {
            let (next, filler) = (next.clone(), filler.clone());
            let (channels, owed) = (channels.clone(), owed.clone());
            let api = args.api[p % args.api.len()];
            tokio::spawn(async move {
                let mut conn = client::HttpConn::open(api).await?;
                // Publishers take evenly spaced turns: together they offer a steady rate,
                // not a burst of `publishers` messages every period.
                let phase = period.mul_f64(p as f64 / publishers as f64);
                let start = tokio::time::Instant::now() + phase;
                let mut pace = tokio::time::interval_at(start, period);
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let (mut accepted, mut expected) = (0u64, 0u64);
                loop {
                    pace.tick().await;
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= end {
                        return anyhow::Ok((accepted, expected));
                    }
                    let k = (seq % channels.len() as u64) as usize;
                    let body = format!(
                        r#"{{"channel":"{}","data":"{}|{seq}|{filler}"}}"#,
                        channels[k],
                        client::now_us()
                    );
                    if conn.post("/v1/publish", body.as_bytes()).await? == 200 {
                        accepted += 1;
                        expected += owed[k];
                    }
                }
            })
        })
        .collect();
    let (mut accepted, mut expected) = (0, 0);
    for t in tasks {
        let (a, e) = t.await??;
        accepted += a;
        expected += e;
    }
    Ok((accepted, expected))
}

pub(crate) async fn run(args: FanoutArgs) -> anyhow::Result<Report> {
    let seen: Vec<Arc<Seen>> = (0..args.subscribers).map(|_| Arc::default()).collect();
    for (i, s) in seen.iter().enumerate() {
        let addr = args.common.ws[i % args.common.ws.len()];
        let channel = args.channel(i % args.channels.max(1));
        tokio::spawn(subscriber(
            addr,
            args.common.path.clone(),
            channel,
            s.clone(),
            args.sse,
        ));
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let stalled_count = (args.subscribers as f64 * args.stalled_fraction).round() as usize;
    let release = Arc::new(tokio::sync::Notify::new());
    let stalled_tasks: Vec<_> = (0..stalled_count)
        .map(|i| {
            let addr = args.common.ws[i % args.common.ws.len()];
            tokio::spawn(stalled(addr, args.common.path.clone(), release.clone()))
        })
        .collect();
    // Wait until every subscriber is in: a probe message on every channel reaches all of them.
    let ready = Instant::now();
    let mut probe = client::HttpConn::open(args.api[0]).await?;
    let mut seq = 1u64;
    loop {
        for k in 0..args.channels.max(1) {
            let body = format!(
                r#"{{"channel":"{}","data":"{}|{seq}|probe"}}"#,
                args.channel(k),
                client::now_us()
            );
            probe.post("/v1/publish", body.as_bytes()).await?;
        }
        seq += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if seen.iter().all(|s| s.received.load(Ordering::Relaxed) > 0) {
            break;
        }
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(60),
            "subscribers did not all connect"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in &seen {
        s.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    let pids = &args.common.server_pid;
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let mut best_held = None;
    for &rate in &args.rates {
        let count = u64::from(rate) * args.step_seconds;
        let received_before: u64 = seen
            .iter()
            .map(|s| s.received.load(Ordering::Relaxed))
            .sum();
        let (server_cpu, own_cpu, started) = (
            procfs::cpu_of(pids)?,
            procfs::cpu_seconds("self")?,
            Instant::now(),
        );
        let (accepted, expected) = publish_step(&args, rate, seq, count).await?;
        seq += count;
        // Let what is in flight arrive.
        let drain = Instant::now();
        while drain.elapsed() < Duration::from_secs(3) {
            let got: u64 = seen
                .iter()
                .map(|s| s.received.load(Ordering::Relaxed))
                .sum::<u64>()
                - received_before;
            if got >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let publishing = args.step_seconds as f64;
        let server_cpu = procfs::cpu_of(pids)? - server_cpu;
        let own_cpu = procfs::cpu_seconds("self")? - own_cpu;
        let received: u64 = seen
            .iter()
            .map(|s| s.received.load(Ordering::Relaxed))
            .sum::<u64>()
            - received_before;
        let mut samples: Vec<u32> = Vec::with_capacity(received as usize);
        for s in &seen {
            samples.append(&mut s.latencies.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let latency = Percentiles::of(&mut samples);
        let lost = expected.saturating_sub(received);
        let duplicates: u64 = seen
            .iter()
            .map(|s| s.duplicates.swap(0, Ordering::Relaxed))
            .sum();
        let reordered: u64 = seen
            .iter()
            .map(|s| s.reordered.swap(0, Ordering::Relaxed))
            .sum();
        let own_share = own_cpu / elapsed;
        let valid = own_share < 0.9;
        let held = valid
            && lost == 0
            && duplicates == 0
            && latency.p99_ms <= args.p99_bound_ms
            && accepted == count;
        if held {
            best_held = Some(expected as f64 / args.step_seconds as f64);
        }
        let per_delivery_us = if received > 0 {
            server_cpu * 1e6 / received as f64
        } else {
            0.0
        };
        let deliveries_per_s = received as f64 / publishing;
        eprintln!(
            "rate {rate}/s: {deliveries_per_s:.0} deliveries/s, p99 {:.2} ms, lost {lost}, generator {:.0}%",
            latency.p99_ms,
            own_share * 100.0
        );
        rows.push(vec![
            rate.to_string(),
            format!("{deliveries_per_s:.0}"),
            lost.to_string(),
            duplicates.to_string(),
            reordered.to_string(),
            format!("{:.2}", latency.p50_ms),
            format!("{:.2}", latency.p95_ms),
            format!("{:.2}", latency.p99_ms),
            format!("{:.2}", latency.p999_ms),
            format!("{:.2}", latency.max_ms),
            format!("{per_delivery_us:.2}"),
            format!("{:.0}%", own_share * 100.0),
            if !valid {
                "INVALID".into()
            } else if held {
                "held".into()
            } else {
                "no".into()
            },
        ]);
        steps.push(serde_json::json!({
            "rate": rate, "published": accepted, "expected_deliveries": expected,
            "received": received, "deliveries_per_second": deliveries_per_s,
            "lost": lost, "duplicates": duplicates, "reordered": reordered,
            "latency": latency, "server_cpu_seconds": server_cpu,
            "server_cpu_us_per_delivery": per_delivery_us,
            "generator_cpu_share": own_share, "valid": valid, "held": held,
        }));
    }
    // The stalled subscribers read again: were they closed as slow consumers?
    release.notify_waiters();
    let mut evicted = 0usize;
    for t in stalled_tasks {
        if let Ok(Ok(Ok(4001))) = tokio::time::timeout(Duration::from_secs(10), t).await {
            evicted += 1;
        }
    }
    let mut summary = vec![match best_held {
        Some(d) => format!(
            "highest rate held (no loss, p99 <= {} ms): {d:.0} deliveries/s",
            args.p99_bound_ms
        ),
        None => format!("no step held (no loss, p99 <= {} ms)", args.p99_bound_ms),
    }];
    if stalled_count > 0 {
        summary.push(format!(
            "{stalled_count} subscribers stopped reading; {evicted} were closed with 4001 (slow consumer)"
        ));
    }
    Ok(Report {
        title: format!(
            "fanout: {} subscribers on {} channel(s), {} B payloads, {} s steps",
            args.subscribers,
            args.channels.max(1),
            args.payload,
            args.step_seconds
        ),
        header: vec![
            "msg/s",
            "deliveries/s",
            "lost",
            "dup",
            "reord",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "server us/delivery",
            "generator",
            "held",
        ],
        rows,
        summary,
        json: serde_json::json!({
            "scenario": "fanout", "transport": if args.sse { "sse" } else { "websocket" }, "subscribers": args.subscribers, "channels": args.channels.max(1),
            "payload": args.payload,
            "ws": args.common.ws, "api": args.api, "steps": steps,
            "stalled": stalled_count, "stalled_evicted": evicted,
            "highest_held_deliveries_per_second": best_held,
        }),
        path: args.common.report.clone(),
    })
}

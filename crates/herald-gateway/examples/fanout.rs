//! Fan-out throughput: S subscribers on one channel, M publications through the HTTP API;
//! deliveries per second, publish-to-deliver latency, and gateway CPU per delivery.
//!
//! Runs the release `herald-gateway` binary as a child process (pinned to core 0 with taskset
//! when there are two cores or more) and the subscribers in this process. With `--redis URL`
//! it runs two gateways relaying through that Redis: publications go to node A, subscribers
//! sit on node B.
//!
//! ```text
//! cargo build --release -p herald-gateway --bins --examples
//! taskset -c 1 target/release/examples/fanout --subscribers 1000 --messages 2000
//! taskset -c 1 target/release/examples/fanout --redis redis://127.0.0.1:6390 --rate 300
//! ```
//!
//! `--rate` paces publications (per second, all publishers together); 0 publishes as fast as
//! the publishers can. Each payload carries its send time, so latency is measured end to end.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use herald_testkit::{http_request, RawClient};
use tokio::{io::AsyncReadExt, sync::Barrier};

struct Args {
    subscribers: usize,
    messages: usize,
    payload: usize,
    publishers: usize,
    rate: usize,
    redis: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        subscribers: 1000,
        messages: 2000,
        payload: 100,
        publishers: 4,
        rate: 0,
        redis: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let text = it.next().context("flag without value")?;
        if flag == "--redis" {
            a.redis = Some(text);
            continue;
        }
        let value: usize = text.parse()?;
        match flag.as_str() {
            "--rate" => a.rate = value,
            "--subscribers" => a.subscribers = value,
            "--messages" => a.messages = value,
            "--payload" => a.payload = value,
            "--publishers" => a.publishers = value,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn spawn_gateway(ws: SocketAddr, api: SocketAddr, redis: Option<&str>) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .context("target dir")?
        .join("herald-gateway");
    let pin = std::thread::available_parallelism().map_or(1, usize::from) >= 2
        && Command::new("taskset").arg("-V").output().is_ok();
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.env("HERALD__LISTEN__WEBSOCKET", ws.to_string())
        .env("HERALD__LISTEN__API", api.to_string())
        .env("HERALD__HUB__SHARDS", "1")
        .env("HERALD__LOG__LEVEL", "warn")
        .stdout(Stdio::null());
    if let Some(url) = redis {
        cmd.env("HERALD__BROKER__KIND", "redis")
            .env("HERALD__BROKER__REDIS__URL", url);
    }
    Ok(cmd.spawn()?)
}

/// Microseconds since the Unix epoch.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The send time a push frame's payload carries (`"data":"<micros>|xxx"`).
fn sent_at(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(8).position(|w| w == b"\"data\":\"")? + 8;
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Counts complete server frames in `buf` and records their latency; returns how many and
/// how many bytes they span.
fn count_frames(buf: &[u8], latencies: &mut Vec<u32>) -> (usize, usize) {
    let (mut at, mut n) = (0, 0);
    let now = now_us();
    loop {
        let rest = &buf[at..];
        if rest.len() < 2 {
            return (n, at);
        }
        let (len, header) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().expect("8")) as usize,
                10,
            ),
            126 | 127 => return (n, at),
            l => (usize::from(l), 2),
        };
        if rest.len() < header + len {
            return (n, at);
        }
        if let Some(sent) = sent_at(&rest[header..header + len]) {
            latencies.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
        }
        at += header + len;
        n += 1;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let (ws, api) = (free_port()?, free_port()?);
    let mut children = vec![spawn_gateway(ws, api, a.redis.as_deref())?];
    // With Redis, publications enter through a second node.
    let publish_api = match &a.redis {
        Some(url) => {
            let (ws_a, api_a) = (free_port()?, free_port()?);
            children.push(spawn_gateway(ws_a, api_a, Some(url))?);
            api_a
        }
        None => api,
    };
    let pid = children[0].id().to_string();
    let ready = Instant::now();
    for probe in [api, publish_api] {
        while http_request(probe, "GET", "/readyz", &[], b"")
            .await
            .map(|r| r.status)
            .ok()
            != Some(200)
        {
            if ready.elapsed() > Duration::from_secs(10) {
                for c in &mut children {
                    c.kill()?;
                }
                bail!("gateway did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let subscribe = RawClient::frame(true, 1, br#"{"id":1,"subscribe":{"channels":["bench"]}}"#);
    let start = Arc::new(Barrier::new(a.subscribers + 1));
    let mut readers = Vec::with_capacity(a.subscribers);
    for _ in 0..a.subscribers {
        let mut raw = RawClient::connect(ws, "/ws", None).await?;
        raw.send_raw(&subscribe).await?;
        let (opcode, reply) = raw.next_frame().await?;
        if opcode != 1 || !reply.starts_with(br#"{"id":1,"ok""#) {
            bail!("subscribe failed: {}", String::from_utf8_lossy(&reply));
        }
        let (mut stream, mut pending) = raw.into_parts();
        let want = a.messages;
        let start = start.clone();
        readers.push(tokio::spawn(async move {
            start.wait().await;
            let mut got = 0;
            let mut latencies = Vec::with_capacity(want);
            let mut buf = vec![0u8; 64 * 1024];
            while got < want {
                let (n, used) = count_frames(&pending, &mut latencies);
                got += n;
                pending.drain(..used);
                if got >= want {
                    break;
                }
                let read = stream.read(&mut buf).await?;
                if read == 0 {
                    bail!("closed after {got} frames");
                }
                pending.extend_from_slice(&buf[..read]);
            }
            anyhow::Ok((Instant::now(), latencies))
        }));
    }

    let filler = "x".repeat(a.payload.saturating_sub(20));
    let server_cpu = cpu_seconds(&pid)?;
    let own_cpu = cpu_seconds("self")?;
    start.wait().await;
    let began = Instant::now();
    let per_publisher = a.messages / a.publishers;
    let publishers: Vec<_> = (0..a.publishers)
        .map(|p| {
            let filler = filler.clone();
            let count = per_publisher + usize::from(p < a.messages % a.publishers);
            let period =
                (a.rate > 0).then(|| Duration::from_secs_f64(a.publishers as f64 / a.rate as f64));
            tokio::spawn(async move {
                let mut pace = period.map(tokio::time::interval);
                for _ in 0..count {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    let body = format!(r#"{{"channel":"bench","data":"{}|{filler}"}}"#, now_us());
                    let r = http_request(publish_api, "POST", "/v1/publish", &[], body.as_bytes())
                        .await?;
                    if r.status != 200 {
                        bail!("publish: {} {}", r.status, r.text());
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for p in publishers {
        p.await??;
    }
    let mut last = began;
    let mut latencies = Vec::with_capacity(a.subscribers * a.messages);
    for r in readers {
        let (done, mut l) = r.await??;
        last = last.max(done);
        latencies.append(&mut l);
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let elapsed = last - began;
    let server_cpu = cpu_seconds(&pid)? - server_cpu;
    let own_cpu = cpu_seconds("self")? - own_cpu;
    let deliveries = (a.subscribers * a.messages) as f64;
    println!(
        "subscribers {}  messages {}  payload {} B  deliveries {}",
        a.subscribers, a.messages, a.payload, deliveries
    );
    println!(
        "elapsed {:.3} s  deliveries/s {:.0}",
        elapsed.as_secs_f64(),
        deliveries / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    println!(
        "subscriber-node CPU {:.2} s = {:.2} us/delivery;  load generator CPU {:.2} s ({:.0}% of its core)",
        server_cpu,
        server_cpu * 1e6 / deliveries,
        own_cpu,
        own_cpu * 100.0 / elapsed.as_secs_f64()
    );
    for child in &mut children {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        child.wait()?;
    }
    Ok(())
}

//! Fan-out throughput of one gateway: S subscribers on one channel, M publications through the
//! HTTP API, deliveries per second and server CPU per delivery.
//!
//! Runs the release `herald-gateway` binary as a child process (pinned to core 0 with taskset
//! when there are two cores or more) and the subscribers in this process:
//!
//! ```text
//! cargo build --release -p herald-gateway --bins --examples
//! taskset -c 1 target/release/examples/fanout --subscribers 1000 --messages 2000
//! ```

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
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        subscribers: 1000,
        messages: 2000,
        payload: 100,
        publishers: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it.next().context("flag without value")?.parse()?;
        match flag.as_str() {
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

fn spawn_gateway(ws: SocketAddr, api: SocketAddr) -> anyhow::Result<Child> {
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
    Ok(cmd.spawn()?)
}

/// Counts complete server frames in `buf`, returning how many and how many bytes they span.
fn count_frames(buf: &[u8]) -> (usize, usize) {
    let (mut at, mut n) = (0, 0);
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
        at += header + len;
        n += 1;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let (ws, api) = (free_port()?, free_port()?);
    let mut child = spawn_gateway(ws, api)?;
    let pid = child.id().to_string();
    let ready = Instant::now();
    while http_request(api, "GET", "/readyz", &[], b"")
        .await
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        if ready.elapsed() > Duration::from_secs(10) {
            child.kill()?;
            bail!("gateway did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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
            let mut buf = vec![0u8; 64 * 1024];
            while got < want {
                let (n, used) = count_frames(&pending);
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
            anyhow::Ok(Instant::now())
        }));
    }

    let body = format!(
        r#"{{"channel":"bench","data":"{}"}}"#,
        "x".repeat(a.payload.saturating_sub(2))
    );
    let server_cpu = cpu_seconds(&pid)?;
    let own_cpu = cpu_seconds("self")?;
    start.wait().await;
    let began = Instant::now();
    let per_publisher = a.messages / a.publishers;
    let publishers: Vec<_> = (0..a.publishers)
        .map(|p| {
            let body = body.clone();
            let count = per_publisher + usize::from(p < a.messages % a.publishers);
            tokio::spawn(async move {
                for _ in 0..count {
                    let r = http_request(api, "POST", "/v1/publish", &[], body.as_bytes()).await?;
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
    for r in readers {
        last = last.max(r.await??);
    }
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
        "server CPU {:.2} s = {:.2} us/delivery;  load generator CPU {:.2} s ({:.0}% of its core)",
        server_cpu,
        server_cpu * 1e6 / deliveries,
        own_cpu,
        own_cpu * 100.0 / elapsed.as_secs_f64()
    );
    Command::new("kill").args(["-TERM", &pid]).status()?;
    child.wait()?;
    Ok(())
}

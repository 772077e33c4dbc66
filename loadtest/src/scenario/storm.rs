//! `storm`: a recovery storm. N clients were away while M publications were made on one
//! channel; they all come back at once and subscribe with the position they last saw. Reports
//! how long until every client has all M, in order and once each, and how many history reads
//! the node and Redis served for them.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};
use clap::Args;
use herald_protocol::ws::{client_frame, OpCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{client, procfs, report::Report, Common};

/// Options of the storm scenario.
#[derive(Args, Debug)]
pub(crate) struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// HTTP API address publications are made through.
    #[arg(long, default_value = "127.0.0.1:8081")]
    api: SocketAddr,
    /// Clients that come back at once.
    #[arg(long, default_value_t = 5000)]
    clients: usize,
    /// Publications each missed (at most the channel's `history_size`).
    #[arg(long, default_value_t = 100)]
    missed: u64,
    /// The channel.
    #[arg(long, default_value = "storm")]
    channel: String,
    /// Redis address whose `INFO commandstats` counts the function calls the storm cost.
    #[arg(long)]
    redis: Option<SocketAddr>,
}

/// One client: connected, subscribing with `since`, then reading its reply and pushes.
struct Client {
    stream: client::Conn,
    pending: Vec<u8>,
}

pub(crate) async fn run(args: StormArgs) -> anyhow::Result<Report> {
    let pids = args.common.server_pid.clone();
    let ws = args.common.ws[0];
    let mut api = client::HttpConn::open(args.api).await?;
    let publish = |n: u64| format!(r#"{{"channel":"{}","data":{n}}}"#, args.channel);
    ensure!(api.post("/v1/publish", publish(0).as_bytes()).await? == 200);
    // One client stays throughout (the channel stays subscribed on the node, as when the others
    // come back from a drain or a blip); its subscribe reply gives the position they saw.
    let (mut anchor, mut anchor_pending) = client::connect(ws, &args.common.path).await?;
    client::send(&mut anchor, &client::subscribe_frame(1, &args.channel)).await?;
    let reply = client::read_frame(&mut anchor, &mut anchor_pending).await?;
    let reply: serde_json::Value = serde_json::from_slice(&reply)?;
    let position = &reply["ok"]["positions"][0];
    let since = position["offset"]
        .as_u64()
        .context("a position in the reply")?;
    let epoch = position["epoch"].as_str().context("an epoch")?.to_owned();
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (stream, pending) = client::connect(ws, &args.common.path)
            .await
            .with_context(|| format!("client {i}"))?;
        clients.push(Client { stream, pending });
    }
    for n in 1..=args.missed {
        ensure!(api.post("/v1/publish", publish(n).as_bytes()).await? == 200);
    }
    let fcalls_before = match args.redis {
        Some(addr) => Some(function_calls(addr).await?),
        None => None,
    };
    let cpu_before = procfs::cpu_of(&pids)?;
    let request = format!(
        r#"{{"id":1,"subscribe":{{"channels":["{ch}"],"recover":{{"{ch}":{{"offset":{since},"epoch":"{epoch}"}}}}}}}}"#,
        ch = args.channel
    );
    let frame = client_frame(true, OpCode::Text, [1, 2, 3, 4], request.as_bytes());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for mut c in clients {
        client::send(&mut c.stream, &frame).await?;
        let (missed, first) = (args.missed, since + 1);
        tasks.push(tokio::spawn(async move {
            let read = recover(&mut c, first, missed);
            let outcome = tokio::time::timeout(Duration::from_secs(30), read).await;
            (
                outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("timed out"))),
                c,
            )
        }));
    }
    let mut failed = Vec::new();
    let mut last_done = Duration::ZERO;
    let mut kept = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (outcome, c) = t.await?;
        match outcome {
            Ok(done) => last_done = last_done.max(done - started),
            Err(e) => failed.push(e.to_string()),
        }
        kept.push(c);
    }
    let server_cpu = procfs::cpu_of(&pids)? - cpu_before;
    let served = match (args.redis, fcalls_before) {
        (Some(addr), Some(before)) => Some(function_calls(addr).await? - before),
        _ => None,
    };
    drop(kept);
    let recovered = args.clients - failed.len();
    let took = last_done.as_secs_f64();
    Ok(Report {
        title: format!(
            "storm: {} clients recover {} publications of one channel at once",
            args.clients, args.missed
        ),
        header: vec![
            "clients",
            "recovered",
            "failed",
            "seconds",
            "Redis FCALLs",
            "server CPU s",
        ],
        rows: vec![vec![
            args.clients.to_string(),
            recovered.to_string(),
            failed.len().to_string(),
            format!("{took:.3}"),
            served.map_or("-".into(), |n| n.to_string()),
            format!("{server_cpu:.2}"),
        ]],
        summary: failed
            .iter()
            .take(3)
            .map(|e| format!("failed: {e}"))
            .collect(),
        json: serde_json::json!({
            "scenario": "storm", "clients": args.clients, "missed": args.missed,
            "recovered": recovered, "failed": failed.len(), "seconds": took,
            "redis_function_calls": served, "server_cpu_seconds": server_cpu,
        }),
        path: args.common.report.clone(),
    })
}

/// Reads the subscribe reply (it must say `recovered: true`), then the `missed` pushes, whose
/// offsets must run from `first` on, once each and in order. Returns when the last arrived.
async fn recover(c: &mut Client, first: u64, missed: u64) -> anyhow::Result<Instant> {
    let reply = client::read_frame(&mut c.stream, &mut c.pending).await?;
    if !reply.windows(16).any(|w| w == br#""recovered":true"#) {
        bail!("not recovered: {}", String::from_utf8_lossy(&reply));
    }
    for expected in first..first + missed {
        let push = client::read_frame(&mut c.stream, &mut c.pending).await?;
        let offset = last_offset(&push).context("a push with an offset")?;
        ensure!(
            offset == expected,
            "offset {offset} where {expected} was due"
        );
    }
    Ok(Instant::now())
}

/// The `"offset":N` at the end of a push frame.
fn last_offset(push: &[u8]) -> Option<u64> {
    let body = push.strip_suffix(b"}}")?;
    let colon = body.iter().rposition(|&b| b == b':')?;
    body[..colon].ends_with(b"\"offset\"").then_some(())?;
    std::str::from_utf8(&body[colon + 1..]).ok()?.parse().ok()
}

/// `FCALL` and `FCALL_RO` calls Redis has served, from `INFO commandstats`.
async fn function_calls(addr: SocketAddr) -> anyhow::Result<u64> {
    let mut redis = TcpStream::connect(addr).await?;
    redis
        .write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        .await?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    // A bulk string: `$<len>\r\n<text>\r\n`.
    let total = loop {
        let n = redis.read(&mut chunk).await?;
        ensure!(n > 0, "Redis closed the connection");
        text.extend_from_slice(&chunk[..n]);
        if let Some(end) = text.windows(2).position(|w| w == b"\r\n") {
            let len: usize = std::str::from_utf8(&text[1..end])?.parse()?;
            if text.len() >= end + 2 + len {
                break String::from_utf8_lossy(&text[end + 2..end + 2 + len]).into_owned();
            }
        }
    };
    Ok(total
        .lines()
        .filter(|l| l.starts_with("cmdstat_fcall:") || l.starts_with("cmdstat_fcall_ro:"))
        .filter_map(|l| l.split(['=', ',']).nth(1)?.parse::<u64>().ok())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_offset_of_a_push() {
        assert_eq!(
            last_offset(br#"{"push":{"channel":"storm","data":7,"offset":42}}"#),
            Some(42)
        );
        assert_eq!(
            last_offset(br#"{"push":{"channel":"storm","data":7}}"#),
            None
        );
    }
}

//! One subscriber of the fan-out scenario: it checks every push for loss, duplicates and order
//! against its channel's offsets, and records latency.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::io::AsyncReadExt;

use crate::client;

/// What one subscriber saw.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) received: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) reordered: AtomicU64,
    pub(super) latencies: Mutex<Vec<u32>>,
}

/// Counts one publication received.
fn count(stamp: client::Stamp, now: u64, last: &mut u64, seen: &Seen, latencies: &mut Vec<u32>) {
    seen.received.fetch_add(1, Ordering::Relaxed);
    if stamp.offset == *last {
        seen.duplicates.fetch_add(1, Ordering::Relaxed);
    } else if stamp.offset < *last {
        seen.reordered.fetch_add(1, Ordering::Relaxed);
    }
    *last = (*last).max(stamp.offset);
    latencies.push(now.saturating_sub(stamp.sent_us).min(u64::from(u32::MAX)) as u32);
}

/// Checks every push in `frames` (complete frames, or chunks of an event stream, only);
/// returns the bytes used.
fn scan(
    frames: &[u8],
    prefix: Option<&[u8]>,
    last: &mut u64,
    seen: &Seen,
    latencies: &mut Vec<u32>,
) -> anyhow::Result<usize> {
    let now = client::now_us();
    let Some(prefix) = prefix else {
        return crate::sse::scan(frames, |s| count(s, now, last, seen, latencies))
            .ok_or_else(|| anyhow::anyhow!("the server ended the stream"));
    };
    let mut at = 0;
    while let Some((opcode, range)) = client::next_frame(&frames[at..]) {
        let payload = &frames[at + range.start..at + range.end];
        at += range.end;
        if opcode != 1 {
            continue;
        }
        if let Some(stamp) = client::stamp(payload, prefix) {
            count(stamp, now, last, seen, latencies);
        }
    }
    Ok(at)
}

pub(super) async fn subscriber(
    addr: SocketAddr,
    path: String,
    channel: String,
    seen: Arc<Seen>,
    sse: bool,
) -> anyhow::Result<()> {
    let (mut stream, mut pending) = if sse {
        crate::sse::open(addr, &channel, None).await?
    } else {
        let (mut stream, mut pending) = client::connect(addr, &path).await?;
        client::send(&mut stream, &client::subscribe_frame(1, &channel)).await?;
        let reply = client::read_frame(&mut stream, &mut pending).await?;
        anyhow::ensure!(reply.starts_with(br#"{"id":1,"ok""#), "subscribe failed");
        (stream, pending)
    };
    let prefix = client::push_prefix(&channel);
    let prefix = (!sse).then_some(&prefix[..]);
    let mut last = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut latencies = Vec::new();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // Frames are scanned where they were read; only a partial frame is copied aside.
        if pending.is_empty() {
            let used = scan(&buf[..n], prefix, &mut last, &seen, &mut latencies)?;
            pending.extend_from_slice(&buf[used..n]);
        } else {
            pending.extend_from_slice(&buf[..n]);
            let used = scan(&pending, prefix, &mut last, &seen, &mut latencies)?;
            pending.drain(..used);
        }
        if !latencies.is_empty() {
            seen.latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&mut latencies);
        }
    }
}

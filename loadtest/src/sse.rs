//! The generator's event-stream side (`--sse`): `GET /v1/sse` over the same (TLS) socket a
//! WebSocket would use, and a scanner of the chunked `text/event-stream` body that reads each
//! publication's offset (from its `id:`) and send time (from its `data:`) in place.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::AsyncReadExt;

use crate::client::{self, Conn, Stamp};

/// Opens a stream of `channel`; returns it once the stream has started (its first position
/// arrived), with what was read past that.
pub(crate) async fn open(
    addr: SocketAddr,
    channel: &str,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<(Conn, Vec<u8>)> {
    let mut stream = client::dial(addr, None, source).await?;
    let request = format!("GET /v1/sse?channel={channel} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    client::send(&mut stream, request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("stream start timed out")??;
        if n == 0 {
            bail!("closed before the stream started");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        if !buf.starts_with(b"HTTP/1.1 200") {
            bail!("refused: {}", String::from_utf8_lossy(&buf));
        }
        // The first position is the last chunk of the start: the stream is subscribed.
        let body = &buf[end + 4..];
        if let Some(at) = body.windows(4).position(|w| w == b"id: ") {
            if let Some(stop) = body[at..].windows(2).position(|w| w == b"\r\n") {
                let rest = body[at + stop + 2..].to_vec();
                return Ok((stream, rest));
            }
        }
    }
}

/// The next complete chunk at the front of `buf`: its text's range and the chunk's length.
fn next_chunk(buf: &[u8]) -> Option<(std::ops::Range<usize>, usize)> {
    let line = buf.windows(2).position(|w| w == b"\r\n")?;
    let size = usize::from_str_radix(std::str::from_utf8(&buf[..line]).ok()?, 16).ok()?;
    let start = line + 2;
    let end = start + size + 2;
    (buf.len() >= end).then_some((start..start + size, end))
}

/// Reads a publication's event: `id: <epoch>:<offset>,...` then `data: "<sent µs>|..."`.
fn stamp(event: &[u8]) -> Option<Stamp> {
    let id = event.strip_prefix(b"id: ")?;
    let line = &id[..id.iter().position(|&b| b == b'\n')?];
    let colon = line.iter().position(|&b| b == b':')?;
    let offset = digits(&line[colon + 1..])?;
    let data = event.windows(7).position(|w| w == b"data: \"")?;
    let sent_us = digits(&event[data + 7..])?;
    Some(Stamp { offset, sent_us })
}

fn digits(s: &[u8]) -> Option<u64> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    std::str::from_utf8(&s[..n]).ok()?.parse().ok()
}

/// Scans every complete chunk of `buf`: `on` gets each publication's stamp; returns the bytes
/// used, or `None` when the stream ended (its last chunk).
pub(crate) fn scan(buf: &[u8], mut on: impl FnMut(Stamp)) -> Option<usize> {
    let mut at = 0;
    while let Some((text, end)) = next_chunk(&buf[at..]) {
        if text.is_empty() {
            return None;
        }
        if let Some(stamp) = stamp(&buf[at + text.start..at + text.end]) {
            on(stamp);
        }
        at += end;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_publications_out_of_chunks() {
        let event = b"id: e1:42,\nevent: message\ndata: \"1700000000000000|xx\"\n\n";
        let mut body = format!("{:x}\r\n", event.len()).into_bytes();
        body.extend_from_slice(event);
        body.extend_from_slice(b"\r\n2\r\n:\n\r\n");
        let mut got = Vec::new();
        let used = scan(&body, |s| got.push(s)).unwrap();
        assert_eq!(used, body.len());
        assert_eq!(
            got,
            [Stamp {
                offset: 42,
                sent_us: 1_700_000_000_000_000
            }]
        );
        assert_eq!(scan(&body[..body.len() - 1], |_| {}), Some(body.len() - 7));
        assert_eq!(scan(b"0\r\n\r\n", |_| {}), None);
    }
}

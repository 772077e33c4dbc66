//! The generator's side of the wire: WebSocket handshake and frames, and a keep-alive HTTP
//! client for publishing. Frames are scanned in place, never copied.

use std::{net::SocketAddr, time::Duration};

use anyhow::{bail, Context};
use herald_protocol::ws::{client_frame, OpCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Microseconds since the Unix epoch: the send time carried in payloads.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub(crate) use crate::tls::Conn;

/// Opens a WebSocket connection (over TLS with `--tls`); returns it and the bytes read past
/// the handshake.
pub(crate) async fn connect(addr: SocketAddr, path: &str) -> anyhow::Result<(Conn, Vec<u8>)> {
    connect_with(addr, path, None, None).await
}

/// [`connect`] with a receive buffer of `recv_buffer` bytes: a client that stops reading then
/// fills up after little data, as a slow mobile client would.
///
/// `source` binds the local address first: one source address has about 28k ports towards
/// one destination, so large runs spread over 127.0.0.x.
pub(crate) async fn connect_with(
    addr: SocketAddr,
    path: &str,
    recv_buffer: Option<u32>,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<(Conn, Vec<u8>)> {
    let mut stream = dial(addr, recv_buffer, source).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    send(&mut stream, request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    let end = loop {
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("handshake timed out")??;
        if n == 0 {
            bail!("closed during the handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        bail!("no upgrade: {}", String::from_utf8_lossy(&buf[..end]));
    }
    Ok((stream, buf.split_off(end)))
}

/// Connects to `addr` (from `source`, with a receive buffer of `recv_buffer` bytes, when
/// given), over TLS with `--tls`.
pub(crate) async fn dial(
    addr: SocketAddr,
    recv_buffer: Option<u32>,
    source: Option<std::net::IpAddr>,
) -> anyhow::Result<Conn> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Conn::over(tcp).await.context("TLS handshake")
}

/// Writes `bytes` and flushes: over TLS a write may leave its record in the session until
/// flushed.
pub(crate) async fn send(stream: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A masked subscribe request for `channel`.
pub(crate) fn subscribe_frame(id: u64, channel: &str) -> Vec<u8> {
    let text = format!(r#"{{"id":{id},"subscribe":{{"channels":["{channel}"]}}}}"#);
    client_frame(true, OpCode::Text, [1, 2, 3, 4], text.as_bytes())
}

/// The next complete server frame at the front of `buf`: (opcode, payload range, length).
pub(crate) fn next_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            usize::try_from(u64::from_be_bytes(buf[2..10].try_into().ok()?)).ok()?,
            10,
        ),
        126 | 127 => return None,
        l => (usize::from(l), 2),
    };
    (buf.len() >= header + len).then(|| (buf[0] & 0x0f, header..header + len))
}

/// Reads until one whole data frame is buffered and returns its payload (pings and pongs,
/// which a busy node may send first, are skipped; a close frame is an error).
pub(crate) async fn read_frame(
    stream: &mut Conn,
    pending: &mut Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    loop {
        match read_any_frame(stream, pending).await? {
            (9 | 10, _) => {}
            (8, payload) => {
                let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                bail!("closed by the server (code {code:?})")
            }
            (_, payload) => return Ok(payload),
        }
    }
}

/// Reads until one whole frame is buffered and returns its opcode and payload.
pub(crate) async fn read_any_frame(
    stream: &mut Conn,
    pending: &mut Vec<u8>,
) -> anyhow::Result<(u8, Vec<u8>)> {
    loop {
        if let Some((opcode, range)) = next_frame(pending) {
            let payload = pending[range.clone()].to_vec();
            pending.drain(..range.end);
            return Ok((opcode, payload));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// What the generator reads from a push of its own publications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The channel offset the server assigned.
    pub(crate) offset: u64,
    /// The send time the publisher wrote into the data, in µs.
    pub(crate) sent_us: u64,
}

fn leading_number(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    s[..digits].iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Reads `{"push":{"channel":"<channel>","data":"<send µs>|...","offset":N}}` without a JSON
/// parser: the prefix is known, and the offset is the last number of the frame.
pub(crate) fn stamp(payload: &[u8], prefix: &[u8]) -> Option<Stamp> {
    let sent_us = leading_number(payload.strip_prefix(prefix)?)?;
    let body = payload.strip_suffix(b"}}")?;
    let colon = body.iter().rposition(|&b| b == b':')?;
    if !body[..colon].ends_with(b"\"offset\"") {
        return None;
    }
    Some(Stamp {
        offset: leading_number(&body[colon + 1..])?,
        sent_us,
    })
}

/// The fixed start of a JSON push on `channel`, up to the data string's first character.
pub(crate) fn push_prefix(channel: &str) -> Vec<u8> {
    format!(r#"{{"push":{{"channel":"{channel}","data":""#).into_bytes()
}

/// A keep-alive HTTP/1.1 connection for `POST` requests.
pub(crate) struct HttpConn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// POSTs `body` to `path` and returns the status.
    pub(crate) async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<u16> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        self.stream.write_all(&out).await?;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?.to_ascii_lowercase();
                let status: u16 = head.get(9..12).context("status")?.parse()?;
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(Ok(0), |v| v.trim().parse())?;
                while self.buf.len() < end + 4 + length {
                    self.fill().await?;
                }
                self.buf.drain(..end + 4 + length);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 2048];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("API connection closed");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_frames_and_payloads() {
        let payload = br#"{"push":{"channel":"load","data":"1700000000000000|xx","offset":42}}"#;
        let mut frame = vec![0x81, 126];
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        frame.extend_from_slice(payload);
        let (op, range) = next_frame(&frame).unwrap();
        assert_eq!(op, 1);
        let prefix = push_prefix("load");
        assert_eq!(
            stamp(&frame[range], &prefix),
            Some(Stamp {
                offset: 42,
                sent_us: 1_700_000_000_000_000
            })
        );
        assert!(next_frame(&frame[..frame.len() - 1]).is_none());
        assert_eq!(stamp(b"{\"other\":1}", &prefix), None);
        let no_offset = br#"{"push":{"channel":"load","data":"17|x"}}"#;
        assert_eq!(stamp(no_offset, &prefix), None);
    }
}

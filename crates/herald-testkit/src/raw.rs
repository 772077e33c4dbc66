//! A client that sends hand-made bytes after a real handshake: malformed frames, huge length
//! claims, unmasked frames.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use herald_protocol::ws::{client_frame, OpCode};

use crate::WAIT;

/// A WebSocket connection driven byte by byte.
pub struct RawClient {
    stream: TcpStream,
    pending: Vec<u8>,
}

/// A frame from the server: opcode and payload.
pub type RawFrame = (u8, Vec<u8>);

impl RawClient {
    /// Performs the upgrade on `path` offering `protocol` (if any).
    ///
    /// # Errors
    /// When the server does not answer 101.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        protocol: Option<&str>,
    ) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        Self::upgrade(stream, addr, path, protocol).await
    }

    /// [`RawClient::connect`] over a socket whose kernel receive buffer is about `bytes`: a
    /// client that stops reading fills it quickly, as a phone on a bad network does.
    ///
    /// # Errors
    /// As [`RawClient::connect`].
    pub async fn connect_with_receive_buffer(
        addr: SocketAddr,
        path: &str,
        bytes: u32,
    ) -> anyhow::Result<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_recv_buffer_size(bytes)?;
        let stream = socket.connect(addr).await?;
        Self::upgrade(stream, addr, path, None).await
    }

    async fn upgrade(
        mut stream: TcpStream,
        addr: SocketAddr,
        path: &str,
        protocol: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        if let Some(p) = protocol {
            req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
                .await
                .context("handshake timed out")??;
            if n == 0 {
                bail!("closed during handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            bail!("no upgrade: {head}");
        }
        Ok(Self {
            stream,
            pending: buf[end..].to_vec(),
        })
    }

    /// The socket and any bytes already read past the handshake.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.pending)
    }

    /// Writes raw bytes.
    ///
    /// # Errors
    /// On a socket error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// A masked client frame, as a browser builds it; `opcode` may be any 4-bit value.
    pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = client_frame(fin, OpCode::Text, [0x37, 0xfa, 0x21, 0x3d], payload);
        f[0] = (f[0] & 0xF0) | (opcode & 0x0F);
        f
    }

    /// Reads at most `max` bytes of whatever the server sent (frames or not), waiting up to
    /// `within`; `Ok(0)` when nothing came in time.
    ///
    /// # Errors
    /// On a socket error or EOF.
    pub async fn read_some(
        &mut self,
        max: usize,
        within: std::time::Duration,
    ) -> anyhow::Result<usize> {
        let mut chunk = vec![0u8; max];
        match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            Err(_) => Ok(0),
            Ok(Ok(0)) => bail!("closed"),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Reads the next server frame (server frames are unmasked).
    ///
    /// # Errors
    /// On a timeout, EOF, or a malformed server frame.
    pub async fn next_frame(&mut self) -> anyhow::Result<RawFrame> {
        loop {
            if let Some((frame, used)) = parse(&self.pending)? {
                self.pending.drain(..used);
                return Ok(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .context("timed out waiting for a frame")??;
            if n == 0 {
                bail!("connection closed without a close frame");
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads frames until a close frame, and returns its code.
    ///
    /// # Errors
    /// When none arrives.
    pub async fn close_code(&mut self) -> anyhow::Result<u16> {
        loop {
            let (opcode, payload) = self.next_frame().await?;
            if opcode == 0x8 {
                if payload.len() < 2 {
                    return Ok(1005);
                }
                return Ok(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }
}

fn parse(buf: &[u8]) -> anyhow::Result<Option<(RawFrame, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        bail!("server frame is masked");
    }
    let (len, at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            usize::try_from(u64::from_be_bytes(buf[2..10].try_into()?))?,
            10,
        ),
        126 | 127 => return Ok(None),
        n => (usize::from(n), 2),
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    Ok(Some((
        (buf[0] & 0x0f, buf[at..at + len].to_vec()),
        at + len,
    )))
}

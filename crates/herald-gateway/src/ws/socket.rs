//! A client socket, plain or TLS, with the readiness-based calls the connection task makes:
//! wait until readable or writable, then read or write without blocking.
//!
//! TLS is driven by hand over the non-blocking `TcpStream` (rustls' `ServerConnection` after
//! the handshake): ciphertext read from the socket is decrypted into the caller's buffer, and
//! written plaintext is encrypted and sent as far as the socket takes it. What the socket does
//! not take yet stays in rustls ([`Socket::wants_write`]) and goes out at the next write.
//! A TLS 1.3 connection leaves rustls once upgraded: [`sealed`] keeps only its keys.

mod sealed;

use std::{
    io::{self, IoSlice, Read, Write},
    task::Poll,
};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;

use crate::tls::Nonblocking;

/// Bytes of ciphertext read from the socket at once.
const TLS_READ: usize = 16 * 1024 + 512;

pub(super) enum Socket {
    Plain(TcpStream),
    /// TLS through rustls (TLS 1.2).
    Tls(Box<TlsSocket>),
    /// TLS 1.3 after the upgrade: the record layer alone.
    Sealed(Box<sealed::SealedSocket>),
    /// A TLS connection whose keys could not be taken over: it ends at once.
    Broken,
}

pub(super) struct TlsSocket {
    tcp: TcpStream,
    tls: ServerConnection,
    /// Decrypted bytes may be waiting in rustls (right after the handshake).
    plaintext_waiting: bool,
    /// The client sent close_notify.
    closed: bool,
}

impl Socket {
    /// A TLS connection whose handshake is done: TLS 1.3 leaves rustls for [`sealed`] when
    /// nothing is left in rustls' buffers; TLS 1.2 stays with it.
    pub(super) fn tls(tcp: TcpStream, mut tls: ServerConnection) -> Self {
        let v13 = tls.protocol_version() == Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_3);
        if !v13 || tls.wants_write() {
            return Self::Tls(Box::new(TlsSocket {
                tcp,
                tls,
                plaintext_waiting: true,
                closed: false,
            }));
        }
        // Plaintext rustls decrypted past the upgrade request comes first.
        let mut early = Vec::new();
        match std::io::copy(&mut tls.reader(), &mut early) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The client closed already, or the connection failed.
            _ => return Self::Broken,
        }
        match tls.dangerous_extract_secrets() {
            Ok(secrets) => match sealed::SealedSocket::new(tcp, secrets, early) {
                Ok(socket) => Self::Sealed(Box::new(socket)),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS keys not usable: closing");
                    Self::Broken
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "TLS keys not extractable: closing");
                Self::Broken
            }
        }
    }

    /// Resolves when a read may make progress. For the connection's one task: readiness is
    /// polled (`poll_read_ready`, one waker slot) rather than awaited through a waiter list.
    pub(super) async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| match self {
            Self::Plain(s) => s.poll_read_ready(cx),
            Self::Tls(t) if t.plaintext_waiting || t.closed => Poll::Ready(Ok(())),
            Self::Tls(t) => t.tcp.poll_read_ready(cx),
            Self::Sealed(s) if s.ready() => Poll::Ready(Ok(())),
            Self::Sealed(s) => s.tcp.poll_read_ready(cx),
            Self::Broken => Poll::Ready(Ok(())),
        })
        .await
    }

    /// Resolves when a write may make progress (as [`Socket::readable`], one waker slot).
    pub(super) async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| match self {
            Self::Plain(s) => s.poll_write_ready(cx),
            Self::Tls(t) => t.tcp.poll_write_ready(cx),
            Self::Sealed(s) => s.tcp.poll_write_ready(cx),
            Self::Broken => Poll::Ready(Ok(())),
        })
        .await
    }

    /// Makes the close that follows a reset: the kernel drops what is unsent at once instead of
    /// keeping it (and the connection) while a peer that reads nothing holds its window shut.
    pub(super) fn abort_on_close(&self) {
        let tcp = match self {
            Self::Plain(s) => s,
            Self::Tls(t) => &t.tcp,
            Self::Sealed(s) => &s.tcp,
            Self::Broken => return,
        };
        if let Err(e) = tcp.set_zero_linger() {
            tracing::debug!(error = %e, "cannot set SO_LINGER");
        }
    }

    /// Appends what can be read now to `buf`: `Ok(0)` at the end of input, `WouldBlock` when
    /// nothing is there yet.
    pub(super) fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.try_read_buf(buf),
            Self::Tls(t) => t.try_read_buf(buf),
            Self::Sealed(s) => s.try_read_buf(buf),
            Self::Broken => Ok(0),
        }
    }

    /// Writes from `bufs` what the socket takes now; `WouldBlock` when it takes nothing.
    pub(super) fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.try_write_vectored(bufs),
            Self::Tls(t) => t.try_write_vectored(bufs),
            Self::Sealed(s) => s.try_write_vectored(bufs),
            Self::Broken => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Encrypted bytes are waiting for the socket.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Self::Plain(_) | Self::Broken => false,
            Self::Tls(t) => t.tls.wants_write(),
            Self::Sealed(s) => s.wants_write(),
        }
    }

    /// The connection's keep-alive tick (a quiet wss connection lets its keys rest).
    pub(super) fn tick(&mut self) {
        if let Self::Sealed(s) = self {
            s.tick();
        }
    }

    /// Sends waiting encrypted bytes; `WouldBlock` when some are left.
    pub(super) fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(_) | Self::Broken => Ok(()),
            Self::Tls(t) => t.flush_tls(),
            Self::Sealed(s) => s.flush(),
        }
    }
}

impl TlsSocket {
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut got = self.drain_plaintext(buf)?;
        self.plaintext_waiting = false;
        if got > 0 {
            return Ok(got);
        }
        if self.closed {
            return Ok(0);
        }
        let mut cipher = [0u8; TLS_READ];
        let n = self.tcp.try_read(&mut cipher)?;
        if n == 0 {
            return Ok(0);
        }
        let mut rest = &cipher[..n];
        while !rest.is_empty() {
            self.tls.read_tls(&mut rest)?;
            self.tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            got += self.drain_plaintext(buf)?;
        }
        // Alerts, tickets and key updates rustls wants to send go out with the next write.
        match self.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        match got {
            0 if self.closed => Ok(0),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn drain_plaintext(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut total = 0;
        let mut chunk = [0u8; 4096];
        loop {
            match self.tls.reader().read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(total);
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_tls()?;
        let n = self.tls.writer().write_vectored(bufs)?;
        match self.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut Nonblocking(&self.tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

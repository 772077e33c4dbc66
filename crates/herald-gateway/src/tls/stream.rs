//! A TLS server connection driven by hand over a non-blocking `TcpStream`: the handshake,
//! then an `AsyncRead + AsyncWrite` stream for the HTTP exchange that follows it.
//!
//! Why not tokio-rustls' acceptor: it sends a TLS 1.3 server's session tickets the moment the
//! handshake ends, in a write of their own. Here they wait in rustls and leave with the first
//! bytes the server writes after the handshake (the upgrade's `101` answer), in one write and
//! one TCP segment; a wss connection costs the node a send and the client a wake-up less.
//! Everything else the handshake says goes out as soon as rustls has it.

use std::{
    io::{self, IoSlice, Read, Write},
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::rustls::{ProtocolVersion, ServerConfig, ServerConnection};

/// A TLS connection whose handshake is done (see [`accept`]).
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
    /// The socket reached its end.
    eof: bool,
}

/// Runs the server side of a TLS handshake on `tcp`. A TLS 1.3 connection's session tickets
/// are left waiting in rustls (see the module's text); anything else the handshake has to send
/// is sent. A failed handshake sends its alert, as far as the socket takes it.
pub(crate) async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
    let tls = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut stream = TlsStream {
        tcp,
        tls,
        eof: false,
    };
    while stream.tls.is_handshaking() {
        std::future::poll_fn(|cx| stream.poll_flush_tls(cx)).await?;
        if stream.eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        std::future::poll_fn(|cx| stream.poll_read_tls(cx)).await?;
    }
    if stream.tls.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        // TLS 1.2: the server's Finished is among what waits, and the client waits for it.
        std::future::poll_fn(|cx| stream.poll_flush_tls(cx)).await?;
    }
    Ok(stream)
}

impl TlsStream {
    /// The socket and the rustls connection.
    pub(crate) fn into_parts(self) -> (TcpStream, ServerConnection) {
        (self.tcp, self.tls)
    }

    /// Reads ciphertext from the socket into rustls and processes it; at the socket's end,
    /// sets `eof`. A record rustls refuses fails the read (and queues rustls' alert).
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let n = loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            // Straight into rustls' buffer (it lives only as long as the handshake and the
            // upgrade do).
            match self.tls.read_tls(&mut Nonblocking(&self.tcp)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        };
        if n == 0 {
            // rustls saw the end too: a read fails unless close_notify came.
            self.eof = true;
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = self.tls.process_new_packets() {
            // The alert goes out if the socket takes it now.
            let _ = self.tls.write_tls(&mut Nonblocking(&self.tcp));
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what rustls has to send.
    fn poll_flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut Nonblocking(&self.tcp)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp.poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.tls.reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if this.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            // What rustls answers with (a key update) waits for the next write, as the
            // tickets do.
            ready!(this.poll_read_tls(cx))?;
        }
    }
}

impl AsyncWrite for TlsStream {
    /// Encrypts `buf` into rustls; it reaches the socket at the flush, with what waits before
    /// it (hyper flushes after each answer).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = this.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls' send buffer is full: make room first.
            ready!(this.poll_flush_tls(cx))?;
            return Poll::Ready(this.tls.writer().write(buf));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = this.tls.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            ready!(this.poll_flush_tls(cx))?;
            return Poll::Ready(this.tls.writer().write_vectored(bufs));
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_tls(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.send_close_notify();
        ready!(this.poll_flush_tls(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// `io::Read` and `io::Write` over a non-blocking `TcpStream`, for rustls.
pub(crate) struct Nonblocking<'a>(pub(crate) &'a TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

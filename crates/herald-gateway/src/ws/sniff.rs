//! The first bytes of a request on the WebSocket listener: `GET /v1/sse` opens an event
//! stream, which keeps the socket for its whole life and is served without hyper; anything
//! else goes to hyper, which reads those bytes again first ([`Rewind`]).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::sse::request::PATH;

/// What a request on the listener is.
pub(super) enum Sniffed {
    /// An event stream, and what was read of its head.
    Stream(BytesMut),
    /// Anything else, and what was read of it.
    Http(BytesMut),
}

/// Reads until the request line tells an event stream from anything else; reads nothing when
/// event streams are off.
pub(super) async fn sniff<S: AsyncRead + Unpin>(stream: &mut S, sse: bool) -> io::Result<Sniffed> {
    if !sse {
        return Ok(Sniffed::Http(BytesMut::new()));
    }
    let prefix = format!("GET {PATH}");
    let prefix = prefix.as_bytes();
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(Sniffed::Http(buf));
        }
        let seen = buf.len().min(prefix.len());
        if buf[..seen] != prefix[..seen] {
            return Ok(Sniffed::Http(buf));
        }
        if let Some(&next) = buf.get(prefix.len()) {
            return Ok(match next {
                b' ' | b'?' => Sniffed::Stream(buf),
                _ => Sniffed::Http(buf),
            });
        }
    }
}

/// A stream that gives back `prefix` before reading on.
pub(super) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(super) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The stream, and what of the prefix was not read.
    pub(super) fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sniffed(request: &'static [u8]) -> Sniffed {
        let mut input = request;
        sniff(&mut input, true).await.unwrap()
    }

    #[tokio::test]
    async fn event_streams_are_told_from_everything_else() {
        assert!(matches!(
            sniffed(b"GET /v1/sse?channel=a HTTP/1.1\r\n").await,
            Sniffed::Stream(_)
        ));
        assert!(matches!(
            sniffed(b"GET /v1/sse HTTP/1.1\r\n").await,
            Sniffed::Stream(_)
        ));
        for other in [
            &b"GET /ws HTTP/1.1\r\n"[..],
            b"GET /v1/ssex HTTP/1.1\r\n",
            b"GET /v1",
        ] {
            let mut input = other;
            match sniff(&mut input, true).await.unwrap() {
                Sniffed::Http(read) => assert_eq!(&read[..], other),
                Sniffed::Stream(_) => panic!("not a stream: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_rewind_reads_its_prefix_first() {
        let mut r = Rewind::new(Bytes::from_static(b"GET /"), &b"ws HTTP/1.1"[..]);
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET /ws HTTP/1.1");
    }
}

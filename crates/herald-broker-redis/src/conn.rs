//! Opening a connection: TCP, TLS for `rediss://`, `AUTH`, `SELECT`, each bounded by the
//! timeout.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::BytesMut;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{client::TlsStream, TlsConnector};

use crate::{
    resp::{self, Value},
    Endpoint, TlsConfig,
};

/// How a broker opens its connections.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    /// Bound on connecting and on every request.
    pub(crate) timeout: Duration,
    /// Used for `rediss://` endpoints.
    pub(crate) tls: Option<TlsConfig>,
    /// Replicas a publish batch must reach before it is acknowledged (`WAIT`; 0: none).
    pub(crate) wait_replicas: u32,
    /// In sentinel mode: finds the master every connection goes to.
    pub(crate) locate: Option<std::sync::Arc<dyn Locate>>,
}

/// Finds the server a connection goes to in place of the endpoint it names (Sentinel's
/// master), and opens it.
pub(crate) trait Locate: Send + Sync + std::fmt::Debug {
    /// Opens a connection to the server `template` stands for, with its credentials.
    fn open<'a>(
        &'a self,
        template: &'a Endpoint,
        connector: &'a Connector,
    ) -> herald_broker::BoxFuture<'a, Result<Conn, LinkError>>;
}

/// A plain or TLS connection.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why a connection could not be opened or was lost.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer in time: Redis is stalled or unreachable.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Redis closed the connection.
    #[error("connection closed by redis")]
    Closed,
    /// Redis refused a command needed to set the connection up.
    #[error("redis refused {command}: {message}")]
    Refused {
        /// The command.
        command: &'static str,
        /// Redis' error text.
        message: String,
    },
    /// Redis broke its protocol.
    #[error(transparent)]
    Protocol(#[from] resp::ProtocolError),
    /// An answer arrived that no request was waiting for.
    #[error("unexpected reply")]
    Unexpected,
    /// A `rediss://` host that is not a valid TLS server name.
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    /// The sentinels named no usable master (or could not be asked).
    #[error("sentinel: {0}")]
    Sentinel(String),
}

/// A connection being set up, with its read buffer.
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    pub(crate) buf: BytesMut,
}

impl Connector {
    /// Connects to `endpoint` (in sentinel mode, to the master the sentinels name now, with
    /// `endpoint`'s credentials), with TLS for `rediss://`, and authenticates.
    pub(crate) async fn open(&self, endpoint: &Endpoint) -> Result<Conn, LinkError> {
        match &self.locate {
            Some(locate) => locate.open(endpoint, self).await,
            None => self.open_at(endpoint).await,
        }
    }

    /// Connects to `endpoint` itself (with TLS for `rediss://`) and authenticates.
    pub(crate) async fn open_at(&self, endpoint: &Endpoint) -> Result<Conn, LinkError> {
        let timeout = self.timeout;
        let addr = (endpoint.host.as_str(), endpoint.port);
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            if !endpoint.tls {
                return Ok(Stream::Tcp(tcp));
            }
            let config = match &self.tls {
                Some(c) => c.clone(),
                None => TlsConfig::new(None).map_err(|e| std::io::Error::other(e.to_string()))?,
            };
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|_| LinkError::ServerName(endpoint.host.clone()))?;
            let tls = TlsConnector::from(config.0).connect(name, tcp).await?;
            Ok::<_, LinkError>(Stream::Tls(Box::new(tls)))
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| LinkError::Timeout(timeout))??;
        let mut conn = Conn {
            stream,
            buf: BytesMut::with_capacity(4096),
        };
        if let Some(password) = &endpoint.password {
            let reply = match &endpoint.username {
                Some(user) => {
                    conn.call(&[b"AUTH", user.as_bytes(), password.as_bytes()], timeout)
                        .await?
                }
                None => conn.call(&[b"AUTH", password.as_bytes()], timeout).await?,
            };
            ok_or_refused("AUTH", reply)?;
        }
        if endpoint.db != 0 {
            let db = endpoint.db.to_string();
            let reply = conn.call(&[b"SELECT", db.as_bytes()], timeout).await?;
            ok_or_refused("SELECT", reply)?;
        }
        Ok(conn)
    }
}

impl Conn {
    /// Sends one command and waits for its reply.
    pub(crate) async fn call(
        &mut self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Value, LinkError> {
        let mut out = BytesMut::new();
        resp::encode_command(&mut out, args);
        let exchange = async {
            self.stream.write_all(&out).await?;
            self.read_value().await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| LinkError::Timeout(timeout))?
    }

    /// Reads until one complete value is buffered. Cancel-safe: bytes read stay in `buf`.
    pub(crate) async fn read_value(&mut self) -> Result<Value, LinkError> {
        loop {
            if let Some(v) = resp::parse(&mut self.buf)? {
                return Ok(v);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(LinkError::Closed);
            }
        }
    }
}

/// `Ok(())` for `+OK`-like replies, the error text otherwise.
pub(crate) fn ok_or_refused(command: &'static str, reply: Value) -> Result<(), LinkError> {
    match reply {
        Value::Error(message) => Err(LinkError::Refused { command, message }),
        _ => Ok(()),
    }
}

/// Exponential backoff with jitter (half to all of the step), from 50 ms up to 1 s, so that a
/// node is back within about a second of Redis.
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { attempt: 0 }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let cap_ms = (50u64 << self.attempt.min(5)).min(1000);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(cap_ms / 2 + fastrand::u64(0..=cap_ms / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!((Duration::from_millis(25)..=Duration::from_millis(50)).contains(&first));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        assert!(b.next_delay() >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(50));
    }
}

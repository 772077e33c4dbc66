//! Opening a connection: TCP, `AUTH`, `SELECT`, each bounded by the timeout.

use std::time::Duration;

use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    resp::{self, Value},
    Endpoint,
};

/// Why a connection could not be opened or was lost.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
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
}

/// A connection being set up, with its read buffer.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
}

impl Conn {
    /// Connects and authenticates.
    pub(crate) async fn open(endpoint: &Endpoint, timeout: Duration) -> Result<Self, LinkError> {
        let addr = (endpoint.host.as_str(), endpoint.port);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| LinkError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let mut conn = Self {
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

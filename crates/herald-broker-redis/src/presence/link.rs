//! The presence table's connection: one, used by one call at a time, reopened after any
//! failure; on a cluster it follows `MOVED` to the master of the table's slot, and tries the
//! next seed when a node is unreachable. Each new connection loads the function library.

use std::time::Duration;

use super::{PresenceError, RedisPresence, TableMode, LIBRARY};
use crate::{conn::Conn, resp::Value, Endpoint};

/// The connection and where it goes.
pub(super) struct Link {
    /// The node asked next: a seed, or the master a `MOVED` named.
    pub(super) endpoint: usize,
    /// Masters learnt from `MOVED` replies, after the seeds.
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) conn: Option<Conn>,
}

impl RedisPresence {
    pub(crate) async fn call(&self, args: &[&[u8]]) -> Result<Value, PresenceError> {
        self.call_within(args, self.connector.timeout).await
    }

    /// How long a request may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.connector.timeout
    }

    /// [`Self::call`] with its own timeout (for a blocking command, which waits longer).
    pub(crate) async fn call_within(
        &self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Value, PresenceError> {
        let mut link = self.link.lock().await;
        // One redirection at most: a MOVED names the master that owns the table's slot.
        for _ in 0..2 {
            if link.conn.is_none() {
                let endpoint = link.endpoints[link.endpoint].clone();
                let opened = self.open(&endpoint).await;
                match opened {
                    Ok(conn) => link.conn = Some(conn),
                    Err(e) => {
                        // The next seed on the next call.
                        link.endpoint = (link.endpoint + 1) % link.endpoints.len();
                        return Err(e);
                    }
                }
            }
            let conn = link.conn.as_mut().expect("opened above");
            match conn.call(args, timeout).await {
                Ok(Value::Error(message)) => match moved_to(&message) {
                    Some((host, port)) if self.mode == TableMode::Cluster => {
                        let target = Endpoint {
                            host: host.to_owned(),
                            port,
                            ..link.endpoints[0].clone()
                        };
                        link.endpoint = match link.endpoints.iter().position(|e| *e == target) {
                            Some(i) => i,
                            None => {
                                link.endpoints.push(target);
                                link.endpoints.len() - 1
                            }
                        };
                        link.conn = None;
                    }
                    _ => return Err(PresenceError::Refused(message)),
                },
                Ok(v) => return Ok(v),
                Err(e) => {
                    link.conn = None;
                    if self.mode == TableMode::Cluster {
                        link.endpoint = (link.endpoint + 1) % link.endpoints.len();
                    }
                    return Err(e.into());
                }
            }
        }
        Err(PresenceError::Moving)
    }

    async fn open(&self, endpoint: &Endpoint) -> Result<Conn, PresenceError> {
        let mut conn = self.connector.open(endpoint).await?;
        let reply = conn
            .call(
                &[b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY.as_bytes()],
                self.connector.timeout,
            )
            .await?;
        crate::conn::ok_or_refused("FUNCTION LOAD", reply)?;
        Ok(conn)
    }
}

/// `MOVED 3999 127.0.0.1:6381` -> (`127.0.0.1`, 6381).
fn moved_to(message: &str) -> Option<(&str, u16)> {
    let addr = message.strip_prefix("MOVED ")?.split_whitespace().nth(1)?;
    let (host, port) = addr.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

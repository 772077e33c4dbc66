//! Redis Sentinel: which server is the master now. Every connection a node opens in sentinel
//! mode asks the sentinels first (`SENTINEL get-master-addr-by-name`), checks that the server
//! it reached is a master (`ROLE`), and names itself (`CLIENT SETNAME`). A watcher listens to
//! the sentinels' `+switch-master`; when the master changes it closes the node's connections
//! to the old one (found by their name), so that each reconnects to the new master at once
//! rather than writing to a server that is about to become a replica.

use std::sync::{atomic::AtomicBool, atomic::Ordering, Arc, Weak};

use crate::{
    conn::{Conn, Connector, LinkError, Locate},
    resp::Value,
    Endpoint,
};

/// Where the sentinels are and what they watch.
#[derive(Debug)]
pub(crate) struct Sentinels {
    /// The sentinels, each with the sentinel password.
    pub(crate) sentinels: Vec<Endpoint>,
    /// The name the master is monitored under.
    pub(crate) master: String,
    /// The name this process's connections give themselves (`CLIENT SETNAME`).
    pub(crate) client_name: String,
    /// The `+switch-master` watcher runs.
    watching: AtomicBool,
    /// The master last connected to, to log a change once.
    last: std::sync::Mutex<Option<(String, u16)>>,
    /// Itself, for the watcher it starts.
    me: Weak<Sentinels>,
}

impl Sentinels {
    pub(crate) fn new(sentinels: Vec<Endpoint>, master: String) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            sentinels,
            master,
            client_name: format!("herald-{:016x}", fastrand::u64(..)),
            watching: AtomicBool::new(false),
            last: std::sync::Mutex::new(None),
            me: me.clone(),
        })
    }

    /// The master's address, from the first sentinel that knows it.
    pub(crate) async fn master_addr(
        &self,
        connector: &Connector,
    ) -> Result<(String, u16), LinkError> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.ask(sentinel, connector).await {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => {
                    last = Some(format!(
                        "{sentinel} knows no master named {:?}",
                        self.master
                    ))
                }
                Err(e) => last = Some(format!("{sentinel}: {e}")),
            }
        }
        Err(LinkError::Sentinel(
            last.unwrap_or_else(|| "no sentinel configured".into()),
        ))
    }

    async fn ask(
        &self,
        sentinel: &Endpoint,
        connector: &Connector,
    ) -> Result<Option<(String, u16)>, LinkError> {
        let mut conn = connector.open_at(sentinel).await?;
        let ask: [&[u8]; 3] = [
            b"SENTINEL",
            b"get-master-addr-by-name",
            self.master.as_bytes(),
        ];
        match conn.call(&ask, connector.timeout).await? {
            Value::Array(Some(items)) if items.len() == 2 => {
                let text = |v: &Value| {
                    v.as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                };
                let host = text(&items[0]).ok_or(LinkError::Unexpected)?;
                let port = text(&items[1])
                    .and_then(|p| p.parse().ok())
                    .ok_or(LinkError::Unexpected)?;
                Ok(Some((host, port)))
            }
            Value::Error(message) => Err(LinkError::Refused {
                command: "SENTINEL",
                message,
            }),
            _ => Ok(None),
        }
    }

    /// Opens a connection to the master `template` describes (its credentials, database and
    /// TLS), checked to be a master and named; starts the watcher on first use.
    pub(crate) async fn open_master(
        &self,
        template: &Endpoint,
        connector: &Connector,
    ) -> Result<Conn, LinkError> {
        if !self.watching.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                tokio::spawn(watch(me, template.clone(), connector.clone()));
            }
        }
        let (host, port) = self.master_addr(connector).await?;
        let at = Endpoint {
            host,
            port,
            ..template.clone()
        };
        let mut conn = connector.open_at(&at).await?;
        let role = conn.call(&[b"ROLE"], connector.timeout).await?;
        let is_master = matches!(&role, Value::Array(Some(items))
            if items.first().and_then(Value::as_bytes) == Some(b"master"));
        if !is_master {
            return Err(LinkError::Sentinel(format!(
                "{at}, named master of {:?} by the sentinels, is not a master (yet)",
                self.master
            )));
        }
        let now = Some((at.host.clone(), at.port));
        let before = std::mem::replace(
            &mut *self.last.lock().unwrap_or_else(|e| e.into_inner()),
            now.clone(),
        );
        if before != now {
            tracing::info!(master = %self.master, redis = %at, "the sentinels name the master");
        }
        let name: [&[u8]; 3] = [b"CLIENT", b"SETNAME", self.client_name.as_bytes()];
        crate::conn::ok_or_refused("CLIENT SETNAME", conn.call(&name, connector.timeout).await?)?;
        Ok(conn)
    }
}

impl Locate for Sentinels {
    fn open<'a>(
        &'a self,
        template: &'a Endpoint,
        connector: &'a Connector,
    ) -> herald_broker::BoxFuture<'a, Result<Conn, LinkError>> {
        Box::pin(self.open_master(template, connector))
    }
}

/// Listens to the sentinels' `+switch-master` (one at a time, the next when one is lost) and
/// closes this process's connections to the old master when it is ours that moved.
async fn watch(sentinels: Arc<Sentinels>, template: Endpoint, connector: Connector) {
    let mut backoff = crate::conn::Backoff::new();
    loop {
        for sentinel in &sentinels.sentinels {
            if let Ok(mut conn) = connector.open_at(sentinel).await {
                backoff.reset();
                let subscribe: [&[u8]; 2] = [b"SUBSCRIBE", b"+switch-master"];
                if conn.call(&subscribe, connector.timeout).await.is_err() {
                    continue;
                }
                while let Ok(message) = conn.read_value().await {
                    if let Some((host, port)) = switched(&message, &sentinels.master) {
                        let old = Endpoint {
                            host,
                            port,
                            ..template.clone()
                        };
                        tracing::warn!(master = %sentinels.master, %old, "the master moved: reconnecting");
                        close_ours(&old, &sentinels.client_name, &connector).await;
                    }
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// The old master's address, when `message` is a `+switch-master` of `master`
/// (`<name> <old ip> <old port> <new ip> <new port>`).
fn switched(message: &Value, master: &str) -> Option<(String, u16)> {
    let Value::Array(Some(items)) = message else {
        return None;
    };
    let payload = std::str::from_utf8(items.get(2)?.as_bytes()?).ok()?;
    let mut words = payload.split_whitespace();
    if words.next()? != master {
        return None;
    }
    let host = words.next()?.to_owned();
    let port = words.next()?.parse().ok()?;
    Some((host, port))
}

/// Closes the connections named `name` on `server`, if it can be reached.
async fn close_ours(server: &Endpoint, name: &str, connector: &Connector) {
    let Ok(mut conn) = connector.open_at(server).await else {
        return;
    };
    let Ok(list) = conn.call(&[b"CLIENT", b"LIST"], connector.timeout).await else {
        return;
    };
    let Some(list) = list
        .as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
    else {
        return;
    };
    let want = format!(" name={name} ");
    for line in list.lines().filter(|l| l.contains(&want)) {
        if let Some(id) = line.strip_prefix("id=").and_then(|l| l.split(' ').next()) {
            let _ = conn
                .call(
                    &[b"CLIENT", b"KILL", b"ID", id.as_bytes()],
                    connector.timeout,
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_of_this_master_names_the_old_address() {
        let message = |payload: &str| {
            Value::Array(Some(vec![
                Value::Bulk(Some(b"message".to_vec().into())),
                Value::Bulk(Some(b"+switch-master".to_vec().into())),
                Value::Bulk(Some(payload.as_bytes().to_vec().into())),
            ]))
        };
        let m = message("mymaster 127.0.0.1 7001 127.0.0.1 7002");
        assert_eq!(switched(&m, "mymaster"), Some(("127.0.0.1".into(), 7001)));
        assert_eq!(switched(&m, "other"), None);
        assert_eq!(switched(&message("mymaster 127.0.0.1"), "mymaster"), None);
    }
}

//! The publish connection: one per node, pipelined. Requests queue in a bounded channel; the
//! connection task writes every queued command in one write and matches replies in order.
//! A request older than the timeout means Redis is stalled: the connection is dropped, every
//! waiting request fails, and the task reconnects.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use herald_broker::BrokerError;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

mod replies;

use replies::Replies;

use crate::{
    conn::{ok_or_refused, Backoff, Conn, Connector, LinkError},
    layout::LIBRARY,
    resp::{self, Value},
    Endpoint, Shared,
};

/// Publish requests that may wait for the connection; more fail at once.
const QUEUE: usize = 16 * 1024;
/// Commands per write at most.
const BATCH: usize = 512;

pub(crate) struct Request {
    pub(crate) command: Bytes,
    pub(crate) reply: oneshot::Sender<Result<Value, BrokerError>>,
}

/// The handle publishers use.
#[derive(Clone)]
pub(crate) struct Publisher {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl Publisher {
    pub(crate) fn start(
        endpoint: Endpoint,
        connector: Connector,
        shared: Arc<Shared>,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(endpoint, connector, rx, shared.clone(), stop));
        Self { tx, shared }
    }

    /// Sends one encoded command; fails at once when Redis is not connected or the queue is
    /// full, so that callers answer fast instead of piling up.
    pub(crate) fn send(
        &self,
        command: Bytes,
    ) -> Result<oneshot::Receiver<Result<Value, BrokerError>>, BrokerError> {
        if !self.shared.publisher_up.load(Ordering::Relaxed) {
            return Err(BrokerError::Unavailable("redis is not connected"));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Request { command, reply })
            .map_err(|_| BrokerError::Unavailable("redis publish queue is full"))?;
        Ok(rx)
    }
}

/// The reply to a command [`Publisher::send`] queued, within `timeout`: no answer in time is
/// [`BrokerError::Uncertain`] (the command may have run), a publisher gone meanwhile
/// [`BrokerError::Closed`].
///
/// # Errors
/// As above, or the error `sent` already is.
pub(crate) async fn reply_within(
    sent: Result<oneshot::Receiver<Result<Value, BrokerError>>, BrokerError>,
    timeout: std::time::Duration,
) -> Result<Value, BrokerError> {
    tokio::time::timeout(timeout, sent?)
        .await
        .map_err(|_| BrokerError::Uncertain("redis did not answer in time"))?
        .map_err(|_| BrokerError::Closed)?
}

async fn run(
    endpoint: Endpoint,
    connector: Connector,
    mut rx: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let timeout = connector.timeout;
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    let mut failures: u32 = 0;
    loop {
        match connect(&endpoint, &connector).await {
            Ok(conn) => {
                backoff.reset();
                failures = 0;
                if connected_before {
                    shared.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                connected_before = true;
                tracing::info!(redis = %endpoint, "publish connection up");
                shared.publisher_up.store(true, Ordering::Relaxed);
                let wait = (connector.wait_replicas > 0).then_some(connector.wait_replicas);
                let result = serve(conn, &mut rx, timeout, &stop, &shared, wait).await;
                shared.publisher_up.store(false, Ordering::Relaxed);
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(redis = %endpoint, error = %e, "publish connection lost")
                    }
                }
            }
            Err(e) => {
                // Said at the first failure and every 30th after (about every 30 s).
                failures += 1;
                if failures % 30 == 1 {
                    tracing::warn!(redis = %endpoint, error = %e, failures, "cannot connect");
                } else {
                    tracing::debug!(redis = %endpoint, error = %e, "cannot connect");
                }
            }
        }
        // Until the next attempt, requests fail at once.
        let retry_at = Instant::now() + backoff.next_delay();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(retry_at) => break,
                request = rx.recv() => match request {
                    Some(r) => {
                        let _ = r.reply.send(Err(BrokerError::Unavailable("redis is not connected")));
                    }
                    None => return,
                },
            }
        }
    }
}

async fn connect(endpoint: &Endpoint, connector: &Connector) -> Result<Conn, LinkError> {
    let timeout = connector.timeout;
    let mut conn = connector.open(endpoint).await?;
    let reply = conn
        .call(
            &[b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY.as_bytes()],
            timeout,
        )
        .await?;
    ok_or_refused("FUNCTION LOAD", reply)?;
    Ok(conn)
}

/// Serves requests until the connection fails (`Err`) or the broker stops (`Ok`).
async fn serve(
    conn: Conn,
    rx: &mut mpsc::Receiver<Request>,
    timeout: Duration,
    stop: &CancellationToken,
    shared: &Shared,
    wait: Option<u32>,
) -> Result<(), LinkError> {
    let Conn { stream, mut buf } = conn;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut replies = Replies::new(wait);
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = BytesMut::new();
    let check = timeout / 4;
    // A WAIT answers within a quarter of the timeout, long before the connection counts as
    // stalled.
    let wait_ms = (timeout / 4).as_millis().max(1).to_string();
    let result = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Ok(()),
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break Err(LinkError::Closed),
                    Ok(_) => {}
                    Err(e) => break Err(e.into()),
                }
                let mut failed = None;
                loop {
                    match resp::parse(&mut buf) {
                        Ok(Some(value)) => {
                            if let Err(e) = replies.take(value) {
                                failed = Some(e);
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e.into());
                            break;
                        }
                    }
                }
                if let Some(e) = failed {
                    break Err(e);
                }
            }
            received = rx.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break Ok(());
                }
                let now = Instant::now();
                shared.publish_writes.fetch_add(1, Ordering::Relaxed);
                shared.publish_commands.fetch_add(received as u64, Ordering::Relaxed);
                for request in batch.drain(..) {
                    out.extend_from_slice(&request.command);
                    replies.sent(now, request.reply);
                }
                if let Some(n) = replies.wait() {
                    let n = n.to_string();
                    resp::encode_command(&mut out, &[b"WAIT", n.as_bytes(), wait_ms.as_bytes()]);
                    replies.waited(now);
                }
                match tokio::time::timeout(timeout, writer.write_all(&out)).await {
                    Ok(Ok(())) => out.clear(),
                    Ok(Err(e)) => break Err(e.into()),
                    Err(_) => break Err(LinkError::Timeout(timeout)),
                }
            }
            _ = tokio::time::sleep(check), if !replies.is_empty() => {
                if replies.oldest().is_some_and(|sent| sent.elapsed() > timeout) {
                    break Err(LinkError::Timeout(timeout));
                }
            }
        }
    };
    replies.lost();
    result
}

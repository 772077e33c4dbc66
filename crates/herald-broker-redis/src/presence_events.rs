//! On a Redis Cluster, the presence table publishes every join and leave on one classic
//! pub/sub channel (see [`crate::presence`]). This task keeps one connection subscribed to it,
//! on any node of the cluster (classic PUBLISH reaches subscribers on every node), and hands
//! each notice to the inbox under its channel. After a lost connection it subscribes again
//! and tells the inbox that presence notices may have been missed.

use std::{sync::Arc, time::Duration};

use bytes::BytesMut;
use herald_broker::Inbox;
use herald_protocol::presence::PresenceNotice;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{Backoff, Conn, Connector, LinkError},
    presence::events_channel,
    resp::{self, Value},
    Endpoint,
};

/// Starts the task; it stops when `stop` is cancelled.
pub(crate) fn start(
    endpoints: Vec<Endpoint>,
    connector: Connector,
    prefix: &str,
    inbox: Arc<dyn Inbox>,
    stop: CancellationToken,
) {
    let channel = events_channel(prefix);
    tokio::spawn(run(endpoints, connector, channel, inbox, stop));
}

async fn run(
    endpoints: Vec<Endpoint>,
    connector: Connector,
    channel: String,
    inbox: Arc<dyn Inbox>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut next = 0;
    let mut connected_before = false;
    loop {
        let endpoint = &endpoints[next % endpoints.len()];
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            opened = connector.open(endpoint) => match opened {
                Ok(conn) => {
                    backoff.reset();
                    serve(conn, &channel, connector.timeout, &*inbox, &stop, &mut connected_before).await
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(redis = %endpoint, error = %e, "presence events connection lost");
                // Another node next time: the one that failed may be gone.
                next += 1;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Subscribes and delivers until the connection fails (`Err`) or `stop` (`Ok`).
async fn serve(
    mut conn: Conn,
    channel: &str,
    timeout: Duration,
    inbox: &dyn Inbox,
    stop: &CancellationToken,
    connected_before: &mut bool,
) -> Result<(), LinkError> {
    let mut out = BytesMut::new();
    resp::encode_command(&mut out, &[b"SUBSCRIBE", channel.as_bytes()]);
    conn.stream.write_all(&out).await?;
    out.clear();
    let mut ping = tokio::time::interval(timeout / 2);
    let mut ping_sent: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            read = conn.stream.read_buf(&mut conn.buf) => {
                if read? == 0 {
                    return Err(LinkError::Closed);
                }
                while let Some(value) = resp::parse(&mut conn.buf)? {
                    match value {
                        Value::Array(Some(items)) => {
                            let kind = items.first().and_then(Value::as_bytes).unwrap_or_default();
                            match kind {
                                b"subscribe" => {
                                    if *connected_before {
                                        inbox.presence_lost("presence events connection was lost").await;
                                    }
                                    *connected_before = true;
                                }
                                b"message" => {
                                    if let Some(payload) = items.get(2).and_then(Value::as_bytes) {
                                        deliver(inbox, payload).await;
                                    }
                                }
                                b"pong" => ping_sent = None,
                                _ => {}
                            }
                        }
                        Value::Error(message) => return Err(LinkError::Refused { command: "SUBSCRIBE", message }),
                        _ => {}
                    }
                }
            }
            _ = ping.tick() => match ping_sent {
                Some(sent) if sent.elapsed() > timeout => return Err(LinkError::Timeout(timeout)),
                Some(_) => {}
                None => {
                    resp::encode_command(&mut out, &[b"PING"]);
                    conn.stream.write_all(&out).await?;
                    out.clear();
                    ping_sent = Some(Instant::now());
                }
            },
        }
    }
}

async fn deliver(inbox: &dyn Inbox, payload: &[u8]) {
    match PresenceNotice::from_event(payload) {
        Ok((channel, notice)) => inbox.presence(channel, notice).await,
        Err(e) => tracing::warn!(error = %e, "dropped a malformed presence event"),
    }
}

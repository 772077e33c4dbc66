//! The pub/sub connection: one per node, subscribed to exactly the channels with local
//! subscribers. On reconnect it subscribes them all again and, once Redis confirms each, tells
//! the inbox that the channel had a gap. A PING that goes unanswered for the timeout means
//! Redis is stalled: the connection is dropped and rebuilt the same way.

use std::{
    collections::{HashMap, HashSet},
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use bytes::BytesMut;
use herald_broker::{BrokerError, Inbox};
use herald_protocol::{envelope::BrokerMessage, ChannelName};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{Backoff, Conn, Connector, LinkError},
    layout::{Flavor, Layout},
    resp::{self, Value},
    Endpoint, Shared,
};

/// Channels per SUBSCRIBE command when resubscribing.
const RESUBSCRIBE_CHUNK: usize = 512;

pub(crate) type Ack = oneshot::Sender<Result<(), BrokerError>>;

pub(crate) enum Command {
    /// Subscribe `channel`; `ack` is answered on Redis' confirmation. Without an ack the
    /// channel is adopted from another shard connection: its subscribers get a gap notice.
    Subscribe {
        channel: ChannelName,
        ack: Option<Ack>,
    },
    Unsubscribe {
        channel: ChannelName,
    },
}

/// What a sharded subscriber reports to the cluster manager.
#[derive(Debug)]
pub(crate) enum Event {
    /// Redis took `channel` away (its slot moved): it must be adopted by its new owner.
    Lost(ChannelName),
    /// Something suggests the topology changed (connection lost, an error reply).
    Refresh,
}

/// What the subscriber task owns.
struct State {
    flavor: Flavor,
    events: Option<mpsc::UnboundedSender<Event>>,
    layout: Layout,
    inbox: Arc<dyn Inbox>,
    shared: Arc<Shared>,
    /// Channels the node wants (confirmed or on their way).
    desired: HashSet<ChannelName>,
    /// Subscribe requests waiting for Redis' confirmation.
    awaiting: HashMap<ChannelName, Vec<Ack>>,
    /// Channels resubscribed after a reconnect, not yet confirmed: each gets a gap notice.
    resubscribing: HashSet<ChannelName>,
}

/// Where a subscriber connects and reports.
pub(crate) struct Setup {
    pub(crate) endpoint: Endpoint,
    pub(crate) connector: Connector,
    pub(crate) flavor: Flavor,
    pub(crate) layout: Layout,
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) events: Option<mpsc::UnboundedSender<Event>>,
}

pub(crate) fn start(setup: Setup, stop: CancellationToken) -> mpsc::UnboundedSender<Command> {
    let Setup {
        endpoint,
        connector,
        flavor,
        layout,
        inbox,
        shared,
        events,
    } = setup;
    // Unbounded so that calls take effect in call order without waiting; the hub issues at
    // most one subscribe per channel until it is answered.
    let (tx, rx) = mpsc::unbounded_channel();
    let state = State {
        flavor,
        events,
        layout,
        inbox,
        shared,
        desired: HashSet::new(),
        awaiting: HashMap::new(),
        resubscribing: HashSet::new(),
    };
    tokio::spawn(run(endpoint, connector, rx, state, stop));
    tx
}

async fn run(
    endpoint: Endpoint,
    connector: Connector,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut state: State,
    stop: CancellationToken,
) {
    let timeout = connector.timeout;
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        match connector.open(&endpoint).await {
            Ok(mut conn) => {
                backoff.reset();
                if connected_before {
                    state.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                connected_before = true;
                tracing::info!(redis = %endpoint, channels = state.desired.len(), "subscriber connection up");
                let result = match state.resubscribe(&mut conn).await {
                    Ok(()) => state.serve(conn, &mut rx, timeout, &stop).await,
                    Err(e) => Err(e),
                };
                state.shared.subscriber_up.store(false, Ordering::Relaxed);
                state.lost();
                state.report(Event::Refresh);
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(redis = %endpoint, error = %e, "subscriber connection lost")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(redis = %endpoint, error = %e, "cannot connect");
                state.report(Event::Refresh);
            }
        }
        let retry_at = Instant::now() + backoff.next_delay();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(retry_at) => break,
                command = rx.recv() => match command {
                    Some(c) => state.while_down(c),
                    None => return,
                },
            }
        }
    }
}

impl State {
    fn report(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// A command that arrives while Redis is down: subscribes fail at once; adopted channels
    /// are kept and subscribed (with their gap notice) once connected.
    fn while_down(&mut self, command: Command) {
        match command {
            Command::Subscribe { ack: Some(ack), .. } => {
                let _ = ack.send(Err(BrokerError::Unavailable("redis is not connected")));
            }
            Command::Subscribe { channel, ack: None } => {
                self.desired.insert(channel);
            }
            Command::Unsubscribe { channel } => {
                self.desired.remove(&channel);
            }
        }
    }

    /// The connection is gone: unconfirmed subscribes fail and are forgotten; confirmed
    /// channels stay desired and are resubscribed on the next connection.
    fn lost(&mut self) {
        for (channel, acks) in self.awaiting.drain() {
            self.desired.remove(&channel);
            for ack in acks {
                let _ = ack.send(Err(BrokerError::Unavailable("redis connection lost")));
            }
        }
        self.resubscribing.clear();
    }

    async fn resubscribe(&mut self, conn: &mut Conn) -> Result<(), LinkError> {
        let channels: Vec<ChannelName> = self.desired.iter().cloned().collect();
        let mut out = BytesMut::new();
        for chunk in channels.chunks(RESUBSCRIBE_CHUNK) {
            let names: Vec<String> = chunk
                .iter()
                .map(|c| self.layout.pubsub_channel(c))
                .collect();
            let mut args: Vec<&[u8]> = vec![self.flavor.subscribe()];
            args.extend(names.iter().map(|n| n.as_bytes()));
            resp::encode_command(&mut out, &args);
        }
        self.resubscribing.extend(channels);
        conn.stream.write_all(&out).await?;
        // Ready once every channel is live again (at once when there are none).
        self.mark_up_when_resubscribed();
        Ok(())
    }

    fn mark_up_when_resubscribed(&self) {
        if self.resubscribing.is_empty() {
            self.shared.subscriber_up.store(true, Ordering::Relaxed);
        }
    }

    async fn serve(
        &mut self,
        mut conn: Conn,
        rx: &mut mpsc::UnboundedReceiver<Command>,
        timeout: Duration,
        stop: &CancellationToken,
    ) -> Result<(), LinkError> {
        let mut ping_sent: Option<Instant> = None;
        let mut ping = tokio::time::interval(timeout / 2);
        let mut out = BytesMut::new();
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                read = conn.stream.read_buf(&mut conn.buf) => {
                    if read? == 0 {
                        return Err(LinkError::Closed);
                    }
                    while let Some(value) = resp::parse(&mut conn.buf)? {
                        if self.on_value(value).await {
                            ping_sent = None;
                        }
                    }
                }
                command = rx.recv() => {
                    let Some(command) = command else { return Ok(()) };
                    self.command(command, &mut out);
                    conn.stream.write_all(&out).await?;
                    out.clear();
                }
                _ = ping.tick() => {
                    match ping_sent {
                        Some(sent) if sent.elapsed() > timeout => return Err(LinkError::Timeout(timeout)),
                        Some(_) => {}
                        None => {
                            resp::encode_command(&mut out, &[b"PING"]);
                            conn.stream.write_all(&out).await?;
                            out.clear();
                            ping_sent = Some(Instant::now());
                        }
                    }
                }
            }
        }
    }

    fn command(&mut self, command: Command, out: &mut BytesMut) {
        match command {
            Command::Subscribe { channel, ack: None } => {
                // Adopted from another shard: subscribe, and announce the gap on confirmation.
                self.desired.insert(channel.clone());
                self.resubscribing.insert(channel.clone());
                let name = self.layout.pubsub_channel(&channel);
                resp::encode_command(out, &[self.flavor.subscribe(), name.as_bytes()]);
            }
            Command::Subscribe {
                channel,
                ack: Some(ack),
            } => {
                if self.desired.contains(&channel)
                    && !self.awaiting.contains_key(&channel)
                    && !self.resubscribing.contains(&channel)
                {
                    let _ = ack.send(Ok(()));
                    return;
                }
                self.desired.insert(channel.clone());
                let first = !self.awaiting.contains_key(&channel);
                self.awaiting.entry(channel.clone()).or_default().push(ack);
                if first {
                    let name = self.layout.pubsub_channel(&channel);
                    resp::encode_command(out, &[self.flavor.subscribe(), name.as_bytes()]);
                }
            }
            Command::Unsubscribe { channel } => {
                self.desired.remove(&channel);
                self.resubscribing.remove(&channel);
                let name = self.layout.pubsub_channel(&channel);
                resp::encode_command(out, &[self.flavor.unsubscribe(), name.as_bytes()]);
            }
        }
    }

    /// Handles one push from Redis; true when it answers our PING.
    async fn on_value(&mut self, value: Value) -> bool {
        let items = match value {
            Value::Array(Some(items)) => items,
            Value::Simple(s) if s.eq_ignore_ascii_case("PONG") => return true,
            Value::Error(message) => {
                // A subscription refused (MOVED, CLUSTERDOWN...): the requests still waiting
                // fail and are forgotten; adopted channels go back to the cluster manager.
                tracing::warn!(%message, "redis refused a subscription");
                self.refused();
                return false;
            }
            other => {
                tracing::debug!(?other, "unexpected value on the subscriber connection");
                return false;
            }
        };
        let kind = items.first().and_then(Value::as_bytes).unwrap_or_default();
        let name = items.get(1).and_then(Value::as_bytes).unwrap_or_default();
        match kind {
            b"pong" => return true,
            b"subscribe" | b"ssubscribe" => {
                if let Some(channel) = self.layout.channel_of(name) {
                    self.confirmed(channel).await;
                }
            }
            b"sunsubscribe" => {
                // Not asked for while still desired: the slot moved to another master.
                if let Some(channel) = self.layout.channel_of(name) {
                    if self.desired.remove(&channel) {
                        self.report(Event::Lost(channel));
                    }
                }
            }
            b"message" | b"smessage" => {
                if let (Some(channel), Some(payload)) = (
                    self.layout.channel_of(name),
                    items.get(2).and_then(Value::as_bytes),
                ) {
                    self.message(channel, payload).await;
                }
            }
            _ => {}
        }
        false
    }

    fn refused(&mut self) {
        for (channel, acks) in self.awaiting.drain() {
            self.desired.remove(&channel);
            for ack in acks {
                let _ = ack.send(Err(BrokerError::Unavailable(
                    "redis refused the subscription",
                )));
            }
        }
        for channel in std::mem::take(&mut self.resubscribing) {
            self.desired.remove(&channel);
            self.report(Event::Lost(channel));
        }
        self.mark_up_when_resubscribed();
        self.report(Event::Refresh);
    }

    async fn confirmed(&mut self, channel: ChannelName) {
        if let Some(acks) = self.awaiting.remove(&channel) {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
        }
        if self.resubscribing.remove(&channel) {
            if self.desired.contains(&channel) {
                self.shared.gaps.fetch_add(1, Ordering::Relaxed);
                self.inbox.gap(channel, "broker connection was lost").await;
            }
            self.mark_up_when_resubscribed();
        }
    }

    async fn message(&mut self, channel: ChannelName, payload: &[u8]) {
        match BrokerMessage::decode(payload) {
            Ok(BrokerMessage::Presence(notice)) => self.inbox.presence(channel, notice).await,
            Ok(BrokerMessage::Publication(e)) => {
                self.inbox
                    .deliver(crate::envelope::publication(channel, e))
                    .await;
            }
            Err(e) => {
                self.shared.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%channel, error = %e, "dropped a malformed message from redis");
            }
        }
    }
}

//! One WebSocket connection: a single task that owns the socket, reads client frames when the
//! socket is readable, and writes queued server frames in batches when there are any.
//!
//! One task instead of a reader and a writer: it waits on readiness (`readable`, `writable`,
//! the queue's wake-up) rather than on a read into a buffer, so an idle connection holds no
//! read buffer and a single small future. Every wait in the loop is cancel-safe.

use std::{collections::VecDeque, io, pin::Pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use herald_protocol::{
    close,
    ws::{control_frame, Decoder, Message, OpCode},
};
use tokio::time::{Instant, Sleep};

mod output;

use super::{
    socket::Socket,
    stop::Stops,
    waits::{close_wait, expiry_wait, jitter},
};
use crate::{
    ctx::{ConnectionSlot, NodeCtx},
    peer::{Close, Peer},
    session::Session,
};

/// Bytes asked of the socket per read, at least.
const READ_CHUNK: usize = 4096;
/// Reads per wake-up before giving other connections a turn.
const READS_PER_WAKE: usize = 8;

/// Why a connection ended.
#[derive(Debug)]
pub(super) enum End {
    /// The close handshake completed (either side started it).
    Closed,
    /// The client closed the TCP connection without a close frame.
    Eof,
    /// The client did not answer our close frame in time.
    CloseTimeout,
    /// The node's grace period ran out.
    Killed,
    /// A socket error.
    Io(io::Error),
}

pub(super) struct Connection {
    stream: Socket,
    ctx: Arc<NodeCtx>,
    /// What the session sees of the connection: its id, queue and channels.
    peer: Peer,
    /// The protocol it speaks, and its state.
    session: Session,
    decoder: Decoder,
    read_buf: BytesMut,
    /// Frames taken from the queue (and control frames), being written.
    writing: VecDeque<Bytes>,
    /// Bytes of `writing[0]` already written.
    written: usize,
    /// When the oldest frame of `writing` taken from the queue was pushed there.
    queued_since: Option<std::time::Instant>,
    last_heard: Instant,
    /// When our close frame was queued, the deadline for the client's answer.
    close_deadline: Option<Instant>,
    /// Why the close started (`herald_connections_closed_total`).
    close_reason: Option<&'static str>,
    /// The client sent its close frame, or its input is no longer read.
    input_done: bool,
    /// A request awaits its reply from the hub: the next ones wait (unread or undecoded)
    /// until it is queued ([`Outbound::await_reply`]).
    input_paused: bool,
}

impl Connection {
    /// A connection speaking `session`, whose queue is `peer`'s; `early` holds what the client
    /// sent after its upgrade request.
    pub(super) fn new(
        stream: Socket,
        early: Bytes,
        peer: Peer,
        session: Session,
        ctx: Arc<NodeCtx>,
    ) -> Self {
        let ws = &ctx.config.websocket;
        Self {
            stream,
            peer,
            session,
            decoder: Decoder::new(ws.max_message_size),
            read_buf: BytesMut::from(&early[..]),
            writing: VecDeque::new(),
            written: 0,
            queued_since: None,
            last_heard: Instant::now(),
            close_deadline: None,
            close_reason: None,
            input_done: false,
            input_paused: false,
            ctx,
        }
    }

    /// Writes `frame` first (a Pusher connection's opening); with `close`, the connection
    /// closes after it (a refused opening).
    pub(super) fn greet(mut self, frame: Bytes, close: Option<Close>) -> Self {
        self.writing.push_back(frame);
        if let Some(close) = close {
            self.close_as(close);
        }
        self
    }

    /// Serves the connection until it ends, then leaves every shard it subscribed in; gives
    /// back its `slot` of `limits.max_connections` last.
    pub(super) async fn run(&mut self, stops: Stops, slot: ConnectionSlot) {
        let _slot = slot;
        let metrics = self.ctx.metrics.clone();
        metrics.connections.add(1);
        metrics.connections_total.inc();
        let registry = &self.ctx.cluster.registry;
        let user = self.session.user().cloned();
        registry.add(self.peer.id, user, self.peer.outbound.clone());
        let end = self.serve(&stops).await;
        self.ctx.cluster.registry.remove(self.peer.id);
        if matches!(end, End::CloseTimeout | End::Killed) {
            // The client stopped reading, or never answered our close frame: close with a
            // reset, so that the kernel frees what it still holds for it at once.
            self.stream.abort_on_close();
        }
        let reason = match &end {
            End::Killed => "killed",
            _ => self.close_reason.unwrap_or("abnormal"),
        };
        metrics.families.closed.inc(reason);
        match end {
            End::Io(e) => tracing::debug!(error = %e, "connection ended by a socket error"),
            end => tracing::debug!(?end, reason, "connection ended"),
        }
        let presence = self.session.may_be_member();
        self.peer.leave(&self.ctx.hub, presence).await;
        metrics.connections.add(-1);
    }

    async fn serve(&mut self, stops: &Stops) -> End {
        let config = &self.ctx.config;
        let ping_every = config.websocket.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let window = config.shutdown.drain_window;
        let drain = async {
            stops.drain.wait().await;
            tokio::time::sleep(jitter(window)).await;
        };
        tokio::pin!(drain);
        // Made once: a future per turn of the loop would join and leave the waiters each time.
        let killed = stops.kill.wait();
        tokio::pin!(killed);

        // Built only for a token that expires, and again when a refresh changes the expiry.
        let mut expiry: Option<Pin<Box<Sleep>>> = None;
        let mut expiry_of = None;

        if let Err(end) = self.process_input().await {
            return end;
        }
        loop {
            if self.input_paused && !self.peer.outbound.awaiting_reply() {
                // The awaited reply is queued: the requests already read are handled now.
                self.input_paused = false;
                if let Err(end) = self.process_input().await {
                    return end;
                }
            }
            if let Err(e) = self.flush() {
                return End::Io(e);
            }
            if self.session.expires_at() != expiry_of {
                expiry_of = self.session.expires_at();
                expiry = self
                    .session
                    .remaining()
                    .map(|d| Box::pin(tokio::time::sleep(d)));
            }
            let has_output = !self.writing.is_empty() || self.stream.wants_write();
            if self.close_deadline.is_some() && !has_output && self.input_done {
                return End::Closed;
            }
            let open = self.close_deadline.is_none();
            tokio::select! {
                biased;
                () = &mut killed => return End::Killed,
                r = self.stream.readable(), if !self.input_done && !self.input_paused => {
                    if let Err(e) = r {
                        return End::Io(e);
                    }
                    if let Err(end) = self.read().await {
                        return end;
                    }
                }
                r = self.stream.writable(), if has_output => {
                    if let Err(e) = r {
                        return End::Io(e);
                    }
                }
                _ = self.peer.outbound.ready(), if open || self.input_paused => {
                    // While the socket is full, new frames wait in the queue, which bounds
                    // them; an eviction is acted on at once, or a client that reads nothing
                    // (or a trickle) would hold the connection forever.
                    if let Some(channels) = self.peer.outbound.take_leaves() {
                        let (ctx, peer) = (&*self.ctx, &mut self.peer);
                        Box::pin(self.session.leave(ctx, peer, channels)).await;
                    }
                    if !has_output || self.peer.outbound.must_close() {
                        self.take_outbound();
                    }
                }
                _ = ping.tick() => self.on_tick(),
                _ = &mut drain, if open => self.start_close(close::SHUTDOWN),
                _ = expiry_wait(&mut expiry), if open && expiry.is_some() => {
                    tracing::debug!("token expired without a refresh");
                    self.start_close(close::TOKEN_EXPIRED);
                }
                // Built only once our close frame is out: open connections make no timer here.
                _ = close_wait(self.close_deadline), if !open => {
                    return End::CloseTimeout;
                }
            }
        }
    }

    /// Reads what the socket has, up to a few chunks, and handles every complete message.
    async fn read(&mut self) -> Result<(), End> {
        let max = self.ctx.config.websocket.max_message_size + 14;
        for _ in 0..READS_PER_WAKE {
            let want = self.decoder.wanted(&self.read_buf).clamp(READ_CHUNK, max);
            self.read_buf.reserve(want);
            match self.stream.try_read_buf(&mut self.read_buf) {
                Ok(0) => return Err(End::Eof),
                Ok(_) => {
                    self.last_heard = Instant::now();
                    self.process_input().await?;
                    if self.input_done || self.input_paused {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(End::Io(e)),
            }
        }
        if self.read_buf.is_empty() {
            // Idle connections keep no read buffer.
            self.read_buf = BytesMut::new();
        }
        Ok(())
    }

    async fn process_input(&mut self) -> Result<(), End> {
        while !self.input_done {
            if self.peer.outbound.awaiting_reply() {
                self.input_paused = true;
                break;
            }
            match self.decoder.decode(&mut self.read_buf) {
                Ok(None) => break,
                Ok(Some(message)) => self.on_message(message).await,
                Err(e) => {
                    tracing::debug!(error = %e, "protocol error");
                    self.ctx.metrics.protocol_errors.inc();
                    self.start_close(e.close_code());
                    // What follows a broken frame cannot be framed: read no further.
                    self.input_done = true;
                    self.read_buf = BytesMut::new();
                }
            }
        }
        Ok(())
    }

    /// Handles one client message. Its session handles it in a box of its own: a task holds
    /// the largest future it may wait on for its whole life, and a request's (a presence
    /// query's above all) would more than double an idle connection's. One allocation per
    /// client request buys the difference back on every connection.
    async fn on_message(&mut self, message: Message) {
        let open = self.close_deadline.is_none();
        let close = match message {
            Message::Text(payload) if open => {
                let (ctx, peer) = (&*self.ctx, &mut self.peer);
                Box::pin(self.session.on_text(ctx, peer, payload)).await
            }
            Message::Binary(payload) if open => {
                let (ctx, peer) = (&*self.ctx, &mut self.peer);
                Box::pin(self.session.on_binary(ctx, peer, payload)).await
            }
            Message::Ping(payload) if open => {
                self.writing
                    .push_back(control_frame(OpCode::Pong, &payload));
                None
            }
            Message::Close(code) => {
                self.input_done = true;
                self.close_reason.get_or_insert("client");
                let echo = match code {
                    Some((c, _)) if (3000..=4999).contains(&c) || c == close::NORMAL => c,
                    _ => close::NORMAL,
                };
                self.close_with(echo, echo, close::reason(echo));
                None
            }
            // Pongs only refresh `last_heard`; data after our close frame is ignored.
            _ => None,
        };
        if let Some(close) = close {
            self.close_as(close);
        }
    }
}

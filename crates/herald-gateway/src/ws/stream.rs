//! One event stream (`GET /v1/sse`): a single task that owns the socket, writes what its
//! queue holds as HTTP/1.1 chunks (many per syscall), keeps the stream alive with comment
//! lines, and ends it with a `close` event when the node drains, the client reads too slowly
//! or its token expires. What the client sends after its request is read and dropped: a
//! stream only listens, and the end of its input is the end of the stream.

mod open;
mod units;

use std::{collections::VecDeque, io, pin::Pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use herald_protocol::close;
use tokio::time::{Instant, Sleep};

pub(super) use open::start;
use units::Unit;

use super::{
    socket::Socket,
    stop::Stops,
    waits::{close_wait, expiry_wait, jitter},
};
use crate::{
    ctx::{ConnectionSlot, NodeCtx},
    outbound::QueueStatus,
    peer::Peer,
    sse::{framing, Cursor},
};

/// Writes per wake-up before giving other connections a turn.
const WRITES_PER_WAKE: usize = 16;

/// Why a stream ended.
#[derive(Debug)]
enum End {
    /// Everything it was to get was written.
    Done,
    /// The client went away.
    Eof,
    /// The client did not read its last bytes in time.
    Timeout,
    /// The node's grace period ran out.
    Killed,
    /// A socket error.
    Io(io::Error),
}

pub(super) struct EventStream {
    socket: Socket,
    ctx: Arc<NodeCtx>,
    peer: Peer,
    cursor: Cursor,
    /// When its token expires, if it does.
    expires_in: Option<std::time::Duration>,
    writing: VecDeque<Unit>,
    /// Bytes of `writing[0]` already written.
    written: usize,
    /// Frames taken from the queue, before they become units.
    taken: VecDeque<Bytes>,
    /// Where the chunk heads are made.
    scratch: BytesMut,
    /// Where the id line is made.
    id_line: BytesMut,
    /// The response head is queued: the stream has begun.
    started: bool,
    /// The stream is ending: the deadline for what is left to write.
    ending: Option<Instant>,
    close_reason: Option<&'static str>,
}

impl EventStream {
    /// Serves the stream until it ends, then leaves every shard it subscribed in; gives back
    /// its `slot` of `limits.max_connections` last. The server API finds it by its id and
    /// `user` meanwhile.
    async fn run(
        &mut self,
        stops: Stops,
        slot: ConnectionSlot,
        user: Option<herald_presence_core::UserId>,
    ) {
        let _slot = slot;
        let metrics = self.ctx.metrics.clone();
        metrics.connections.add(1);
        metrics.connections_total.inc();
        let registry = &self.ctx.cluster.registry;
        registry.add(self.peer.id, user, self.peer.outbound.clone());
        let end = self.serve(&stops).await;
        self.ctx.cluster.registry.remove(self.peer.id);
        if matches!(end, End::Timeout | End::Killed) {
            self.socket.abort_on_close();
        }
        let reason = match &end {
            End::Killed => "killed",
            _ => self.close_reason.unwrap_or("client"),
        };
        metrics.families.closed.inc(reason);
        match end {
            End::Io(e) => {
                tracing::debug!(error = %e, reason, "event stream ended by a socket error")
            }
            end => tracing::debug!(?end, reason, "event stream ended"),
        }
        self.peer.leave(&self.ctx.hub, false).await;
        metrics.connections.add(-1);
    }

    async fn serve(&mut self, stops: &Stops) -> End {
        let every = self.ctx.config.sse.keepalive_interval;
        let mut keepalive = tokio::time::interval_at(Instant::now() + every, every);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let window = self.ctx.config.shutdown.drain_window;
        let drain = async {
            stops.drain.wait().await;
            tokio::time::sleep(jitter(window)).await;
        };
        tokio::pin!(drain);
        let killed = stops.kill.wait();
        tokio::pin!(killed);
        let mut expiry: Option<Pin<Box<Sleep>>> =
            self.expires_in.map(|d| Box::pin(tokio::time::sleep(d)));
        let mut input = BytesMut::new();
        loop {
            if let Err(e) = self.flush() {
                return End::Io(e);
            }
            let has_output = !self.writing.is_empty() || self.socket.wants_write();
            if self.ending.is_some() && !has_output {
                return End::Done;
            }
            let open = self.ending.is_none();
            tokio::select! {
                biased;
                () = &mut killed => return End::Killed,
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        return End::Io(e);
                    }
                    // Nothing a client sends means anything here; its end ends the stream.
                    input.reserve(1024);
                    match self.socket.try_read_buf(&mut input) {
                        Ok(0) => return End::Eof,
                        Ok(_) => input = BytesMut::new(),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return End::Io(e),
                    }
                }
                r = self.socket.writable(), if has_output => {
                    if let Err(e) = r {
                        return End::Io(e);
                    }
                }
                _ = self.peer.outbound.ready(), if open => {
                    // A stream keeps the channels its URL names: the server API's
                    // unsubscribe does not apply to it (docs/http-api.md).
                    drop(self.peer.outbound.take_leaves());
                    if !has_output || self.peer.outbound.must_close() {
                        self.take();
                    }
                }
                _ = keepalive.tick(), if open && self.started => {
                    self.writing.push_back(Unit::raw(Bytes::from_static(framing::KEEPALIVE)));
                }
                _ = &mut drain, if open => self.finish(close::SHUTDOWN),
                _ = expiry_wait(&mut expiry), if open && expiry.is_some() => {
                    self.finish(close::TOKEN_EXPIRED);
                }
                _ = close_wait(self.ending), if !open => return End::Timeout,
            }
        }
    }

    /// Ends the stream after a `close` event saying why, and the response's last chunk.
    fn finish(&mut self, code: u16) {
        if self.ending.is_some() {
            return;
        }
        self.close_reason.get_or_insert(match code {
            close::SHUTDOWN => "shutdown",
            close::SLOW_CONSUMER => "slow_consumer",
            close::TOKEN_EXPIRED => "token_expired",
            close::DISCONNECT_RECONNECT | close::DISCONNECTED => "disconnected",
            _ => "internal",
        });
        self.ending = Some(Instant::now() + self.ctx.config.websocket.close_timeout);
        // What is queued goes first (an eviction dropped it already).
        self.peer.outbound.close();
        self.take();
        if self.started {
            self.writing
                .push_back(Unit::raw(framing::close(code, close::reason(code))));
            self.writing
                .push_back(Unit::raw(Bytes::from_static(framing::END)));
        }
    }

    /// Takes what the queue holds, as units to write; acts on an eviction or the end the
    /// stream's start asked for.
    fn take(&mut self) {
        let (status, _) = self.peer.outbound.take_since(&mut self.taken);
        while let Some(frame) = self.taken.pop_front() {
            self.unit(frame);
        }
        match status {
            QueueStatus::Evicted if self.ending.is_none() => {
                tracing::debug!("slow consumer: ending the stream");
                // What it has not read will not be: keep only a unit already begun.
                self.writing.truncate(usize::from(self.written > 0));
                self.finish(close::SLOW_CONSUMER);
            }
            QueueStatus::Disconnected { reconnect } if self.ending.is_none() => {
                self.finish(if reconnect {
                    close::DISCONNECT_RECONNECT
                } else {
                    close::DISCONNECTED
                });
            }
            QueueStatus::Terminated if self.ending.is_none() => {
                // A refusal from the broker, written whole: nothing follows it.
                self.close_reason = Some("internal");
                self.ending = Some(Instant::now() + self.ctx.config.websocket.close_timeout);
            }
            _ => {}
        }
    }
}

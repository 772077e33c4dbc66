//! What a connection sends: queued frames written many per syscall, pings, and the close
//! handshake (also for slow consumers and terminated users).

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
};

use bytes::Bytes;
use herald_protocol::{
    close,
    ws::{close_frame, OpCode},
};
use tokio::time::Instant;

use super::Connection;
use crate::{outbound::QueueStatus, peer::Close};

/// Frames per write syscall at most.
const FRAMES_PER_WRITE: usize = 64;
/// Write syscalls per wake-up before giving other connections a turn.
const WRITES_PER_WAKE: usize = 16;
/// A ping frame with no payload.
static PING: &[u8] = &[0x80 | OpCode::Ping as u8, 0];

impl Connection {
    /// Queues our close frame after what is already queued, and stops taking new frames.
    /// Starts the close handshake with one of Herald's close codes (mapped to the Pusher
    /// protocol's for Pusher connections).
    pub(in crate::ws) fn start_close(&mut self, code: u16) {
        let wire = self.session.close_code(code);
        self.close_with(code, wire, close::reason(code));
    }

    /// Starts the close handshake a session asked for (a refusal of its protocol's).
    pub(in crate::ws) fn close_as(&mut self, close: Close) {
        match close {
            Close::Wire { code, reason } => self.close_with(close::PROTOCOL_ERROR, code, &reason),
        }
    }

    /// Starts the close handshake: `code` says why (for the metrics), `wire` and `text` go in
    /// the close frame.
    pub(super) fn close_with(&mut self, code: u16, wire: u16, text: &str) {
        if self.close_deadline.is_some() {
            return;
        }
        self.close_reason.get_or_insert(match code {
            close::SHUTDOWN => "shutdown",
            close::SLOW_CONSUMER => "slow_consumer",
            close::IDLE_TIMEOUT => "idle_timeout",
            close::TOKEN_EXPIRED => "token_expired",
            close::DISCONNECT_RECONNECT | close::DISCONNECTED => "disconnected",
            close::PROTOCOL_ERROR | close::INVALID_PAYLOAD | close::MESSAGE_TOO_BIG => {
                "protocol_error"
            }
            _ => "internal",
        });
        self.peer.outbound.close();
        self.peer.outbound.take(&mut self.writing);
        self.writing.push_back(close_frame(wire, text));
        self.close_deadline = Some(Instant::now() + self.ctx.config.websocket.close_timeout);
    }

    pub(super) fn take_outbound(&mut self) {
        let (status, since) = self.peer.outbound.take_since(&mut self.writing);
        self.queued_since = self.queued_since.or(since);
        if status == QueueStatus::Terminated {
            // The app terminated this (Pusher) user's connections.
            self.close_as(self.session.terminated());
            return;
        }
        if let QueueStatus::Disconnected { reconnect } = status {
            self.start_close(if reconnect {
                close::DISCONNECT_RECONNECT
            } else {
                close::DISCONNECTED
            });
            return;
        }
        if status == QueueStatus::Evicted {
            tracing::debug!("slow consumer: closing");
            // What it has not read will not be read: keep only a frame already half written,
            // so that the close frame follows on a frame boundary.
            self.writing.truncate(usize::from(self.written > 0));
            self.start_close(close::SLOW_CONSUMER);
        }
    }

    pub(super) fn on_tick(&mut self) {
        self.stream.tick();
        if self.close_deadline.is_some() {
            return;
        }
        if self.last_heard.elapsed() >= self.ctx.config.websocket.idle_timeout {
            tracing::debug!("idle timeout: closing");
            self.ctx.metrics.idle_timeouts.inc();
            self.start_close(close::IDLE_TIMEOUT);
        } else {
            self.writing.push_back(Bytes::from_static(PING));
        }
    }

    /// Writes as much as the socket takes now, many frames per syscall, refilling from the
    /// queue as it empties.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self.stream.flush_pending() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            other => other?,
        }
        for _ in 0..WRITES_PER_WAKE {
            if self.writing.is_empty() && self.close_deadline.is_none() {
                self.take_outbound();
            }
            if self.writing.is_empty() {
                if self.writing.capacity() > FRAMES_PER_WRITE {
                    self.writing = VecDeque::new();
                }
                return Ok(());
            }
            let mut slices = [IoSlice::new(&[]); FRAMES_PER_WRITE];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(&self.writing) {
                let skip = if count == 0 { self.written } else { 0 };
                *slot = IoSlice::new(&frame[skip..]);
                count += 1;
            }
            match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let frames = self.advance(n);
                    let metrics = &self.ctx.metrics;
                    metrics.socket_writes.inc();
                    metrics.bytes_written.add(n as u64);
                    metrics.frames_written.add(frames);
                    if self.writing.is_empty() {
                        if let Some(since) = self.queued_since.take() {
                            let us = since.elapsed().as_micros();
                            metrics
                                .outbound_delay
                                .record_us(us.try_into().unwrap_or(u64::MAX));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops `n` written bytes off the front; returns how many frames were completed.
    fn advance(&mut self, mut n: usize) -> u64 {
        let mut completed = 0;
        while n > 0 {
            let left = self.writing[0].len() - self.written;
            if n >= left {
                n -= left;
                self.writing.pop_front();
                self.written = 0;
                completed += 1;
            } else {
                self.written += n;
                n = 0;
            }
        }
        completed
    }
}

//! A connection's outbound queue: bounded in bytes, allocation-free while empty.
//!
//! The hub and the connection's own request handling push complete frames; the connection task
//! takes them all at once and writes them in batches. Pushing never waits: when the queue would
//! exceed its byte limit the connection is marked evicted (a slow consumer) and woken to close.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::Poll,
    time::Instant,
};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use herald_hub::{Push, Sink};
use herald_protocol::WireFormat;

/// Whether the queue still takes frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueStatus {
    /// Taking frames.
    Open,
    /// Overflowed: the connection must close as a slow consumer.
    Evicted,
    /// The connection is closing; frames are dropped.
    Closed,
    /// The application ended the connection ([`Outbound::terminate`]): it closes after what
    /// is queued, and takes no more.
    Terminated,
    /// The server API disconnected the connection ([`Outbound::disconnect`]): it closes after
    /// what is queued, telling the client whether to come back.
    Disconnected {
        /// The client may reconnect.
        reconnect: bool,
    },
}

struct State {
    frames: VecDeque<Bytes>,
    bytes: usize,
    status: QueueStatus,
    /// When the oldest queued frame was pushed.
    since: Option<Instant>,
    /// Channels the server API made the connection leave, not yet acted on (boxed: almost
    /// every connection never has one).
    #[allow(
        clippy::box_collection,
        reason = "one word per idle connection instead of a Vec's three"
    )]
    leaves: Option<Box<Vec<herald_protocol::ChannelName>>>,
}

struct Shared {
    format: WireFormat,
    limit: usize,
    state: Mutex<State>,
    /// The connection task, to wake when frames arrive or the status changes. One task
    /// waits, so a waker slot and a flag do what a `Notify` would, without its waiter list.
    waker: AtomicWaker,
    woken: AtomicBool,
    /// Replies that requests already handled still await (they come from the hub): the
    /// connection reads no further request until they are queued, so that replies, and what
    /// the requests do, follow the order of the requests.
    awaited: AtomicU32,
    /// [`State::leaves`] holds something: the connection looks there only then, so that its
    /// wake-ups take no lock for what almost never happens.
    leaving: AtomicBool,
}

/// A handle on the queue shared between the hub (producer) and the connection task (consumer).
/// Cloning it is cheap.
#[derive(Clone)]
pub(crate) struct Outbound(Arc<Shared>);

impl Outbound {
    pub(crate) fn new(format: WireFormat, limit: usize) -> Self {
        Self(Arc::new(Shared {
            format,
            limit,
            state: Mutex::new(State {
                frames: VecDeque::new(),
                bytes: 0,
                status: QueueStatus::Open,
                since: None,
                leaves: None,
            }),
            waker: AtomicWaker::new(),
            woken: AtomicBool::new(false),
            awaited: AtomicU32::new(0),
            leaving: AtomicBool::new(false),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame`, or evicts the connection when that would exceed the byte limit.
    pub(crate) fn push_frame(&self, frame: &Bytes) -> Push {
        let mut s = self.state();
        match s.status {
            QueueStatus::Open => {}
            QueueStatus::Evicted
            | QueueStatus::Closed
            | QueueStatus::Terminated
            | QueueStatus::Disconnected { .. } => return Push::Closed,
        }
        if s.bytes + frame.len() > self.0.limit {
            Self::evict_locked(s);
            self.wake();
            return Push::Evicted;
        }
        let was_empty = s.frames.is_empty();
        if was_empty {
            s.since = Some(Instant::now());
        }
        s.bytes += frame.len();
        s.frames.push_back(frame.clone());
        drop(s);
        if was_empty {
            self.wake();
        }
        Push::Queued
    }

    /// A reply will come through [`Outbound::push_reply`]: until it does, the connection reads
    /// no further request.
    pub(crate) fn await_reply(&self) {
        self.0.awaited.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a reply that [`Outbound::await_reply`] announced is still to come.
    pub(crate) fn awaiting_reply(&self) -> bool {
        self.0.awaited.load(Ordering::Acquire) > 0
    }

    /// Queues an announced reply (evicting on overflow, as [`Outbound::push_frame`]) and wakes
    /// the connection, which may read requests again.
    pub(crate) fn push_reply(&self, frame: &Bytes) -> Push {
        let pushed = self.push_frame(frame);
        // After the push: a connection that sees no reply awaited finds this one queued.
        self.0.awaited.fetch_sub(1, Ordering::AcqRel);
        self.wake();
        pushed
    }

    /// Marks the connection evicted as a slow consumer (its backlog dropped) and wakes it to
    /// close, as an overflow does.
    pub(crate) fn evict(&self) {
        let s = self.state();
        if s.status == QueueStatus::Open {
            Self::evict_locked(s);
            self.wake();
        }
    }

    fn evict_locked(mut s: MutexGuard<'_, State>) {
        s.status = QueueStatus::Evicted;
        s.frames = VecDeque::new();
        s.bytes = 0;
        s.since = None;
    }

    /// Moves every queued frame to the back of `into` and reports the queue's status.
    pub(crate) fn take(&self, into: &mut VecDeque<Bytes>) -> QueueStatus {
        self.take_since(into).0
    }

    /// [`Outbound::take`], also saying when the oldest frame taken was pushed.
    pub(crate) fn take_since(&self, into: &mut VecDeque<Bytes>) -> (QueueStatus, Option<Instant>) {
        let mut s = self.state();
        let since = s.since.take();
        if into.is_empty() {
            std::mem::swap(into, &mut s.frames);
        } else {
            into.append(&mut s.frames);
        }
        s.bytes = 0;
        (s.status, since)
    }

    /// Whether the connection must close now, even while it is still writing what it took
    /// before: its queue overflowed, or the application ended it.
    pub(crate) fn must_close(&self) -> bool {
        matches!(
            self.state().status,
            QueueStatus::Evicted | QueueStatus::Terminated | QueueStatus::Disconnected { .. }
        )
    }

    /// Ends the connection for the server API: it takes no more frames, and closes after
    /// those already queued with a code saying whether to `reconnect`.
    pub(crate) fn disconnect(&self, reconnect: bool) {
        let mut s = self.state();
        if s.status == QueueStatus::Open {
            s.status = QueueStatus::Disconnected { reconnect };
            drop(s);
            self.wake();
        }
    }

    /// Asks the connection to leave `channel` (the server API's unsubscribe), and wakes it.
    pub(crate) fn leave(&self, channel: herald_protocol::ChannelName) {
        let mut s = self.state();
        if s.status == QueueStatus::Open {
            s.leaves.get_or_insert_with(Box::default).push(channel);
            self.0.leaving.store(true, Ordering::Release);
            drop(s);
            self.wake();
        }
    }

    /// The channels [`Outbound::leave`] asked the connection to leave since the last call.
    pub(crate) fn take_leaves(&self) -> Option<Vec<herald_protocol::ChannelName>> {
        if !self.0.leaving.load(Ordering::Acquire) {
            return None;
        }
        let mut s = self.state();
        self.0.leaving.store(false, Ordering::Release);
        s.leaves.take().map(|b| *b)
    }

    /// Ends the connection for the application: it takes no more frames, and closes after
    /// those already queued.
    pub(crate) fn terminate(&self) {
        let mut s = self.state();
        if s.status == QueueStatus::Open {
            s.status = QueueStatus::Terminated;
            drop(s);
            self.wake();
        }
    }

    /// Stops taking frames; what is queued stays for [`Outbound::take`].
    pub(crate) fn close(&self) {
        let mut s = self.state();
        if s.status == QueueStatus::Open {
            s.status = QueueStatus::Closed;
        }
    }

    fn wake(&self) {
        self.0.woken.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// Resolves once frames were pushed, or the status changed, since the last wake-up.
    /// Cancel-safe: a wake-up that finds no waiter is kept for the next call. For the one
    /// connection task only: a second waiter would take the first one's place.
    pub(crate) async fn ready(&self) {
        std::future::poll_fn(|cx| {
            if self.0.woken.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.0.waker.register(cx.waker());
            if self.0.woken.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl Sink for Outbound {
    fn format(&self) -> WireFormat {
        self.0.format
    }

    fn push(&self, frame: &Bytes) -> Push {
        self.push_frame(frame)
    }

    fn terminate(&self) {
        Outbound::terminate(self);
    }
}

mod subscriber;

pub(crate) use subscriber::{Hold, Subscriber};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_evicts_and_drops_the_backlog() {
        let q = Outbound::new(WireFormat::Json, 10);
        let f = Bytes::from_static(b"12345");
        assert_eq!(q.push_frame(&f), Push::Queued);
        assert_eq!(q.push_frame(&f), Push::Queued);
        assert_eq!(q.push_frame(&f), Push::Evicted);
        assert_eq!(q.push_frame(&f), Push::Closed);
        let mut out = VecDeque::new();
        assert_eq!(q.take(&mut out), QueueStatus::Evicted);
        assert!(out.is_empty());
    }

    #[test]
    fn take_drains_and_frees_room() {
        let q = Outbound::new(WireFormat::Json, 10);
        let f = Bytes::from_static(b"12345");
        q.push_frame(&f);
        q.push_frame(&f);
        let mut out = VecDeque::new();
        assert_eq!(q.take(&mut out), QueueStatus::Open);
        assert_eq!(out.len(), 2);
        assert_eq!(q.push_frame(&f), Push::Queued);
        q.close();
        assert_eq!(q.push_frame(&f), Push::Closed);
        assert_eq!(q.take(&mut out), QueueStatus::Closed);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_terminated_queue_keeps_what_it_has_and_takes_no_more() {
        let q = Outbound::new(WireFormat::Pusher, 100);
        let f = Bytes::from_static(b"12345");
        q.push_frame(&f);
        q.terminate();
        assert!(q.must_close());
        assert_eq!(q.push_frame(&f), Push::Closed);
        let mut out = VecDeque::new();
        assert_eq!(q.take(&mut out), QueueStatus::Terminated);
        assert_eq!(out.len(), 1, "what was queued before still goes out");
    }

    #[test]
    fn an_announced_reply_holds_requests_until_it_is_queued() {
        let q = Outbound::new(WireFormat::Json, 100);
        assert!(!q.awaiting_reply());
        q.await_reply();
        q.await_reply();
        assert!(q.awaiting_reply());
        q.push_reply(&Bytes::from_static(b"first"));
        assert!(q.awaiting_reply(), "one of two still to come");
        q.push_reply(&Bytes::from_static(b"second"));
        assert!(!q.awaiting_reply());
        let mut out = VecDeque::new();
        q.take(&mut out);
        assert_eq!(out, [&b"first"[..], &b"second"[..]]);
    }
}

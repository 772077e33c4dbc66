//! A connection as the subscriber of one channel, as the hub pushes to it.
//!
//! A Pusher subscription of a presence or `cache-` channel is answered only after a read (the
//! member list, the last event), while the channel's frames may already be flowing. Pusher
//! clients must see `subscription_succeeded` first, so such a subscriber starts behind a
//! [`Hold`]: what the hub pushes meanwhile waits there, and follows the answer when the
//! subscription is released. A native subscription that recovers from a position waits the
//! same way while its history is read: the hold then keeps what recovery merged (history,
//! then the live frames it did not already hold, `herald_hub::recovery`).

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use bytes::Bytes;
use herald_hub::{Push, Sink};
use herald_protocol::WireFormat;

use crate::outbound::Outbound;

/// Frames a hold keeps before it evicts its connection as a slow consumer.
const HOLD_LIMIT: usize = 1024;

/// What the hub pushes a channel's frames into.
#[derive(Clone)]
pub(crate) enum Subscriber {
    /// Straight into the connection's queue.
    Direct(Outbound),
    /// Through a hold, released once the subscription's answer is out.
    Held(Arc<Hold>),
}

impl From<&Outbound> for Subscriber {
    fn from(sink: &Outbound) -> Self {
        Self::Direct(sink.clone())
    }
}

impl Sink for Subscriber {
    fn format(&self) -> WireFormat {
        match self {
            Self::Direct(sink) => sink.format(),
            Self::Held(hold) => hold.sink.format(),
        }
    }

    fn push(&self, frame: &Bytes) -> Push {
        self.push_at(frame, None)
    }

    fn push_at(&self, frame: &Bytes, offset: Option<u64>) -> Push {
        match self {
            Self::Direct(sink) => sink.push_frame(frame),
            Self::Held(hold) => hold.push(frame, offset),
        }
    }

    fn terminate(&self) {
        // Held frames would only precede the close: the connection ends either way.
        match self {
            Self::Direct(sink) => sink.terminate(),
            Self::Held(hold) => hold.sink.terminate(),
        }
    }
}

/// Frames held, with the offset of each publication's.
type Held = Vec<(Option<u64>, Bytes)>;

/// Frames of one subscription held back until its answer is sent.
pub(crate) struct Hold {
    sink: Outbound,
    /// `Some` until released.
    held: Mutex<Option<Held>>,
    /// After a recovery, the last offset it delivered: a publication at or below it that
    /// arrives late on the live path (the history read saw it first) is dropped. Cleared by
    /// the first one above it (0: none).
    floor: AtomicU64,
}

impl Hold {
    pub(crate) fn new(sink: &Outbound) -> Arc<Self> {
        Arc::new(Self {
            sink: sink.clone(),
            held: Mutex::new(Some(Vec::new())),
            floor: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, frame: &Bytes, offset: Option<u64>) -> Push {
        let floor = self.floor.load(Ordering::Relaxed);
        if floor > 0 {
            match offset {
                Some(offset) if offset <= floor => return Push::Queued,
                Some(_) => self.floor.store(0, Ordering::Relaxed),
                None => {}
            }
        }
        let mut held = self.lock();
        match held.as_mut() {
            None => self.sink.push_frame(frame),
            Some(frames) if frames.len() < HOLD_LIMIT => {
                frames.push((offset, frame.clone()));
                Push::Queued
            }
            Some(_) => {
                *held = None;
                self.sink.evict();
                Push::Evicted
            }
        }
    }

    /// Queues `answer`, then what was held, and lets every later frame straight through.
    pub(crate) fn release(&self, answer: &[Bytes]) {
        let mut held = self.lock();
        for frame in answer {
            self.sink.push_frame(frame);
        }
        for (_, frame) in held.take().unwrap_or_default() {
            self.sink.push_frame(&frame);
        }
    }

    /// Puts `history` (the publications after offset `since`, offsets ascending) before what
    /// is held, each publication once, and keeps holding until [`Hold::release`]. Returns
    /// whether a publication between `since` and the first one delivered is missing. A hold
    /// already released or overflowed keeps nothing.
    pub(crate) fn recover(&self, since: u64, history: Vec<(u64, Bytes)>) -> bool {
        let mut held = self.lock();
        let Some(live) = held.take() else {
            return false;
        };
        let merged = herald_hub::recovery::merge(since, history, live);
        let last = merged.last;
        self.floor.store(last, Ordering::Relaxed);
        // What arrives from now on follows `last`: it is held as it comes.
        let frames = merged.frames.into_iter().map(|f| (Some(last), f)).collect();
        *held = Some(frames);
        merged.gap
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::outbound::QueueStatus;

    fn taken(sink: &Outbound) -> (Vec<Bytes>, QueueStatus) {
        let mut out = VecDeque::new();
        let status = sink.take(&mut out);
        (out.into(), status)
    }

    #[test]
    fn held_frames_follow_the_answer_and_later_ones_go_straight_through() {
        let sink = Outbound::new(WireFormat::Pusher, 1 << 20);
        let hold = Hold::new(&sink);
        let subscriber = Subscriber::Held(hold.clone());
        let f = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(subscriber.push(&f("event 1")), Push::Queued);
        assert_eq!(subscriber.push(&f("event 2")), Push::Queued);
        assert_eq!(
            taken(&sink).0,
            Vec::<Bytes>::new(),
            "nothing before the answer"
        );
        hold.release(&[f("succeeded"), f("cached")]);
        assert_eq!(subscriber.push(&f("event 3")), Push::Queued);
        assert_eq!(
            taken(&sink),
            (
                vec![
                    f("succeeded"),
                    f("cached"),
                    f("event 1"),
                    f("event 2"),
                    f("event 3")
                ],
                QueueStatus::Open
            )
        );
    }

    #[test]
    fn a_recovering_hold_puts_history_first_and_each_publication_once() {
        let sink = Outbound::new(WireFormat::Json, 1 << 20);
        let hold = Hold::new(&sink);
        let subscriber = Subscriber::Held(hold.clone());
        let f = |s: &'static str| Bytes::from_static(s.as_bytes());
        // 6 and 7 arrive live while the history (5 to 6) is read.
        subscriber.push_at(&f("live 6"), Some(6));
        subscriber.push_at(&f("live 7"), Some(7));
        let gap = hold.recover(4, vec![(5, f("history 5")), (6, f("history 6"))]);
        assert!(!gap);
        // 7 again, late on the live path (the history read saw it first): dropped.
        subscriber.push_at(&f("late 7"), Some(7));
        subscriber.push_at(&f("live 8"), Some(8));
        assert_eq!(taken(&sink).0, Vec::<Bytes>::new(), "held until released");
        hold.release(&[]);
        subscriber.push_at(&f("live 9"), Some(9));
        assert_eq!(
            taken(&sink).0,
            [
                f("history 5"),
                f("history 6"),
                f("live 7"),
                f("live 8"),
                f("live 9")
            ]
        );
    }

    #[test]
    fn a_hold_that_overflows_evicts_its_connection() {
        let sink = Outbound::new(WireFormat::Pusher, 1 << 20);
        let hold = Hold::new(&sink);
        let subscriber = Subscriber::Held(hold.clone());
        let frame = Bytes::from_static(b"event");
        for _ in 0..HOLD_LIMIT {
            assert_eq!(subscriber.push(&frame), Push::Queued);
        }
        assert_eq!(subscriber.push(&frame), Push::Evicted);
        assert_eq!(subscriber.push(&frame), Push::Closed);
        hold.release(&[Bytes::from_static(b"succeeded")]);
        assert_eq!(taken(&sink), (Vec::new(), QueueStatus::Evicted));
    }
}

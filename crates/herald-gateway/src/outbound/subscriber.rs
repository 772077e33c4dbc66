//! A connection as the subscriber of one channel, as the hub pushes to it.
//!
//! A Pusher subscription of a presence or `cache-` channel is answered only after a read (the
//! member list, the last event), while the channel's frames may already be flowing. Pusher
//! clients must see `subscription_succeeded` first, so such a subscriber starts behind a
//! [`Hold`]: what the hub pushes meanwhile waits there, and follows the answer when the
//! subscription is released.

use std::sync::{Arc, Mutex};

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
        match self {
            Self::Direct(sink) => sink.push_frame(frame),
            Self::Held(hold) => hold.push(frame),
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

/// Frames of one subscription held back until its answer is sent.
pub(crate) struct Hold {
    sink: Outbound,
    /// `Some` until released.
    held: Mutex<Option<Vec<Bytes>>>,
}

impl Hold {
    pub(crate) fn new(sink: &Outbound) -> Arc<Self> {
        Arc::new(Self {
            sink: sink.clone(),
            held: Mutex::new(Some(Vec::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Bytes>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, frame: &Bytes) -> Push {
        let mut held = self.lock();
        match held.as_mut() {
            None => self.sink.push_frame(frame),
            Some(frames) if frames.len() < HOLD_LIMIT => {
                frames.push(frame.clone());
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
        for frame in held.take().unwrap_or_default() {
            self.sink.push_frame(&frame);
        }
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

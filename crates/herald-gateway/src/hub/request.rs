//! A subscribe request in flight: its channels settle in their shards, possibly at different
//! times; the answer goes out when the last one has. How it is answered is the protocol's
//! ([`Answer`]): the hub only collects the outcomes.

use std::sync::{Arc, Mutex};

use herald_broker::SharedBroker;
use herald_protocol::{server::ChannelFailure, ChannelName};

use crate::{
    outbound::{Hold, Outbound, Subscriber},
    presence::{Membership, Presence},
};

struct Progress {
    remaining: usize,
    subscribed: Vec<String>,
    failed: Vec<ChannelFailure>,
}

/// What an answer may read before it goes out (a Pusher presence channel's members, a cache
/// channel's last event).
#[derive(Clone)]
pub(crate) struct Reads {
    pub(crate) presence: Arc<Presence>,
    pub(crate) broker: SharedBroker,
    /// History reads shared between the clients recovering a channel at once.
    pub(crate) history: Arc<super::history_reads::HistoryReads>,
}

/// The outcome of a subscribe request, once every channel has settled.
pub(crate) struct Settled<'a> {
    /// The connection's queue.
    pub(crate) sink: &'a Outbound,
    /// The channels it now receives (or received until it left them again).
    pub(crate) subscribed: &'a [String],
    pub(crate) failed: &'a [ChannelFailure],
    pub(crate) membership: Option<&'a Membership>,
    /// Where the channels' frames wait, when the request was made with one: released by the
    /// answer.
    pub(crate) hold: Option<&'a Arc<Hold>>,
    /// The holds of the channels that recover from a position, each released by the answer.
    pub(crate) recovering: &'a [(ChannelName, Arc<Hold>)],
    pub(crate) reads: &'a Reads,
}

/// How a protocol answers a subscribe request.
pub(crate) trait Answer: Send + Sync {
    /// Called once, when the last channel settles (at once when none was pending).
    fn answer(&self, settled: Settled<'_>);
}

/// Collects the outcome of each channel of one subscribe request.
pub(crate) struct SubscribeRequest {
    sink: Outbound,
    progress: Mutex<Progress>,
    membership: Option<Membership>,
    /// Where the channels' frames wait until an answer that needs a read is out.
    hold: Option<Arc<Hold>>,
    /// A hold of its own for each channel that recovers from a position.
    recovering: Vec<(ChannelName, Arc<Hold>)>,
    answer: Box<dyn Answer>,
}

impl SubscribeRequest {
    /// A request waiting for `pending` channels; `failed` already holds those refused before
    /// reaching the hub; `pending` is at least 1 (a request with nothing for the hub is
    /// answered by its protocol at once). With `held`, the channels' frames wait in a hold
    /// until the answer releases it.
    pub(crate) fn new(
        sink: Outbound,
        pending: usize,
        failed: Vec<ChannelFailure>,
        membership: Option<Membership>,
        held: bool,
        answer: Box<dyn Answer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hold: held.then(|| Hold::new(&sink)),
            recovering: Vec::new(),
            sink,
            membership,
            answer,
            progress: Mutex::new(Progress {
                remaining: pending,
                subscribed: Vec::with_capacity(pending),
                failed,
            }),
        })
    }

    /// Gives each of `channels` a hold of its own, until the answer has read what it
    /// missed. Call before the request reaches the hub.
    pub(crate) fn recovering(mut self: Arc<Self>, channels: Vec<ChannelName>) -> Arc<Self> {
        if let Some(this) = Arc::get_mut(&mut self) {
            this.recovering = channels
                .into_iter()
                .map(|c| (c, Hold::new(&this.sink)))
                .collect();
        }
        self
    }

    /// What the hub pushes `channel`'s frames into.
    pub(crate) fn subscriber(&self, channel: &ChannelName) -> Subscriber {
        let own = self.recovering.iter().find(|(c, _)| c == channel);
        match (own, &self.hold) {
            (Some((_, hold)), _) | (None, Some(hold)) => Subscriber::Held(hold.clone()),
            (None, None) => (&self.sink).into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the outcome for `channel`: `Ok(true)` when the connection now receives it (and
    /// enters its presence, if the request makes it a member), `Ok(false)` when it
    /// unsubscribed before the subscription settled (the request succeeded and was undone: no
    /// presence membership). The last one sends the answer.
    pub(crate) fn settle(
        &self,
        channel: &ChannelName,
        outcome: Result<bool, ChannelFailure>,
        reads: &Reads,
    ) {
        let mut p = self.lock();
        match outcome {
            Ok(receiving) => {
                p.subscribed.push(channel.to_string());
                if let Some(m) = self
                    .membership
                    .as_ref()
                    .filter(|m| receiving && m.channels.contains(channel))
                {
                    reads.presence.enter(m.conn, &m.identity, channel.clone());
                }
            }
            Err(failure) => p.failed.push(failure),
        }
        p.remaining = p.remaining.saturating_sub(1);
        if p.remaining == 0 {
            self.answer(&p, reads);
        }
    }

    fn answer(&self, p: &Progress, reads: &Reads) {
        self.answer.answer(Settled {
            sink: &self.sink,
            subscribed: &p.subscribed,
            failed: &p.failed,
            membership: self.membership.as_ref(),
            hold: self.hold.as_ref(),
            recovering: &self.recovering,
            reads,
        });
    }
}

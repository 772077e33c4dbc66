//! Repair without the client: when the broker gives a channel back after losing it (its
//! subscription dropped, Redis restarted, a slot moved), the shard reads from the channel's
//! history what its local subscribers missed, from the last position it delivered, and
//! delivers it before anything newer, in every wire format. Publications arriving meanwhile
//! wait; the two are merged by offset (`herald_hub::recovery::merge`). Only what the history
//! cannot cover still gets a gap notice.

use std::collections::HashMap;

use herald_broker::{BrokerError, History, HistoryKeep, HistoryQuery, Publication};
use herald_hub::{recovery::merge, Action};
use herald_protocol::{ChannelName, Epoch, Position};

use super::{ShardCommand, ShardTask, SubscribeRequest};

/// Publications a channel under repair keeps waiting, at most; past it the repair gives up
/// (a gap notice, then what waited).
const WAITING_LIMIT: usize = 10_000;

/// What a shard knows for repairs.
#[derive(Default)]
pub(super) struct Repairs {
    /// The last position delivered, per channel whose namespace keeps history.
    positions: HashMap<ChannelName, Position>,
    /// After a repair, the last offset it delivered per channel: the same publications
    /// arriving late on the live path are dropped, until the first one above it.
    floors: HashMap<ChannelName, u64>,
    /// Channels being repaired, with the publications that arrived meanwhile (boxed as they
    /// came: waiting moves a pointer, not a publication).
    #[allow(clippy::vec_box)]
    repairing: HashMap<ChannelName, Vec<Box<Publication>>>,
}

/// How often a repair's read is tried again while the broker cannot take it, and how long
/// apart (the broker's reconnect backoff reaches 1 s).
const READ_ATTEMPTS: usize = 30;
const READ_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// A history read for a repair, back at the shard.
pub(crate) struct Repaired {
    pub(crate) channel: ChannelName,
    pub(crate) since: Position,
    pub(crate) read: Result<History, BrokerError>,
    pub(crate) reason: &'static str,
}

type Actions = Vec<Action<std::sync::Arc<SubscribeRequest>>>;

impl ShardTask {
    /// Holds `p` back while its channel is repaired; gives it back otherwise.
    pub(super) fn hold_for_repair(&mut self, p: Box<Publication>) -> Option<Box<Publication>> {
        let Some(waiting) = self.repairs.repairing.get_mut(&p.channel) else {
            return Some(p);
        };
        if waiting.len() < WAITING_LIMIT {
            waiting.push(p);
            return None;
        }
        // Too much waits: give up on this repair; the read's answer will find nothing.
        let channel = p.channel.clone();
        let waited = self.repairs.repairing.remove(&channel).unwrap_or_default();
        self.pending_gap(&channel, "repair fell too far behind", waited, None);
        Some(p)
    }

    /// Whether `p` was delivered already: a repair read it from history before it arrived on
    /// the live path. Only right after a repair: an offset at or below one delivered
    /// otherwise is a sequence that went back (a failover that lost writes), whose new
    /// publications must not be taken for old ones.
    pub(super) fn delivered_already(&mut self, p: &Publication) -> bool {
        let Some(floor) = self.repairs.floors.get(&p.channel).copied() else {
            return false;
        };
        match p.offset {
            Some(offset) if offset <= floor => true,
            Some(_) => {
                self.repairs.floors.remove(&p.channel);
                false
            }
            None => false,
        }
    }

    /// Whether `p` shows its channel's sequence gone back within an epoch: an offset at or
    /// below one delivered before (outside a repair's late copies) is a sequence that lost
    /// publications (a failover that lost acknowledged writes). The broker is asked for a new
    /// epoch, so that no client recovers over publications that differ from what it saw.
    pub(super) fn went_back(&self, p: &Publication) -> bool {
        let Some(position) = self.repairs.positions.get(&p.channel) else {
            return false;
        };
        let back = p.offset.is_some_and(|o| o <= position.offset)
            && p.epoch.as_ref() == Some(&position.epoch);
        if back {
            self.renew_epoch(&p.channel, &position.epoch);
        }
        back
    }

    /// Asks the broker for a new epoch of `channel` if it still counts in `epoch`.
    fn renew_epoch(&self, channel: &ChannelName, epoch: &Epoch) {
        let asked = self.reads.broker.new_epoch(channel, epoch);
        let channel = channel.clone();
        tokio::spawn(async move {
            if let Err(e) = asked.await {
                tracing::warn!(%channel, error = %e, "could not start a new epoch");
            }
        });
    }

    /// Remembers what was just delivered on `p`'s channel, when its history is kept.
    pub(super) fn note_delivered(&mut self, p: &Publication) {
        let (Some(offset), Some(epoch)) = (p.offset, p.epoch.as_ref()) else {
            return;
        };
        if let Some(position) = self.repairs.positions.get_mut(&p.channel) {
            position.offset = offset;
            if position.epoch != *epoch {
                position.epoch = epoch.clone();
            }
            return;
        }
        if (self.history_of)(&p.channel).is_on() {
            let position = Position {
                offset,
                epoch: epoch.clone(),
            };
            self.repairs.positions.insert(p.channel.clone(), position);
        }
    }

    /// The channel left the node: nothing to repair any more.
    pub(super) fn forget(&mut self, channel: &ChannelName) {
        self.repairs.positions.remove(channel);
        self.repairs.floors.remove(channel);
        self.repairs.repairing.remove(channel);
    }

    /// The broker gave `channel` back after losing it. Starts a repair from the last position
    /// delivered when the history may cover it (true); false: the caller tells the gap.
    pub(super) fn start_repair(&mut self, channel: &ChannelName, reason: &'static str) -> bool {
        if self.repairs.repairing.contains_key(channel) {
            // A repair is under way: its read follows this loss too.
            return true;
        }
        let Some(since) = self.repairs.positions.get(channel).cloned() else {
            return false;
        };
        let keep: HistoryKeep = (self.history_of)(channel);
        if !keep.is_on() {
            return false;
        }
        self.repairs.repairing.insert(channel.clone(), Vec::new());
        let query = HistoryQuery {
            since: Some(since.offset),
            limit: usize::try_from(keep.size).unwrap_or(usize::MAX),
            reverse: false,
            max_age: keep.ttl,
            window: keep.size,
        };
        let broker = self.reads.broker.clone();
        let (me, channel) = (self.me.clone(), channel.clone());
        self.metrics.repairs.inc();
        tokio::spawn(async move {
            // The broker may give the channel back before it takes requests again (its
            // subscriber connection came back first): a read it cannot take yet is tried
            // again, for a while.
            let mut read = broker.history(&channel, query).await;
            for _ in 0..READ_ATTEMPTS {
                if !matches!(read, Err(BrokerError::Unavailable(_))) {
                    break;
                }
                tokio::time::sleep(READ_RETRY).await;
                read = broker.history(&channel, query).await;
            }
            if let Some(me) = me.upgrade() {
                let repaired = Repaired {
                    channel,
                    since,
                    read,
                    reason,
                };
                let _ = me.send(ShardCommand::Repaired(Box::new(repaired))).await;
            }
        });
        true
    }

    /// Delivers what the repair read and what waited meanwhile, each publication once and in
    /// offset order; a gap notice first when the history did not cover all that was missed.
    pub(super) fn repaired(&mut self, r: Repaired) -> Actions {
        let Some(waited) = self.repairs.repairing.remove(&r.channel) else {
            // Given up, or the channel left the node meanwhile.
            return Vec::new();
        };
        let history = match r.read {
            Ok(h) if h.epoch.as_ref() == Some(&r.since.epoch) && h.offset >= r.since.offset => {
                h.publications
            }
            Ok(h) if h.epoch.as_ref() == Some(&r.since.epoch) => {
                // The sequence is behind what was delivered, in the same epoch: a failover
                // lost publications, and the offsets after it would name other ones.
                self.renew_epoch(&r.channel, &r.since.epoch);
                return self.pending_gap(&r.channel, r.reason, waited, None);
            }
            Ok(h) => return self.pending_gap(&r.channel, r.reason, waited, h.epoch.as_ref()),
            Err(e) => {
                tracing::debug!(channel = %r.channel, error = %e, "repair read failed");
                return self.pending_gap(&r.channel, r.reason, waited, None);
            }
        };
        let history = history
            .into_iter()
            .filter_map(|p| Some((p.offset?, Box::new(p))))
            .collect();
        let live = waited.into_iter().map(|p| (p.offset, p)).collect();
        let merged = merge(r.since.offset, history, live);
        let mut actions = Vec::new();
        if merged.gap {
            let epoch = Some(&r.since.epoch);
            actions.extend(self.gap_of(&r.channel, r.reason, merged.hole, epoch));
        } else {
            self.metrics.repaired.inc();
        }
        let last = merged.last;
        for p in merged.frames {
            actions.extend(self.deliver(p));
        }
        // Set once they are delivered: the same ones may still come on the live path.
        if last > r.since.offset {
            self.repairs.floors.insert(r.channel, last);
        }
        actions
    }

    /// A gap notice for `channel`, then the publications that waited.
    #[allow(clippy::vec_box)]
    fn pending_gap(
        &mut self,
        channel: &ChannelName,
        reason: &str,
        waited: Vec<Box<Publication>>,
        epoch: Option<&Epoch>,
    ) -> Actions {
        let mut actions = self.gap_of(channel, reason, None, epoch);
        for p in waited {
            actions.extend(self.deliver(p));
        }
        actions
    }
}

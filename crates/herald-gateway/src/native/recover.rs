//! Recovery on subscribe: a channel subscribed with the last position the client saw gets
//! what it missed from the channel's history, before anything newer, each publication once.
//!
//! The channel's frames wait in a hold of their own from the subscription on. Once every
//! channel of the request has settled, one task reads each recovering channel's history from
//! its position (all of the request's reads at once), merges it with what the hold took
//! meanwhile (`Hold::recover`), queues the reply (which says, per channel, whether it recovered
//! and where the channel stands), and then releases the holds.

use std::sync::Arc;

use bytes::Bytes;
use herald_broker::{History, HistoryQuery};
use herald_protocol::{
    server::{self, ChannelFailure, ChannelPosition, Recovered, ReplyOk},
    ChannelName, Position, WireFormat,
};

use super::history;
use crate::{
    hub::{Answer, HistoryReads, Settled},
    outbound::{Hold, Outbound},
};

/// A channel to recover: from where, and how its history is read.
#[derive(Clone)]
pub(super) struct Recovering {
    pub(super) channel: ChannelName,
    pub(super) since: Position,
    pub(super) query: HistoryQuery,
}

/// Answers a subscribe request once its channels settled: one reply with every outcome, after
/// the recovery of those that asked for it.
pub(super) struct Reply {
    pub(super) id: u64,
    pub(super) format: WireFormat,
    pub(super) recover: Vec<Recovering>,
    /// Channels whose position the reply gives, each with the read that finds it.
    pub(super) position: Vec<(ChannelName, HistoryQuery)>,
    /// Channels that asked to recover where nothing can be (history off): their outcome.
    pub(super) refused: Vec<Recovered>,
}

impl Answer for Reply {
    fn answer(&self, settled: Settled<'_>) {
        if self.recover.is_empty() && self.position.is_empty() {
            let frame = reply(
                self.format,
                self.id,
                settled.subscribed,
                settled.failed,
                &self.refused,
                &[],
            );
            // The connection reads no further request until this reply is queued.
            settled.sink.push_reply(&frame);
            return;
        }
        // Channels the request subscribed, with their holds; the others' holds take nothing.
        let hold_of = |channel: &ChannelName| {
            let subscribed = settled.subscribed.iter().any(|s| s == channel.as_str());
            let hold = settled.recovering.iter().find(|(c, _)| c == channel);
            hold.filter(|_| subscribed).map(|(_, h)| h.clone())
        };
        let work: Vec<(Recovering, Arc<Hold>)> = self
            .recover
            .iter()
            .filter_map(|r| Some((r.clone(), hold_of(&r.channel)?)))
            .collect();
        let position: Vec<(ChannelName, HistoryQuery, Arc<Hold>)> = self
            .position
            .iter()
            .filter_map(|(c, q)| Some((c.clone(), *q, hold_of(c)?)))
            .collect();
        let task = Task {
            id: self.id,
            format: self.format,
            sink: settled.sink.clone(),
            subscribed: settled.subscribed.to_vec(),
            failed: settled.failed.to_vec(),
            outcomes: self.refused.clone(),
            reads: settled.reads.history.clone(),
            idle: settled
                .recovering
                .iter()
                .filter(|(c, _)| !work.iter().any(|(r, _)| r.channel == *c))
                .filter(|(c, _)| !position.iter().any(|(p, _, _)| p == c))
                .map(|(_, h)| h.clone())
                .collect(),
        };
        tokio::spawn(task.run(work, position));
    }
}

/// The recovery of one request, run once its channels settled.
struct Task {
    id: u64,
    format: WireFormat,
    sink: Outbound,
    subscribed: Vec<String>,
    failed: Vec<ChannelFailure>,
    outcomes: Vec<Recovered>,
    reads: Arc<HistoryReads>,
    /// Holds of channels that did not subscribe: released empty.
    idle: Vec<Arc<Hold>>,
}

impl Task {
    async fn run(
        mut self,
        work: Vec<(Recovering, Arc<Hold>)>,
        position: Vec<(ChannelName, HistoryQuery, Arc<Hold>)>,
    ) {
        // Every channel's read at once: a request of many channels waits for the slowest
        // read, not for the sum of them.
        let start = |channel: &ChannelName, query: HistoryQuery| {
            let (reads, channel) = (self.reads.clone(), channel.clone());
            tokio::spawn(async move { reads.read(&channel, query).await })
        };
        let recovered: Vec<_> = work
            .iter()
            .map(|(r, _)| start(&r.channel, r.query))
            .collect();
        let positioned: Vec<_> = position.iter().map(|(c, q, _)| start(c, *q)).collect();
        let mut holds = Vec::with_capacity(work.len() + position.len());
        for ((r, hold), read) in work.into_iter().zip(recovered) {
            let read = read
                .await
                .unwrap_or(Err(herald_broker::BrokerError::Closed));
            self.outcomes.push(outcome(&r, read, &hold, self.format));
            holds.push(hold);
        }
        let mut positions = Vec::with_capacity(position.len());
        for ((channel, _, hold), read) in position.into_iter().zip(positioned) {
            // A channel whose position cannot be read is subscribed all the same, without one.
            if let Ok(Ok(read)) = read.await {
                // What the hold took at or below the position is in it: the pushes after the
                // reply continue from there.
                hold.recover(read.offset, Vec::new());
                positions.push(ChannelPosition {
                    channel: channel.to_string(),
                    offset: read.offset,
                    epoch: read.epoch.as_ref().map(ToString::to_string),
                });
            }
            holds.push(hold);
        }
        let frame = reply(
            self.format,
            self.id,
            &self.subscribed,
            &self.failed,
            &self.outcomes,
            &positions,
        );
        self.sink.push_reply(&frame);
        for hold in holds.iter().chain(&self.idle) {
            hold.release(&[]);
        }
    }
}

/// Reads what `r` missed into its hold; the outcome says whether it recovered.
fn outcome(
    r: &Recovering,
    read: Result<History, herald_broker::BrokerError>,
    hold: &Hold,
    format: WireFormat,
) -> Recovered {
    let channel = r.channel.to_string();
    let history = match read {
        Ok(history) => history,
        Err(e) => {
            return Recovered {
                channel,
                recovered: false,
                reason: Some(format!("history unavailable: {e}")),
                offset: 0,
                epoch: None,
            }
        }
    };
    let (offset, epoch) = (
        history.offset,
        history.epoch.as_ref().map(|e| e.to_string()),
    );
    if let Err(refusal) = history::check_continues(Some(&r.since), &history, &r.query) {
        return Recovered {
            channel,
            recovered: false,
            reason: Some(refusal.reason.into_owned()),
            offset,
            epoch,
        };
    }
    let frames: Vec<(u64, Bytes)> = history
        .publications
        .iter()
        .filter_map(|p| {
            let frame =
                server::push(format, &p.channel, &p.data, p.offset, p.event.as_ref()).ok()?;
            Some((p.offset?, frame))
        })
        .collect();
    let gap = hold.recover(r.since.offset, frames);
    Recovered {
        channel,
        recovered: !gap,
        reason: gap.then(|| "publications after this position are no longer kept".to_owned()),
        offset,
        epoch,
    }
}

/// The reply frame of a subscribe request.
fn reply(
    format: WireFormat,
    id: u64,
    subscribed: &[String],
    failed: &[ChannelFailure],
    recovery: &[Recovered],
    positions: &[ChannelPosition],
) -> Bytes {
    let ok = ReplyOk::Subscribe {
        subscribed,
        failed,
        recovery,
        positions,
    };
    server::reply_ok(format, id, &ok)
}

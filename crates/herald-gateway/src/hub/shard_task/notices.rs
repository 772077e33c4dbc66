//! What a shard tells subscribers besides publications: presence joins and leaves, and gap
//! notices, in each protocol's terms.

use std::sync::Arc;

use bytes::Bytes;
use herald_hub::Action;
use herald_protocol::{presence::PresenceNotice, ChannelName, ConnId, Epoch, WireFormat};
use herald_runtime::metrics::Counter;

use super::{ShardTask, SubscribeRequest};
use crate::metrics::Metrics;

impl ShardTask {
    /// A member joined or left: every subscriber hears of it in its protocol's terms, except
    /// (in a protocol that does not tell them, as Pusher's) the member's own connections.
    pub(super) fn member(
        &mut self,
        channel: &ChannelName,
        notice: &PresenceNotice,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        let framings = self.framings.clone();
        let mut actions = self.notify(
            channel,
            &[],
            |format| {
                let framing = &framings[format];
                framing
                    .tells_own_joins()
                    .then(|| framing.presence(channel, notice))
                    .flatten()
            },
            |m| &m.presence_notices,
        );
        let own = match notice.change {
            herald_protocol::presence::Change::Join => {
                self.reads.presence.conns_of(channel, &notice.member.user)
            }
            herald_protocol::presence::Change::Leave => Vec::new(),
        };
        actions.extend(self.notify(
            channel,
            &own,
            |format| {
                let framing = &framings[format];
                (!framing.tells_own_joins())
                    .then(|| framing.presence(channel, notice))
                    .flatten()
            },
            |m| &m.presence_notices,
        ));
        actions
    }

    pub(super) fn gap(
        &mut self,
        channel: &ChannelName,
        reason: &str,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        self.gap_of(channel, reason, None, None)
    }

    /// A gap notice naming the offsets missing, `from` to `to`, and the epoch the channel
    /// counts in, when known.
    pub(super) fn gap_of(
        &mut self,
        channel: &ChannelName,
        reason: &str,
        missing: Option<(u64, u64)>,
        epoch: Option<&Epoch>,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        let framings = self.framings.clone();
        let encode = |format| framings[format].gap(channel, reason, missing, epoch);
        self.notify(channel, &[], encode, |m| &m.gap_notices)
    }

    /// Sends a notice (a gap, a join, a leave) to every subscriber of `channel` but those in
    /// `except`, counting the deliveries in `counter`.
    fn notify(
        &mut self,
        channel: &ChannelName,
        except: &[ConnId],
        encode: impl FnMut(WireFormat) -> Option<Bytes>,
        counter: impl Fn(&Metrics) -> &Counter,
    ) -> Vec<Action<Arc<SubscribeRequest>>> {
        let fanout = self.hub.publish_except(channel, except, encode);
        counter(&self.metrics).add(fanout.delivered as u64);
        self.metrics
            .slow_consumer_evictions
            .add(fanout.evicted.len() as u64);
        fanout.actions
    }
}

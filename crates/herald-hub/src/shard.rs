//! One shard of the hub: the channels that hash to it and their local subscribers.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use herald_protocol::{ChannelName, ConnId, WireFormat};
use indexmap::IndexMap;

use crate::{Push, Sink};

/// What the runtime must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<W> {
    /// Subscribe the node to `channel` in the broker, then call
    /// [`HubShard::broker_subscribed`] with the outcome.
    BrokerSubscribe(ChannelName),
    /// Unsubscribe the node from `channel` in the broker.
    BrokerUnsubscribe(ChannelName),
    /// A subscribe request for `channel` is settled.
    Settled {
        /// The waiter given to [`HubShard::subscribe`].
        waiter: W,
        /// The channel.
        channel: ChannelName,
        /// How it ended.
        outcome: Settlement,
    },
}

/// How a subscribe request for one channel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The connection now receives the channel's publications.
    Subscribed,
    /// The broker refused the channel.
    Refused,
    /// The connection unsubscribed before the broker answered: the request succeeded, and was
    /// undone at once.
    Withdrawn,
}

/// The outcome of one publication.
#[derive(Debug, PartialEq, Eq)]
pub struct Fanout<W> {
    /// Subscribers the frame was queued for.
    pub delivered: usize,
    /// Connections evicted as slow consumers by this publication.
    pub evicted: Vec<ConnId>,
    /// Follow-up actions (a broker unsubscribe when evictions emptied the channel).
    pub actions: Vec<Action<W>>,
}

struct Waiting<S, W> {
    conn: ConnId,
    sink: S,
    waiter: W,
}

struct Channel<S, W> {
    subscribers: IndexMap<ConnId, S>,
    /// `Some` while the broker subscription is in flight: requests wait here until it settles.
    pending: Option<Vec<Waiting<S, W>>>,
}

impl<S, W> Channel<S, W> {
    fn is_unused(&self) -> bool {
        self.subscribers.is_empty() && self.pending.as_ref().is_none_or(Vec::is_empty)
    }
}

/// The subscriptions of the channels of one shard. `S` is a connection's sink, `W` whatever
/// the runtime needs to answer a subscribe request once it settles.
pub struct HubShard<S, W> {
    channels: HashMap<ChannelName, Channel<S, W>>,
    conns: HashMap<ConnId, Vec<ChannelName>>,
    /// Live subscriptions (connection, channel) receiving publications, across channels.
    subscriptions: usize,
    /// With [`HubShard::count_subscriptions`]: channels whose subscriber count changed since
    /// the last [`HubShard::take_counts`].
    changed: Option<HashSet<ChannelName>>,
}

impl<S: Sink, W> Default for HubShard<S, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Sink, W> HubShard<S, W> {
    /// An empty shard.
    pub fn new() -> Self {
        Self {
            channels: HashMap::new(),
            conns: HashMap::new(),
            subscriptions: 0,
            changed: None,
        }
    }

    /// Keeps track of the channels whose subscriber count changes, for [`Self::take_counts`].
    pub fn count_subscriptions(&mut self) {
        self.changed.get_or_insert_with(HashSet::new);
    }

    /// The channels whose subscriber count changed since the last call, with their count now
    /// (0 for a channel no longer held). Empty unless [`Self::count_subscriptions`] was called.
    pub fn take_counts(&mut self) -> Vec<(ChannelName, usize)> {
        let Some(changed) = self.changed.as_mut() else {
            return Vec::new();
        };
        let changed = std::mem::take(changed);
        changed
            .into_iter()
            .map(|channel| {
                let n = self.subscriber_count(channel.as_str());
                (channel, n)
            })
            .collect()
    }

    fn mark(changed: &mut Option<HashSet<ChannelName>>, channel: &ChannelName) {
        if let Some(changed) = changed {
            if !changed.contains(channel) {
                changed.insert(channel.clone());
            }
        }
    }

    /// Subscriptions that receive publications now (a connection on 3 channels counts 3;
    /// requests still waiting for the broker do not count).
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// Channels with local subscribers or a broker subscription in flight.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The channels this shard holds.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelName> {
        self.channels.keys()
    }

    /// Local subscribers of `channel`.
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.channels
            .get(channel)
            .map_or(0, |c| c.subscribers.len())
    }

    /// Subscribes `conn` to `channel`. The request settles at once when the node already holds
    /// the channel in the broker; otherwise it waits for the broker, and the first request of a
    /// channel returns [`Action::BrokerSubscribe`].
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        sink: S,
        channel: ChannelName,
        waiter: W,
    ) -> Option<Action<W>> {
        match self.channels.get_mut(&channel) {
            Some(Channel {
                pending: Some(waiting),
                ..
            }) => {
                waiting.push(Waiting { conn, sink, waiter });
                remember(&mut self.conns, conn, channel);
                None
            }
            Some(ch) => {
                if ch.subscribers.insert(conn, sink).is_none() {
                    self.subscriptions += 1;
                    self.conns.entry(conn).or_default().push(channel.clone());
                    Self::mark(&mut self.changed, &channel);
                }
                Some(Action::Settled {
                    waiter,
                    channel,
                    outcome: Settlement::Subscribed,
                })
            }
            None => {
                self.channels.insert(
                    channel.clone(),
                    Channel {
                        subscribers: IndexMap::new(),
                        pending: Some(vec![Waiting { conn, sink, waiter }]),
                    },
                );
                self.conns.entry(conn).or_default().push(channel.clone());
                Some(Action::BrokerSubscribe(channel))
            }
        }
    }

    /// The broker's answer to [`Action::BrokerSubscribe`]. Settles every waiting request; when
    /// everyone left meanwhile, the channel is given back to the broker at once.
    pub fn broker_subscribed(&mut self, channel: &ChannelName, ok: bool) -> Vec<Action<W>> {
        let mut actions = Vec::new();
        let Some(ch) = self.channels.get_mut(channel) else {
            return actions;
        };
        let Some(waiting) = ch.pending.take() else {
            return actions;
        };
        for w in waiting {
            if ok {
                if ch.subscribers.insert(w.conn, w.sink).is_none() {
                    self.subscriptions += 1;
                    Self::mark(&mut self.changed, channel);
                }
            } else {
                forget(&mut self.conns, w.conn, channel);
            }
            actions.push(Action::Settled {
                waiter: w.waiter,
                channel: channel.clone(),
                outcome: if ok {
                    Settlement::Subscribed
                } else {
                    Settlement::Refused
                },
            });
        }
        if ch.is_unused() {
            self.channels.remove(channel);
            if ok {
                actions.push(Action::BrokerUnsubscribe(channel.clone()));
            }
        }
        actions
    }

    /// Unsubscribes `conn` from `channel`. A request of `conn` still waiting for the broker is
    /// settled as subscribed (the unsubscribe that follows it then takes effect).
    pub fn unsubscribe(&mut self, conn: ConnId, channel: &ChannelName) -> Vec<Action<W>> {
        let mut actions = Vec::new();
        if !forget(&mut self.conns, conn, channel) {
            return actions;
        }
        let Some(ch) = self.channels.get_mut(channel) else {
            return actions;
        };
        if ch.subscribers.swap_remove(&conn).is_some() {
            self.subscriptions -= 1;
            Self::mark(&mut self.changed, channel);
        }
        if let Some(waiting) = ch.pending.as_mut() {
            let (gone, kept): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|w| w.conn == conn);
            *waiting = kept;
            actions.extend(gone.into_iter().map(|w| Action::Settled {
                waiter: w.waiter,
                channel: channel.clone(),
                outcome: Settlement::Withdrawn,
            }));
        } else if ch.is_unused() {
            self.channels.remove(channel);
            actions.push(Action::BrokerUnsubscribe(channel.clone()));
        }
        actions
    }

    /// Forgets every subscription of `conn` in this shard. Its waiting requests are dropped
    /// unanswered: there is no one left to answer.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<Action<W>> {
        let mut actions = Vec::new();
        let Some(channels) = self.conns.remove(&conn) else {
            return actions;
        };
        for channel in channels {
            let Some(ch) = self.channels.get_mut(&channel) else {
                continue;
            };
            if ch.subscribers.swap_remove(&conn).is_some() {
                self.subscriptions -= 1;
                Self::mark(&mut self.changed, &channel);
            }
            if let Some(waiting) = ch.pending.as_mut() {
                waiting.retain(|w| w.conn != conn);
            } else if ch.is_unused() {
                self.channels.remove(&channel);
                actions.push(Action::BrokerUnsubscribe(channel));
            }
        }
        actions
    }

    /// Pushes a publication to every local subscriber of `channel`. `encode` is called at most
    /// once per wire format present among them, and the same bytes go to everyone of that format.
    /// Subscribers whose sink is full are evicted from this shard; the runtime closes them.
    pub fn publish<E>(&mut self, channel: &ChannelName, encode: E) -> Fanout<W>
    where
        E: FnMut(WireFormat) -> Option<Bytes>,
    {
        self.publish_except(channel, &[], encode)
    }

    /// Ends every local subscriber of `channel` that speaks `format` ([`Sink::terminate`]);
    /// returns how many. They stay subscribed until their connections disconnect.
    pub fn terminate(&self, channel: &ChannelName, format: WireFormat) -> usize {
        let Some(ch) = self.channels.get(channel) else {
            return 0;
        };
        let mut ended = 0;
        for sink in ch.subscribers.values().filter(|s| s.format() == format) {
            sink.terminate();
            ended += 1;
        }
        ended
    }

    /// [`HubShard::publish`] to every subscriber but those in `except` (the publication's
    /// sender; a member's own connections).
    pub fn publish_except<E>(
        &mut self,
        channel: &ChannelName,
        except: &[ConnId],
        encode: E,
    ) -> Fanout<W>
    where
        E: FnMut(WireFormat) -> Option<Bytes>,
    {
        self.publish_at(channel, except, None, encode)
    }

    /// [`HubShard::publish_except`] of a publication at `offset` in the channel: each sink
    /// learns it ([`Sink::push_at`]).
    pub fn publish_at<E>(
        &mut self,
        channel: &ChannelName,
        except: &[ConnId],
        offset: Option<u64>,
        mut encode: E,
    ) -> Fanout<W>
    where
        E: FnMut(WireFormat) -> Option<Bytes>,
    {
        let mut fanout = Fanout {
            delivered: 0,
            evicted: Vec::new(),
            actions: Vec::new(),
        };
        let Some(ch) = self.channels.get(channel) else {
            return fanout;
        };
        let mut frames: [Option<Option<Bytes>>; WireFormat::ALL.len()] = Default::default();
        for (conn, sink) in &ch.subscribers {
            if except.contains(conn) {
                continue;
            }
            let format = sink.format();
            let frame = frames[format.index()].get_or_insert_with(|| encode(format));
            let Some(frame) = frame else { continue };
            match sink.push_at(frame, offset) {
                Push::Queued => fanout.delivered += 1,
                Push::Evicted | Push::Closed => fanout.evicted.push(*conn),
            }
        }
        for conn in &fanout.evicted {
            fanout.actions.extend(self.disconnect(*conn));
        }
        fanout
    }
}

/// Adds `channel` to `conn`'s list unless it is there already.
fn remember(conns: &mut HashMap<ConnId, Vec<ChannelName>>, conn: ConnId, channel: ChannelName) {
    let list = conns.entry(conn).or_default();
    if !list.contains(&channel) {
        list.push(channel);
    }
}

/// Removes `channel` from `conn`'s list; false when it was not there.
fn forget(
    conns: &mut HashMap<ConnId, Vec<ChannelName>>,
    conn: ConnId,
    channel: &ChannelName,
) -> bool {
    let Some(list) = conns.get_mut(&conn) else {
        return false;
    };
    let Some(at) = list.iter().position(|c| c == channel) else {
        return false;
    };
    list.swap_remove(at);
    if list.is_empty() {
        conns.remove(&conn);
    }
    true
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;

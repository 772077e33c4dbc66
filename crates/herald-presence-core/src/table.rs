//! The cluster-wide presence table: members per channel, nodes with leases.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use herald_protocol::{ChannelName, NodeId};

use crate::{Millis, UserId};

/// A cluster-wide change of membership, to push to every subscriber of the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The user is now a member (their first node joined).
    Join {
        /// The channel.
        channel: ChannelName,
        /// The user.
        user: UserId,
        /// The info given when joining (JSON text).
        info: Bytes,
    },
    /// The user is no longer a member (their last node left or died).
    Leave {
        /// The channel.
        channel: ChannelName,
        /// The user.
        user: UserId,
        /// The info they had joined with (JSON text).
        info: Bytes,
    },
}

struct Member {
    info: Bytes,
    nodes: HashSet<NodeId>,
}

struct Node {
    expires: Millis,
    holds: HashSet<(ChannelName, UserId)>,
}

/// Members per channel across nodes, each node alive while its lease is renewed.
pub struct PresenceTable {
    lease: Millis,
    channels: HashMap<ChannelName, HashMap<UserId, Member>>,
    nodes: HashMap<NodeId, Node>,
}

impl PresenceTable {
    /// A table whose node leases last `lease` milliseconds after each renewal.
    pub fn new(lease: Millis) -> Self {
        Self {
            lease,
            channels: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    /// Renews `node`'s lease. Returns false when the table did not know the node (it is new,
    /// its lease had run out, or the table restarted empty): the node must then report all its
    /// members again ([`crate::LocalPresence::snapshot`]).
    pub fn heartbeat(&mut self, node: NodeId, now: Millis) -> bool {
        let expires = now + self.lease;
        match self.nodes.get_mut(&node) {
            Some(n) => {
                n.expires = expires;
                true
            }
            None => {
                self.nodes.insert(
                    node,
                    Node {
                        expires,
                        holds: HashSet::new(),
                    },
                );
                false
            }
        }
    }

    /// `node` reports `user` in `channel`. Returns the join when the user was not a member yet.
    /// Renews the node's lease.
    pub fn join(
        &mut self,
        node: NodeId,
        channel: ChannelName,
        user: UserId,
        info: Bytes,
        now: Millis,
    ) -> Option<Event> {
        self.heartbeat(node, now);
        let holds = &mut self.nodes.get_mut(&node).expect("registered above").holds;
        holds.insert((channel.clone(), user.clone()));
        let members = self.channels.entry(channel.clone()).or_default();
        let member = members.entry(user.clone()).or_insert_with(|| Member {
            info: info.clone(),
            nodes: HashSet::new(),
        });
        let first = member.nodes.is_empty();
        member.nodes.insert(node);
        first.then(|| Event::Join {
            channel,
            user,
            info: member.info.clone(),
        })
    }

    /// `node` reports `user` gone from `channel`. Returns the leave when no other node has them.
    pub fn leave(
        &mut self,
        node: NodeId,
        channel: &ChannelName,
        user: &UserId,
        now: Millis,
    ) -> Option<Event> {
        self.heartbeat(node, now);
        let key = (channel.clone(), user.clone());
        self.nodes.get_mut(&node)?.holds.remove(&key);
        self.drop_member_node(node, key)
    }

    /// `node` leaves for good (graceful shutdown): its members leave now.
    pub fn node_gone(&mut self, node: NodeId) -> Vec<Event> {
        let Some(n) = self.nodes.remove(&node) else {
            return Vec::new();
        };
        let mut holds: Vec<_> = n.holds.into_iter().collect();
        holds.sort();
        holds
            .into_iter()
            .filter_map(|key| self.drop_member_node(node, key))
            .collect()
    }

    /// Removes every node whose lease ran out by `now`; their members that no live node has
    /// leave, once each.
    pub fn expire(&mut self, now: Millis) -> Vec<Event> {
        let mut dead: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        dead.sort_by_key(|id| id.0);
        dead.into_iter().flat_map(|id| self.node_gone(id)).collect()
    }

    fn drop_member_node(
        &mut self,
        node: NodeId,
        (channel, user): (ChannelName, UserId),
    ) -> Option<Event> {
        let members = self.channels.get_mut(&channel)?;
        let member = members.get_mut(&user)?;
        if !member.nodes.remove(&node) || !member.nodes.is_empty() {
            return None;
        }
        let info = members.remove(&user).map(|m| m.info).unwrap_or_default();
        if members.is_empty() {
            self.channels.remove(&channel);
        }
        Some(Event::Leave {
            channel,
            user,
            info,
        })
    }

    /// The members of `channel` with their info, ordered by user id.
    pub fn members(&self, channel: &ChannelName) -> Vec<(UserId, Bytes)> {
        let mut list: Vec<_> = self
            .channels
            .get(channel)
            .map(|m| m.iter().map(|(u, m)| (u.clone(), m.info.clone())).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    /// How many members `channel` has.
    pub fn count(&self, channel: &ChannelName) -> usize {
        self.channels.get(channel).map_or(0, HashMap::len)
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

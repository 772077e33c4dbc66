//! One node's view: connections in channels, folded into members.

use std::collections::HashMap;

use bytes::Bytes;
use herald_protocol::{ChannelName, ConnId};

use crate::UserId;

/// A change of membership on this node, to report to the presence table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// The user's first connection in the channel on this node.
    Joined {
        /// The channel.
        channel: ChannelName,
        /// The user.
        user: UserId,
        /// The info the first connection gave (JSON text).
        info: Bytes,
    },
    /// The user's last connection in the channel on this node left.
    Left {
        /// The channel.
        channel: ChannelName,
        /// The user.
        user: UserId,
    },
}

struct Here {
    info: Bytes,
    conns: Vec<ConnId>,
}

/// The presence channels' members on one node.
#[derive(Default)]
pub struct LocalPresence {
    members: HashMap<(ChannelName, UserId), Here>,
    by_conn: HashMap<ConnId, Vec<(ChannelName, UserId)>>,
}

impl LocalPresence {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// `conn` of `user` entered `channel`. Returns a join on the user's first connection there.
    /// Entering twice with one connection changes nothing.
    pub fn enter(
        &mut self,
        conn: ConnId,
        user: UserId,
        channel: ChannelName,
        info: Bytes,
    ) -> Option<LocalChange> {
        let key = (channel, user);
        let here = self.members.entry(key.clone()).or_insert_with(|| Here {
            info: info.clone(),
            conns: Vec::new(),
        });
        if here.conns.contains(&conn) {
            return None;
        }
        here.conns.push(conn);
        self.by_conn.entry(conn).or_default().push(key.clone());
        (here.conns.len() == 1).then(|| LocalChange::Joined {
            channel: key.0,
            user: key.1,
            info: here.info.clone(),
        })
    }

    /// The connections of `user` in `channel` on this node.
    pub fn conns(&self, channel: &ChannelName, user: &UserId) -> &[ConnId] {
        self.members
            .get(&(channel.clone(), user.clone()))
            .map_or(&[], |here| here.conns.as_slice())
    }

    /// `conn` left `channel`. Returns a leave when it was the user's last connection there.
    pub fn exit(
        &mut self,
        conn: ConnId,
        user: &UserId,
        channel: &ChannelName,
    ) -> Option<LocalChange> {
        let key = (channel.clone(), user.clone());
        let keys = self.by_conn.get_mut(&conn)?;
        let at = keys.iter().position(|k| *k == key)?;
        keys.swap_remove(at);
        if keys.is_empty() {
            self.by_conn.remove(&conn);
        }
        self.remove(conn, key)
    }

    /// `conn` is gone: it leaves every channel it was in.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<LocalChange> {
        let keys = self.by_conn.remove(&conn).unwrap_or_default();
        keys.into_iter()
            .filter_map(|key| self.remove(conn, key))
            .collect()
    }

    fn remove(&mut self, conn: ConnId, key: (ChannelName, UserId)) -> Option<LocalChange> {
        let here = self.members.get_mut(&key)?;
        here.conns.retain(|c| *c != conn);
        if !here.conns.is_empty() {
            return None;
        }
        self.members.remove(&key);
        Some(LocalChange::Left {
            channel: key.0,
            user: key.1,
        })
    }

    /// Every member on this node, as joins: what a node re-reports when the presence table lost
    /// its state (the presence service restarted empty, or the node's lease had expired).
    pub fn snapshot(&self) -> Vec<LocalChange> {
        self.members
            .iter()
            .map(|((channel, user), here)| LocalChange::Joined {
                channel: channel.clone(),
                user: user.clone(),
                info: here.info.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn info() -> Bytes {
        Bytes::from_static(b"{\"name\":\"A\"}")
    }

    #[test]
    fn several_connections_of_one_user_are_one_member() {
        let mut p = LocalPresence::new();
        let joined = p.enter(ConnId(1), u("alice"), ch("room"), info());
        assert!(matches!(joined, Some(LocalChange::Joined { .. })));
        assert_eq!(p.enter(ConnId(2), u("alice"), ch("room"), info()), None);
        assert_eq!(
            p.enter(ConnId(2), u("alice"), ch("room"), info()),
            None,
            "idempotent"
        );
        assert_eq!(p.conns(&ch("room"), &u("alice")), [ConnId(1), ConnId(2)]);
        assert_eq!(p.exit(ConnId(1), &u("alice"), &ch("room")), None);
        assert_eq!(p.conns(&ch("room"), &u("alice")), [ConnId(2)]);
        assert_eq!(
            p.exit(ConnId(2), &u("alice"), &ch("room")),
            Some(LocalChange::Left {
                channel: ch("room"),
                user: u("alice")
            })
        );
        assert_eq!(p.exit(ConnId(2), &u("alice"), &ch("room")), None, "once");
        assert!(p.conns(&ch("room"), &u("alice")).is_empty());
    }

    #[test]
    fn disconnect_leaves_every_channel_where_it_was_the_last() {
        let mut p = LocalPresence::new();
        p.enter(ConnId(1), u("alice"), ch("a"), info());
        p.enter(ConnId(1), u("alice"), ch("b"), info());
        p.enter(ConnId(2), u("alice"), ch("b"), info());
        p.enter(ConnId(3), u("bob"), ch("a"), info());
        let mut left = p.disconnect(ConnId(1));
        left.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            left,
            vec![LocalChange::Left {
                channel: ch("a"),
                user: u("alice")
            }]
        );
        assert_eq!(p.snapshot().len(), 2, "alice in b, bob in a");
        assert!(p.disconnect(ConnId(1)).is_empty());
    }
}

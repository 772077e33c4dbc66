//! The node's connections, by id and user: where the server API's disconnect and unsubscribe
//! find the connections they act on.

use std::{collections::HashMap, sync::Mutex};

use herald_presence_core::UserId;
use herald_protocol::{ChannelName, ConnId};

use crate::outbound::Outbound;

/// Locks the table is split under, so that connections opening and closing on several
/// threads rarely wait for each other.
const PARTS: usize = 16;

struct Entry {
    /// The user its token names.
    user: Option<UserId>,
    outbound: Outbound,
}

/// Every open connection and event stream of the node.
pub(crate) struct Registry {
    parts: Box<[Mutex<HashMap<ConnId, Entry>>]>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            parts: (0..PARTS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// What the server API asks of the connections it finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Close, telling the client whether to come back.
    Disconnect { reconnect: bool },
    /// Leave a channel.
    Leave(ChannelName),
}

/// Which connections an action is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every connection of a user.
    User(UserId),
    /// One connection of this node.
    Conn(ConnId),
}

impl Registry {
    fn part(&self, conn: ConnId) -> std::sync::MutexGuard<'_, HashMap<ConnId, Entry>> {
        let part = &self.parts[(conn.0 % PARTS as u64) as usize];
        part.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection; [`Registry::remove`] takes it out when it ends.
    pub(crate) fn add(&self, conn: ConnId, user: Option<UserId>, outbound: Outbound) {
        self.part(conn).insert(conn, Entry { user, outbound });
    }

    /// Takes an ended connection out.
    pub(crate) fn remove(&self, conn: ConnId) {
        self.part(conn).remove(&conn);
    }

    /// Does `action` to the connections `target` names; says how many there were.
    pub(crate) fn act(&self, target: &Target, action: &Action) -> usize {
        let mut found = Vec::new();
        match target {
            Target::Conn(conn) => {
                found.extend(self.part(*conn).get(conn).map(|e| e.outbound.clone()));
            }
            Target::User(user) => {
                for part in &self.parts {
                    let part = part.lock().unwrap_or_else(|e| e.into_inner());
                    found.extend(
                        part.values()
                            .filter(|e| e.user.as_ref() == Some(user))
                            .map(|e| e.outbound.clone()),
                    );
                }
            }
        }
        // Outside the table's locks: each queue has a lock of its own.
        for outbound in &found {
            match action {
                Action::Disconnect { reconnect } => outbound.disconnect(*reconnect),
                Action::Leave(channel) => outbound.leave(channel.clone()),
            }
        }
        found.len()
    }

    /// How many connections the node holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use herald_protocol::WireFormat;

    use super::*;
    use crate::outbound::QueueStatus;

    fn queue() -> Outbound {
        Outbound::new(WireFormat::Json, 1024)
    }

    fn status(q: &Outbound) -> QueueStatus {
        q.take(&mut std::collections::VecDeque::new())
    }

    #[test]
    fn a_user_is_found_on_every_connection_and_only_there() {
        let r = Registry::default();
        let alice = UserId::parse("alice").unwrap();
        let (a1, a2, bob, anon) = (queue(), queue(), queue(), queue());
        r.add(ConnId(1), Some(alice.clone()), a1.clone());
        r.add(ConnId(18), Some(alice.clone()), a2.clone());
        r.add(ConnId(2), Some(UserId::parse("bob").unwrap()), bob.clone());
        r.add(ConnId(3), None, anon.clone());
        let off = Action::Disconnect { reconnect: false };
        assert_eq!(r.act(&Target::User(alice), &off), 2);
        let gone = QueueStatus::Disconnected { reconnect: false };
        assert_eq!((status(&a1), status(&a2)), (gone, gone));
        assert_eq!(
            (status(&bob), status(&anon)),
            (QueueStatus::Open, QueueStatus::Open)
        );
    }

    #[test]
    fn a_connection_is_found_by_id_until_it_is_removed() {
        let r = Registry::default();
        let q = queue();
        r.add(ConnId(7), None, q.clone());
        let room = ChannelName::parse("room").unwrap();
        assert_eq!(
            r.act(&Target::Conn(ConnId(7)), &Action::Leave(room.clone())),
            1
        );
        assert_eq!(q.take_leaves(), Some(vec![room.clone()]));
        r.remove(ConnId(7));
        assert_eq!(r.len(), 0);
        assert_eq!(r.act(&Target::Conn(ConnId(7)), &Action::Leave(room)), 0);
        assert_eq!(q.take_leaves(), None);
    }
}

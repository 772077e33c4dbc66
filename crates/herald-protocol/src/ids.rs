//! Identifiers: typed so that a connection id is never mistaken for a node id.

use std::fmt;

/// A connection's id, unique within one gateway process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A connection anywhere in the cluster: its node's tag ([`NodeId::tag`]) and its id there,
/// written `tag.conn` (which is also the connection's Pusher socket id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnAddress {
    /// The node's tag.
    pub node: u32,
    /// The connection's id on that node.
    pub conn: ConnId,
}

impl ConnAddress {
    /// Parses `tag.conn`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (node, conn) = text.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(node) || !digits(conn) {
            return None;
        }
        Some(Self {
            node: node.parse().ok()?,
            conn: ConnId(conn.parse().ok()?),
        })
    }
}

impl fmt::Display for ConnAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.conn.0)
    }
}

/// A gateway node's id: a UUID, fresh per process unless configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub uuid::Uuid);

impl NodeId {
    /// A short tag of the node for connection addresses: the id's low 32 bits (random for
    /// random ids, so that nodes' tags differ).
    pub fn tag(&self) -> u32 {
        self.0.as_u128() as u32
    }

    /// A new random node id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of one publication, returned to the publisher. Time-ordered (UUIDv7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageId(pub uuid::Uuid);

impl MessageId {
    /// A new time-ordered message id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_refuse_the_rest() {
        let a = ConnAddress::parse("4294967295.18446744073709551615").unwrap();
        assert_eq!((a.node, a.conn), (u32::MAX, ConnId(u64::MAX)));
        assert_eq!(a.to_string(), "4294967295.18446744073709551615");
        for bad in ["", "1", "1.", ".1", "4294967296.1", "1.-1", "a.1", "1.2.3"] {
            assert_eq!(ConnAddress::parse(bad), None, "{bad}");
        }
    }
}

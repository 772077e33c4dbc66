//! The messages nodes send each other on the control channel: JSON, one per publication.

use serde::{Deserialize, Serialize};

/// One control message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Control {
    /// A node's heartbeat: how it stands now.
    Node(NodeInfo),
    /// A node stopped (it drained and exits).
    Gone {
        /// Its id.
        id: String,
    },
    /// Close connections (`POST /v1/disconnect`).
    Disconnect {
        #[serde(flatten)]
        target: Target,
        /// The client may reconnect (4003) or not (4501).
        reconnect: bool,
    },
    /// Make connections leave a channel (`POST /v1/unsubscribe`).
    Unsubscribe {
        #[serde(flatten)]
        target: Target,
        /// The channel.
        channel: String,
    },
}

/// Which connections a disconnect or unsubscribe is for: a user's, or one connection's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Target {
    /// The user (a token's `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<String>,
    /// The connection's address, `tag.conn` (a Pusher connection's `socket_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client: Option<String>,
}

/// What a node says of itself (`GET /v1/info`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeInfo {
    /// `node.id`, or the node's random id.
    pub(crate) id: String,
    /// The gateway's version.
    pub(crate) version: String,
    /// When it started, in seconds since the Unix epoch.
    pub(crate) started_at: u64,
    /// Open connections (WebSocket and event streams).
    pub(crate) connections: u64,
    /// Channels with subscribers on the node.
    pub(crate) channels: u64,
    /// Subscriptions of its connections.
    pub(crate) subscriptions: u64,
    /// `ready`, `not_ready` (its broker is unavailable) or `draining`.
    pub(crate) state: NodeState,
}

/// Whether a node takes traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeState {
    /// Serving.
    Ready,
    /// Its broker is unavailable: `/readyz` answers 503.
    NotReady,
    /// Shutting down: closing its connections.
    Draining,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let disconnect = Control::Disconnect {
            target: Target {
                user: Some("alice".into()),
                client: None,
            },
            reconnect: false,
        };
        let text = serde_json::to_string(&disconnect).unwrap();
        assert_eq!(text, r#"{"disconnect":{"user":"alice","reconnect":false}}"#);
        assert_eq!(serde_json::from_str::<Control>(&text).unwrap(), disconnect);
        let gone: Control = serde_json::from_str(r#"{"gone":{"id":"gw-1"}}"#).unwrap();
        assert_eq!(gone, Control::Gone { id: "gw-1".into() });
        assert!(serde_json::from_str::<Control>(r#"{"reboot":{}}"#).is_err());
    }
}

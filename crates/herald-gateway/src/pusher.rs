//! What the gateway needs of the Pusher Channels protocol beyond `herald-pusher`: opening a
//! connection on `/app/{key}`, framing Pusher messages, and mapping Herald's close codes to the
//! ones pusher-js understands. The connection's messages are handled in `ws::pusher`, the
//! HTTP API in `api::pusher`.

use bytes::Bytes;
use herald_protocol::{
    close,
    ws::{FrameBuilder, OpCode},
    ConnId, NodeId,
};
use herald_pusher::{codes, SocketId};

use crate::config::{PusherApp, PusherConfig};

/// The protocol versions Herald speaks.
const PROTOCOL: u32 = 7;

/// What a Pusher connection carries besides a native one.
pub(crate) struct PusherConn {
    /// Index of its app in `pusher.apps`.
    pub(crate) app: usize,
    /// The id it was given.
    pub(crate) socket_id: SocketId,
    /// Its presence channels, and the member it is in each.
    pub(crate) presence: Vec<(herald_protocol::ChannelName, herald_presence_core::UserId)>,
}

/// How a Pusher connection opens.
pub(crate) enum Opening {
    /// `pusher:connection_established` with this connection's state.
    Established(Box<PusherConn>),
    /// `pusher:error`, then a close with `code`.
    Refused { code: u16, message: String },
}

/// The app key of a Pusher WebSocket path (`/app/{key}`), if it is one.
pub(crate) fn app_key(path: &str) -> Option<&str> {
    path.strip_prefix("/app/")
        .filter(|k| !k.is_empty() && !k.contains('/'))
}

/// Decides how the connection `conn` on `/app/{key}?{query}` opens.
pub(crate) fn open(
    config: &PusherConfig,
    node: NodeId,
    conn: ConnId,
    key: &str,
    query: Option<&str>,
) -> Opening {
    let refuse = |code, message: &str| Opening::Refused {
        code,
        message: message.to_owned(),
    };
    let Some(app) = config.apps.iter().position(|a| a.key == key) else {
        return refuse(codes::APP_NOT_FOUND, "no app with this key");
    };
    let protocol = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "protocol")
        .map(|(_, v)| v.into_owned());
    match protocol.as_deref().map(str::parse::<u32>) {
        None => refuse(codes::NO_PROTOCOL_VERSION, "no protocol version given"),
        Some(Err(_)) => refuse(codes::INVALID_VERSION_FORMAT, "invalid protocol version"),
        Some(Ok(v)) if v != PROTOCOL => refuse(
            codes::UNSUPPORTED_PROTOCOL_VERSION,
            "unsupported protocol version: Herald speaks 7",
        ),
        Some(Ok(_)) => Opening::Established(Box::new(PusherConn {
            app,
            socket_id: SocketId {
                // The node's part: its id's low 32 bits, so that socket ids of different nodes
                // differ (`SocketId` values must be unique cluster-wide for exclusion).
                high: u64::from(node.tag()),
                low: conn.0,
            },
            presence: Vec::new(),
        })),
    }
}

/// The app of a connection.
pub(crate) fn app(config: &PusherConfig, conn: &PusherConn) -> PusherApp {
    config.apps[conn.app].clone()
}

/// A text frame of one Pusher message.
pub(crate) fn frame(text: &str) -> Bytes {
    let mut b = FrameBuilder::with_capacity(text.len());
    b.extend(text.as_bytes());
    b.finish(OpCode::Text)
}

/// The close code a Pusher client gets where a native one gets `native`: pusher-js reconnects
/// on 4100-4299 only, and reads 4000-4099 as "do not retry".
pub(crate) fn close_code(native: u16) -> u16 {
    match native {
        // Draining: come back at once, to another node.
        close::SHUTDOWN => codes::RECONNECT,
        // Too slow: come back after a back-off.
        close::SLOW_CONSUMER => codes::OVER_CAPACITY,
        close::IDLE_TIMEOUT => codes::PONG_NOT_RECEIVED,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PusherConfig {
        PusherConfig {
            apps: vec![PusherApp {
                id: "1".into(),
                key: "k".into(),
                secret: "s".into(),
            }],
            ..PusherConfig::default()
        }
    }

    #[test]
    fn openings_follow_the_protocol() {
        let (node, conn) = (NodeId::random(), ConnId(9));
        let code = |key, query| match open(&config(), node, conn, key, query) {
            Opening::Established(c) => {
                assert_eq!(c.socket_id.low, 9);
                0
            }
            Opening::Refused { code, .. } => code,
        };
        assert_eq!(code("k", Some("protocol=7&client=js&version=8.4.0")), 0);
        assert_eq!(code("other", Some("protocol=7")), codes::APP_NOT_FOUND);
        assert_eq!(code("k", None), codes::NO_PROTOCOL_VERSION);
        assert_eq!(code("k", Some("protocol=x")), codes::INVALID_VERSION_FORMAT);
        assert_eq!(
            code("k", Some("protocol=5")),
            codes::UNSUPPORTED_PROTOCOL_VERSION
        );
        assert_eq!(app_key("/app/abc"), Some("abc"));
        assert_eq!(app_key("/app/"), None);
        assert_eq!(app_key("/app/a/b"), None);
        assert_eq!(app_key("/ws"), None);
    }

    #[test]
    fn herald_close_codes_become_ones_pusher_js_reconnects_on() {
        for native in [close::SHUTDOWN, close::SLOW_CONSUMER, close::IDLE_TIMEOUT] {
            assert!(codes::reconnects(close_code(native)), "{native}");
        }
        assert_eq!(close_code(close::NORMAL), close::NORMAL);
    }
}

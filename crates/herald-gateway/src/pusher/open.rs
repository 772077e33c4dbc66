//! Opening a Pusher connection on `/app/{key}?protocol=7`.

use herald_protocol::{ConnId, NodeId};
use herald_pusher::{codes, SocketId};

use super::Session;
use crate::config::PusherConfig;

/// The protocol versions Herald speaks.
const PROTOCOL: u32 = 7;

/// How a Pusher connection opens.
pub(crate) enum Opening {
    /// `pusher:connection_established` with this connection's session.
    Established(Box<Session>),
    /// `pusher:error`, then a close with `code`.
    Refused { code: u16, message: &'static str },
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
    let refuse = |code, message| Opening::Refused { code, message };
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
        Some(Ok(_)) => Opening::Established(Box::new(Session::new(
            app,
            SocketId {
                // The node's part: its id's low 32 bits, so that socket ids of different nodes
                // differ (`SocketId` values must be unique cluster-wide for exclusion).
                high: u64::from(node.tag()),
                low: conn.0,
            },
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PusherApp;

    fn config() -> PusherConfig {
        PusherConfig {
            apps: vec![PusherApp::new("1", "k", "s")],
            ..PusherConfig::default()
        }
    }

    #[test]
    fn openings_follow_the_protocol() {
        let (node, conn) = (NodeId::random(), ConnId(9));
        let code = |key, query| match open(&config(), node, conn, key, query) {
            Opening::Established(s) => {
                assert_eq!(s.socket_id.low, 9);
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
}

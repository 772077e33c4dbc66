//! What the gateway needs of the Pusher Channels protocol beyond `herald-pusher`: opening a
//! connection on `/app/{key}`, framing Pusher messages, and mapping Herald's close codes to the
//! ones pusher-js understands. The connection's messages are handled in `ws::pusher`, the
//! HTTP API in `api::pusher`.

use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::{
    close,
    ws::{FrameBuilder, OpCode},
    ChannelName, ConnId, NodeId,
};
use herald_pusher::{codes, SocketId};

use crate::{
    config::{PusherApp, PusherConfig},
    outbound::{Hold, Outbound},
    presence::Membership,
};

/// Where a `cache-` channel's last event is read from, and the event name of publications
/// without one.
#[derive(Clone)]
pub(crate) struct PusherCache {
    pub(crate) broker: herald_broker::SharedBroker,
    pub(crate) default_event: herald_protocol::EventName,
}

/// Sends `subscription_succeeded` for a Pusher subscription that needs nothing read first.
pub(crate) fn subscribed(sink: &Outbound, channel: &ChannelName) {
    let text = herald_pusher::message::subscription_succeeded(&pusher_name(channel), "{}");
    sink.push_frame(&frame(&text));
}

/// Answers a presence or cache subscription from one task: `subscription_succeeded` (with the
/// member list, read from the presence table), then for a cache channel its last event, or
/// `pusher:cache_miss`. The answer goes out by releasing `hold`, which kept the channel's
/// frames back meanwhile.
pub(crate) fn answer_after_read(
    hold: &Arc<Hold>,
    channel: &ChannelName,
    membership: Option<&Membership>,
    cache: Option<&PusherCache>,
) {
    let (hold, channel, cache) = (hold.clone(), channel.clone(), cache.cloned());
    let presence = membership.map(|m| {
        let me = crate::presence::member(&m.identity.user, &m.identity.info);
        (m.presence.clone(), me)
    });
    tokio::spawn(async move {
        hold.release(&answer(&channel, presence, cache).await);
    });
}

/// The frames that answer a presence or cache subscription, read from the presence table and
/// the broker.
async fn answer(
    channel: &ChannelName,
    presence: Option<(
        Arc<crate::presence::Presence>,
        herald_protocol::presence::Member,
    )>,
    cache: Option<PusherCache>,
) -> Vec<Bytes> {
    use herald_pusher::message;
    let data = match presence {
        None => "{}".to_owned(),
        Some((presence, me)) => match presence.members(channel).await {
            Ok(mut members) => {
                // The table may not have this member yet: it is one.
                if !members.iter().any(|x| x.user == me.user) {
                    members.push(me);
                }
                let infos: Vec<(String, String)> = members
                    .iter()
                    .map(|x| (x.user.clone(), x.info.to_string()))
                    .collect();
                message::presence_data(infos.iter().map(|(u, i)| (u.as_str(), i.as_str())))
            }
            Err(e) => {
                let text = message::subscription_error(
                    &pusher_name(channel),
                    "SubscriptionError",
                    &format!("presence table unavailable: {e}"),
                    503,
                );
                return vec![frame(&text)];
            }
        },
    };
    let mut frames = vec![frame(&message::subscription_succeeded(
        &pusher_name(channel),
        &data,
    ))];
    let Some(cache) = cache else {
        return frames;
    };
    let last = cache.broker.last(channel).await.ok().flatten();
    let text = match last
        .as_ref()
        .and_then(|p| std::str::from_utf8(&p.data).ok().map(|d| (p, d)))
    {
        Some((p, data)) => {
            let name = p.event.as_ref().unwrap_or(&cache.default_event);
            message::event(
                name.as_str(),
                &pusher_name(channel),
                data,
                p.user.as_deref(),
            )
        }
        None => message::cache_miss(&pusher_name(channel)),
    };
    frames.push(frame(&text));
    frames
}

/// The namespace of users' channels in Herald: Pusher names hold no `:`, and native clients
/// cannot subscribe to a namespace that is not configured.
const USER_NAMESPACE: &str = "pusher-user:";

/// The Herald channel of a Pusher channel: the same name, except a user's channel
/// (`#server-to-user-{id}`), which is `pusher-user:{hex of the id}`.
pub(crate) fn herald_channel(
    channel: &herald_pusher::PusherChannel,
    max_len: usize,
) -> Result<ChannelName, String> {
    let name = match channel.user() {
        Some(user) => {
            let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
            format!("{USER_NAMESPACE}{hex}")
        }
        None => channel.as_str().to_owned(),
    };
    ChannelName::parse_with_max(&name, max_len).map_err(|e| e.to_string())
}

/// Whether a Herald channel is a Pusher user's channel.
pub(crate) fn is_user_channel(channel: &ChannelName) -> bool {
    channel.as_str().starts_with(USER_NAMESPACE)
}

/// The name Pusher clients know a Herald channel by.
pub(crate) fn pusher_name(channel: &ChannelName) -> std::borrow::Cow<'_, str> {
    let Some(hex) = channel.as_str().strip_prefix(USER_NAMESPACE) else {
        return channel.as_str().into();
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    match bytes.and_then(|b| String::from_utf8(b).ok()) {
        Some(user) => format!("{}{user}", herald_pusher::PusherChannel::SERVER_TO_USER).into(),
        None => channel.as_str().into(),
    }
}

/// The event that closes a user's connections (`terminate_connections`).
pub(crate) const TERMINATE: &str = "pusher_internal:terminate";

/// The protocol versions Herald speaks.
const PROTOCOL: u32 = 7;

/// What a Pusher connection carries besides a native one.
pub(crate) struct PusherConn {
    /// Index of its app in `pusher.apps`.
    pub(crate) app: usize,
    /// The id it was given.
    pub(crate) socket_id: SocketId,
    /// The user it signed in as (`pusher:signin`).
    pub(crate) user: Option<String>,
    /// Its place under the app's `max_connections`.
    pub(crate) _slot: Option<AppSlot>,
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
            user: None,
            _slot: None,
        })),
    }
}

/// The app of a connection.
pub(crate) fn app<'a>(config: &'a PusherConfig, conn: &PusherConn) -> &'a PusherApp {
    &config.apps[conn.app]
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

/// Names the Pusher apps and webhooks a node serves, at startup (never a secret, nor the
/// credentials of a webhook URL).
pub(crate) fn log_apps(config: &crate::config::PusherConfig) {
    for app in &config.apps {
        tracing::info!(
            app_id = %app.id,
            key = %app.key,
            client_events = app.client_events,
            max_connections = ?app.max_connections,
            webhooks = app.webhooks.len(),
            "pusher app"
        );
        for hook in &app.webhooks {
            tracing::info!(
                app_id = %app.id,
                url = %without_credentials(&hook.url),
                event_types = ?hook.event_types,
                channels = ?hook.channels,
                "pusher webhook"
            );
        }
    }
}

/// `url` without a `user:password@` part.
fn without_credentials(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]).into(),
        None => url.into(),
    }
}

/// The `pusher:subscription_error` of a channel the broker refused.
pub(crate) fn subscription_failed(failure: &herald_protocol::server::ChannelFailure) -> String {
    let name = ChannelName::parse(&failure.channel)
        .map(|c| pusher_name(&c).into_owned())
        .unwrap_or_else(|_| failure.channel.clone());
    let status = if failure.code == herald_protocol::ErrorCode::Unavailable.code() {
        503
    } else {
        500
    };
    herald_pusher::message::subscription_error(&name, "SubscriptionError", &failure.message, status)
}

/// One of a Pusher app's connection slots on this node (`pusher.apps[].max_connections`),
/// held by the connection and given back when it is dropped.
pub(crate) struct AppSlot(Arc<[std::sync::atomic::AtomicUsize]>, usize);

impl AppSlot {
    /// A slot of app `app` already counted in `counts`.
    pub(crate) fn held(counts: Arc<[std::sync::atomic::AtomicUsize]>, app: usize) -> Self {
        Self(counts, app)
    }
}

impl Drop for AppSlot {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn users_channels_map_both_ways() {
        let pusher = herald_pusher::PusherChannel::server_to_user("ann b").unwrap();
        let herald = herald_channel(&pusher, 255).unwrap();
        assert_eq!(herald.as_str(), "pusher-user:616e6e2062");
        assert_eq!(pusher_name(&herald), "#server-to-user-ann b");
        let plain = herald_pusher::PusherChannel::parse("news").unwrap();
        assert_eq!(herald_channel(&plain, 255).unwrap().as_str(), "news");
        assert_eq!(pusher_name(&herald_channel(&plain, 255).unwrap()), "news");
    }

    #[test]
    fn herald_close_codes_become_ones_pusher_js_reconnects_on() {
        for native in [close::SHUTDOWN, close::SLOW_CONSUMER, close::IDLE_TIMEOUT] {
            assert!(codes::reconnects(close_code(native)), "{native}");
        }
        assert_eq!(close_code(close::NORMAL), close::NORMAL);
    }

    #[test]
    fn webhook_urls_are_logged_without_credentials() {
        assert_eq!(
            without_credentials("https://u:p@hooks.example.com/pusher?a=b@c"),
            "https://***@hooks.example.com/pusher?a=b@c"
        );
        assert_eq!(
            without_credentials("http://hooks.example.com/x"),
            "http://hooks.example.com/x"
        );
    }
}

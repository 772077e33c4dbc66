//! The Pusher Channels protocol, as the gateway serves it (the protocol's pure pieces are
//! `herald-pusher`'s): opening a connection on `/app/{key}`, a connection's session (one file
//! per message kind), how subscriptions are answered, how the hub frames events for it, the
//! close codes pusher-js understands, and the signed HTTP API (`api`). Written against
//! [`crate::peer`], like the native protocol. The webhooks are a room of their own
//! (`crate::webhooks`): the node context holds them, and this room uses the node context.

mod answer;
pub(crate) mod api;
mod apps;
mod channel;
mod client_event;
mod framing;
mod open;
mod refusal;
mod session;
mod signin;
mod subscribe;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use herald_protocol::{
    close,
    ws::{FrameBuilder, OpCode},
};
use herald_pusher::codes;

pub(crate) use apps::log_apps;
pub(crate) use channel::{herald_channel, pusher_name};
pub(crate) use framing::PusherFraming;
pub(crate) use open::{app_key, open, Opening};
pub(crate) use refusal::Refusal;
pub(crate) use session::Session;

/// The event that closes a user's connections (`terminate_connections`).
pub(crate) const TERMINATE: &str = "pusher_internal:terminate";

/// The close of a connection whose user the app terminated (`terminate_connections`).
pub(crate) fn terminated() -> crate::peer::Close {
    crate::peer::Close::Wire {
        code: codes::UNAUTHORIZED,
        reason: "the app terminated this user's connections".into(),
    }
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
        // The server API's disconnect: come back at once, or not at all.
        close::DISCONNECT_RECONNECT => codes::RECONNECT,
        close::DISCONNECTED => codes::UNAUTHORIZED,
        other => other,
    }
}

//! The messages of protocol 7: what clients send, and the frames the server writes.
//!
//! Every message is a JSON object with `event`, and `data` and `channel` where they apply.
//! Server events carry `data` as a string of JSON (pusher-js parses it); the `pusher:*`
//! messages from clients carry it as an object.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{channel::ChannelNameError, PusherChannel};

/// A message from a client.
#[derive(Debug)]
pub enum ClientMessage {
    /// `pusher:ping`: answered with `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to the server's `pusher:ping`.
    Pong,
    /// `pusher:subscribe`.
    Subscribe {
        /// The channel.
        channel: PusherChannel,
        /// `<key>:<signature>`, for private and presence channels.
        auth: Option<String>,
        /// For presence channels: the member's `{"user_id": .., "user_info": ..}`, as signed.
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel.
        channel: PusherChannel,
    },
    /// `pusher:signin`: user authentication.
    Signin {
        /// `<key>:<signature>` over the user data.
        auth: String,
        /// The user, as signed: JSON text with at least an `id`.
        user_data: String,
    },
    /// A `client-` event, to be relayed to the channel's other subscribers.
    ClientEvent {
        /// The event name (starts with `client-`).
        event: String,
        /// The channel.
        channel: PusherChannel,
        /// The data, as the client sent it (JSON text).
        data: Box<RawValue>,
    },
}

/// Why a client message was refused.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not a JSON object with a string `event`.
    #[error("invalid JSON message: {0}")]
    Json(#[from] serde_json::Error),
    /// An event Herald does not know (not `pusher:*` it serves, nor `client-*`).
    #[error("unsupported event {0:?}")]
    Unknown(String),
    /// A field the event needs is missing or of the wrong type.
    #[error("{event}: missing or invalid {field}")]
    Field {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A channel name Pusher does not allow.
    #[error("invalid channel name: {0}")]
    Channel(#[from] ChannelNameError),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    channel: Option<String>,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: String,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<String>,
}

#[derive(Deserialize)]
struct SigninData {
    auth: String,
    user_data: String,
}

/// `data` may come as an object or as a string of JSON (older clients); returns the object.
fn data_of<'a, T: Deserialize<'a>>(
    data: Option<&'a RawValue>,
    event: &'static str,
    holder: &'a mut String,
) -> Result<T, MessageError> {
    let field = || MessageError::Field {
        event,
        field: "data",
    };
    let raw = data.ok_or_else(field)?;
    if raw.get().starts_with('"') {
        *holder = serde_json::from_str(raw.get()).map_err(|_| field())?;
        serde_json::from_str(holder).map_err(|_| field())
    } else {
        serde_json::from_str(raw.get()).map_err(|_| field())
    }
}

impl ClientMessage {
    /// Decodes one text message.
    ///
    /// # Errors
    /// [`MessageError`] with the reason, for a `pusher:error` reply.
    pub fn decode(text: &str) -> Result<Self, MessageError> {
        let m: Envelope<'_> = serde_json::from_str(text)?;
        let mut holder = String::new();
        match m.event.as_str() {
            "pusher:ping" => Ok(Self::Ping),
            "pusher:pong" => Ok(Self::Pong),
            "pusher:subscribe" => {
                let d: SubscribeData = data_of(m.data, "pusher:subscribe", &mut holder)?;
                Ok(Self::Subscribe {
                    channel: PusherChannel::parse(&d.channel)?,
                    auth: d.auth,
                    channel_data: d.channel_data,
                })
            }
            "pusher:unsubscribe" => {
                let d: SubscribeData = data_of(m.data, "pusher:unsubscribe", &mut holder)?;
                Ok(Self::Unsubscribe {
                    channel: PusherChannel::parse(&d.channel)?,
                })
            }
            "pusher:signin" => {
                let d: SigninData = data_of(m.data, "pusher:signin", &mut holder)?;
                Ok(Self::Signin {
                    auth: d.auth,
                    user_data: d.user_data,
                })
            }
            event if event.starts_with("client-") => {
                let field = |field| MessageError::Field {
                    event: "client event",
                    field,
                };
                let channel = m.channel.ok_or_else(|| field("channel"))?;
                let data = m.data.ok_or_else(|| field("data"))?;
                Ok(Self::ClientEvent {
                    event: m.event,
                    channel: PusherChannel::parse(&channel)?,
                    data: data.to_owned(),
                })
            }
            _ => Err(MessageError::Unknown(m.event)),
        }
    }
}

/// JSON text of a string.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

/// `pusher:connection_established`.
pub fn connection_established(socket_id: &str, activity_timeout: u64) -> String {
    let data = format!(r#"{{"socket_id":"{socket_id}","activity_timeout":{activity_timeout}}}"#);
    format!(
        r#"{{"event":"pusher:connection_established","data":{}}}"#,
        quoted(&data)
    )
}

/// `pusher:pong`.
pub fn pong() -> &'static str {
    r#"{"event":"pusher:pong","data":{}}"#
}

/// `pusher:ping`.
pub fn ping() -> &'static str {
    r#"{"event":"pusher:ping","data":{}}"#
}

/// `pusher:error`, with a code where Pusher defines one.
pub fn error(code: Option<u16>, message: &str) -> String {
    match code {
        Some(code) => format!(
            r#"{{"event":"pusher:error","data":{{"code":{code},"message":{}}}}}"#,
            quoted(message)
        ),
        None => format!(
            r#"{{"event":"pusher:error","data":{{"code":null,"message":{}}}}}"#,
            quoted(message)
        ),
    }
}

/// `pusher:subscription_error`: `kind` is `AuthError` or another Pusher error type, `status`
/// the HTTP-like status pusher-js reports.
pub fn subscription_error(channel: &str, kind: &str, message: &str, status: u16) -> String {
    format!(
        r#"{{"event":"pusher:subscription_error","channel":{},"data":{{"type":{},"error":{},"status":{status}}}}}"#,
        quoted(channel),
        quoted(kind),
        quoted(message)
    )
}

/// `pusher_internal:subscription_succeeded`; `data` is the presence hash's JSON text for
/// presence channels, `{}` for the others.
pub fn subscription_succeeded(channel: &str, data: &str) -> String {
    format!(
        r#"{{"event":"pusher_internal:subscription_succeeded","channel":{},"data":{}}}"#,
        quoted(channel),
        quoted(data)
    )
}

/// `pusher:signin_success`, with the user data as signed.
pub fn signin_success(user_data: &str) -> String {
    format!(
        r#"{{"event":"pusher:signin_success","data":{{"user_data":{}}}}}"#,
        quoted(user_data)
    )
}

/// The user id of signed-in `user_data` (a JSON object with a string `id`).
pub fn user_id(user_data: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct User {
        id: String,
    }
    serde_json::from_str::<User>(user_data)
        .ok()
        .map(|u| u.id)
        .filter(|id| !id.is_empty())
}

/// `pusher:cache_miss`: a cache channel has no event to deliver on subscription.
pub fn cache_miss(channel: &str) -> String {
    format!(
        r#"{{"event":"pusher:cache_miss","channel":{}}}"#,
        quoted(channel)
    )
}

/// `pusher_internal:member_added`: `user_info` is JSON text.
pub fn member_added(channel: &str, user_id: &str, user_info: &str) -> String {
    let data = format!(
        r#"{{"user_id":{},"user_info":{user_info}}}"#,
        quoted(user_id)
    );
    format!(
        r#"{{"event":"pusher_internal:member_added","channel":{},"data":{}}}"#,
        quoted(channel),
        quoted(&data)
    )
}

/// `pusher_internal:member_removed`.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    let data = format!(r#"{{"user_id":{}}}"#, quoted(user_id));
    format!(
        r#"{{"event":"pusher_internal:member_removed","channel":{},"data":{}}}"#,
        quoted(channel),
        quoted(&data)
    )
}

/// The `data` of a presence channel's `subscription_succeeded`: every member's id and info
/// (JSON text), as `{"presence":{"ids":[..],"hash":{..},"count":N}}`.
pub fn presence_data<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let (mut ids, mut hash, mut count) = (Vec::new(), Vec::new(), 0);
    for (id, info) in members {
        ids.push(quoted(id));
        hash.push(format!("{}:{info}", quoted(id)));
        count += 1;
    }
    format!(
        r#"{{"presence":{{"ids":[{}],"hash":{{{}}},"count":{count}}}}}"#,
        ids.join(","),
        hash.join(",")
    )
}

/// What a presence subscription signs as `channel_data`: the member's id (a string or a
/// number in the JSON) and optional info.
#[derive(Debug, PartialEq, Eq)]
pub struct ChannelData {
    /// `user_id`, as text.
    pub user_id: String,
    /// `user_info`, as JSON text (`null` when absent).
    pub user_info: String,
}

impl ChannelData {
    /// Parses `channel_data`.
    ///
    /// # Errors
    /// [`MessageError::Field`] when it is not an object with a string or number `user_id`.
    pub fn parse(text: &str) -> Result<Self, MessageError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            user_id: serde_json::Value,
            #[serde(borrow, default)]
            user_info: Option<&'a RawValue>,
        }
        let field = || MessageError::Field {
            event: "pusher:subscribe",
            field: "channel_data.user_id",
        };
        let raw: Raw<'_> = serde_json::from_str(text).map_err(|_| field())?;
        let user_id = match raw.user_id {
            serde_json::Value::String(s) if !s.is_empty() => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(field()),
        };
        Ok(Self {
            user_id,
            user_info: raw.user_info.map_or("null".into(), |v| v.get().to_owned()),
        })
    }
}

/// An event on a channel. `json` is Herald's publication data (JSON text): a JSON string
/// goes out as that string (what a Pusher SDK published), anything else as its JSON text.
/// `user_id`, the sender's, is given for client events on presence channels (pusher-js hands
/// it to apps as `metadata.user_id`).
pub fn event(name: &str, channel: &str, json: &str, user_id: Option<&str>) -> String {
    let data = if json.starts_with('"') {
        json.to_owned()
    } else {
        quoted(json)
    };
    let user = user_id.map_or_else(String::new, |u| format!(r#","user_id":{}"#, quoted(u)));
    format!(
        r#"{{"event":{},"channel":{},"data":{data}{user}}}"#,
        quoted(name),
        quoted(channel)
    )
}

#[cfg(test)]
mod tests;

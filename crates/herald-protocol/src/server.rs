//! Frames the server sends: replies to requests and pushes of publications.
//!
//! Every function returns a complete WebSocket frame, ready to queue: text frames of JSON for
//! [`WireFormat::Json`], binary frames of MessagePack maps of the same shape for
//! [`WireFormat::MsgPack`]. A push is encoded once per format and the bytes are shared by every
//! subscriber.

use bytes::Bytes;
use serde::{Serialize, Serializer};

use crate::{
    ws::{FrameBuilder, OpCode},
    ChannelName, ErrorCode, EventName, WireFormat,
};

/// The data of a publication could not be encoded (it was not valid JSON).
#[derive(Debug, thiserror::Error)]
#[error("publication data is not valid JSON: {0}")]
pub struct EncodeError(#[source] rmp_serde::encode::Error);

/// The body of a successful reply.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ReplyOk<'a> {
    /// Reply to `subscribe`: the channels now subscribed, and those that failed with why.
    Subscribe {
        /// Channels the connection is subscribed to now.
        subscribed: &'a [String],
        /// Channels that could not be subscribed, each with its error.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        failed: &'a [ChannelFailure],
        /// How the recovery of each channel asked to recover went.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        recovery: &'a [Recovered],
        /// Where each other subscribed channel that keeps history stands: the pushes that
        /// follow the reply continue from there.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        positions: &'a [ChannelPosition],
    },
    /// Reply to `unsubscribe`.
    Unsubscribe {
        /// Channels the connection is no longer subscribed to.
        unsubscribed: &'a [String],
        /// Names that are not valid channels, each with its error.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        failed: &'a [ChannelFailure],
    },
    /// Reply to `presence`: every member of the channel, in user id order.
    Presence {
        /// The channel.
        channel: &'a str,
        /// Its members.
        members: &'a [crate::presence::Member],
    },
    /// Reply to `presence_stats`.
    PresenceStats {
        /// The channel.
        channel: &'a str,
        /// How many members it has.
        count: u64,
    },
    /// Reply to `refresh`: when the new token expires (Unix seconds), if it does.
    Refresh {
        /// The token's `exp`.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// Reply to `publish`.
    Publish {
        /// The publication's id.
        message_id: String,
        /// Its offset in the channel.
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
        /// The epoch its offset counts in.
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
    },
    /// Reply to `history`: where the channel's stream stands, and the publications asked for.
    History {
        /// The channel.
        channel: &'a str,
        /// The offset of its latest publication (0: none in this epoch).
        offset: u64,
        /// The epoch of its sequence (none before its first publication).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        /// The publications, in the order asked for.
        publications: &'a [HistoryItem<'a>],
    },
}

/// One publication of a `history` reply.
#[derive(Debug)]
pub struct HistoryItem<'a> {
    /// The data, as JSON text.
    pub data: &'a [u8],
    /// Its offset.
    pub offset: Option<u64>,
    /// Its event name.
    pub event: Option<&'a str>,
}

impl Serialize for HistoryItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Item<'a> {
            data: JsonAsValue<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            event: Option<&'a str>,
        }
        Item {
            data: JsonAsValue(self.data),
            offset: self.offset,
            event: self.event,
        }
        .serialize(s)
    }
}

/// Where a channel stands: the offset of its latest publication and the epoch it counts in.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChannelPosition {
    /// The channel.
    pub channel: String,
    /// The offset of its latest publication when the subscription began (0: none yet).
    pub offset: u64,
    /// The epoch of its sequence (none before its first publication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// How one channel's recovery went: `recovered`, and where the channel stands now.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Recovered {
    /// The channel.
    pub channel: String,
    /// What the client missed was delivered (after this reply, before anything newer).
    pub recovered: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The offset of the channel's latest publication when it was read.
    pub offset: u64,
    /// The epoch of its sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// One channel of a subscribe request that failed.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelFailure {
    /// The channel as the client named it.
    pub channel: String,
    /// The error code number.
    pub code: u32,
    /// What went wrong.
    pub message: String,
}

impl ChannelFailure {
    /// A failure of `channel` with `code`.
    pub fn new(channel: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            code: code.code(),
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct OkFrame<'a> {
    id: u64,
    ok: &'a ReplyOk<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u32,
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    error: ErrorBody<'a>,
}

/// A successful reply to request `id`.
pub fn reply_ok(format: WireFormat, id: u64, ok: &ReplyOk<'_>) -> Bytes {
    encode(format, &OkFrame { id, ok })
}

/// A failed reply; `id` is `None` when the request was too malformed to read its id.
pub fn reply_error(format: WireFormat, id: Option<u64>, code: ErrorCode, message: &str) -> Bytes {
    encode(
        format,
        &ErrorFrame {
            id,
            error: ErrorBody {
                code: code.code(),
                message,
            },
        },
    )
}

fn encode<T: Serialize>(format: WireFormat, value: &T) -> Bytes {
    let mut b = FrameBuilder::with_capacity(64);
    match format {
        WireFormat::Json | WireFormat::Pusher | WireFormat::Sse => {
            serde_json::to_writer(&mut b, value).expect("reply frames always serialise");
            b.finish(OpCode::Text)
        }
        WireFormat::MsgPack => {
            value
                .serialize(&mut rmp_serde::Serializer::new(&mut b).with_struct_map())
                .expect("reply frames always serialise");
            b.finish(OpCode::Binary)
        }
    }
}

/// `{"push":{"channel":..,"data":..,"offset":..}}` for a publication whose data is `json`.
///
/// # Errors
/// [`EncodeError`] when `json` is not valid JSON (it always is for data that came through a
/// Herald edge, which validates it); only the MessagePack form can notice.
pub fn push(
    format: WireFormat,
    channel: &ChannelName,
    json: &[u8],
    offset: Option<u64>,
    event: Option<&EventName>,
) -> Result<Bytes, EncodeError> {
    match format {
        WireFormat::Json | WireFormat::Pusher | WireFormat::Sse => {
            Ok(push_json(channel, json, offset, event))
        }
        WireFormat::MsgPack => push_msgpack(channel, json, offset, event),
    }
}

fn push_json(
    channel: &ChannelName,
    json: &[u8],
    offset: Option<u64>,
    event: Option<&EventName>,
) -> Bytes {
    let mut b = FrameBuilder::with_capacity(48 + channel.as_str().len() + json.len());
    // Channel names hold no character that JSON escapes, so they are written as they are.
    b.extend(b"{\"push\":{\"channel\":\"");
    b.extend(channel.as_str().as_bytes());
    b.extend(b"\",\"data\":");
    b.extend(json);
    if let Some(offset) = offset {
        b.extend(b",\"offset\":");
        b.extend(itoa_u64(offset, &mut [0; 20]));
    }
    if let Some(event) = event {
        b.extend(b",\"event\":");
        let quoted = serde_json::to_string(event.as_str()).expect("strings always serialise");
        b.extend(quoted.as_bytes());
    }
    b.extend(b"}}");
    b.finish(OpCode::Text)
}

fn itoa_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Serialises JSON text as the equivalent MessagePack value.
struct JsonAsValue<'a>(&'a [u8]);

impl Serialize for JsonAsValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut de = serde_json::Deserializer::from_slice(self.0);
        serde_transcode::Transcoder::new(&mut de).serialize(s)
    }
}

#[derive(Serialize)]
struct PushBody<'a> {
    channel: &'a str,
    data: JsonAsValue<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
}

#[derive(Serialize)]
struct PushFrame<'a> {
    push: PushBody<'a>,
}

fn push_msgpack(
    channel: &ChannelName,
    json: &[u8],
    offset: Option<u64>,
    event: Option<&EventName>,
) -> Result<Bytes, EncodeError> {
    let mut b = FrameBuilder::with_capacity(32 + channel.as_str().len() + json.len());
    let frame = PushFrame {
        push: PushBody {
            channel: channel.as_str(),
            data: JsonAsValue(json),
            offset,
            event: event.map(EventName::as_str),
        },
    };
    frame
        .serialize(&mut rmp_serde::Serializer::new(&mut b).with_struct_map())
        .map_err(EncodeError)?;
    Ok(b.finish(OpCode::Binary))
}

#[derive(Serialize)]
struct GapBody<'a> {
    channel: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<Missing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
}

/// The offsets a gap notice knows to be missing, `from` to `to`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The first missing offset.
    pub from: u64,
    /// The last.
    pub to: u64,
}

#[derive(Serialize)]
struct GapFrame<'a> {
    gap: GapBody<'a>,
}

/// `{"gap":{"channel":..,"reason":..,"missing":{"from":..,"to":..},"epoch":..}}`: publications of
/// `channel` may have been missed (the node lost its broker subscription for a while); the
/// subscription is live again. `missing`, when known, names the offsets that were; `epoch`,
/// when known, the epoch the publications after the notice count in.
pub fn gap(
    format: WireFormat,
    channel: &ChannelName,
    reason: &str,
    missing: Option<Missing>,
    epoch: Option<&str>,
) -> Bytes {
    encode(
        format,
        &GapFrame {
            gap: GapBody {
                channel: channel.as_str(),
                reason,
                missing,
                epoch,
            },
        },
    )
}

#[derive(Serialize)]
struct UnsubscribedBody<'a> {
    channel: &'a str,
}

#[derive(Serialize)]
struct UnsubscribedFrame<'a> {
    unsubscribed: UnsubscribedBody<'a>,
}

/// `{"unsubscribed":{"channel":..}}`: the server ended the connection's subscription to
/// `channel` (the application's `POST /v1/unsubscribe`); nothing more of it comes.
pub fn unsubscribed(format: WireFormat, channel: &ChannelName) -> Bytes {
    encode(
        format,
        &UnsubscribedFrame {
            unsubscribed: UnsubscribedBody {
                channel: channel.as_str(),
            },
        },
    )
}

#[derive(Serialize)]
struct NoticeBody<'a> {
    channel: &'a str,
    user: &'a str,
    info: &'a serde_json::Value,
}

/// `{"join":{"channel":..,"user":..,"info":..}}` or the same with `leave`.
pub fn presence(
    format: WireFormat,
    channel: &ChannelName,
    notice: &crate::presence::PresenceNotice,
) -> Bytes {
    let body = NoticeBody {
        channel: channel.as_str(),
        user: &notice.member.user,
        info: &notice.member.info,
    };
    let mut frame = std::collections::BTreeMap::new();
    frame.insert(notice.change.as_str(), body);
    encode(format, &frame)
}

#[cfg(test)]
mod tests;

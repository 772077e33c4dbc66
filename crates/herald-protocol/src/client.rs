//! Requests a client sends: `{"id":1,"subscribe":{"channels":[..],"token":..,"recover":{..}}}`,
//! `{"id":2,"unsubscribe":{"channels":[..]}}`, `{"id":3,"publish":{"channel":..,"data":..}}`,
//! the presence queries, `{"id":4,"refresh":{"token":..}}` and
//! `{"id":5,"history":{"channel":..,"limit":..,"since":{"offset":..,"epoch":..},"reverse":..}}`.
//!
//! JSON arrives in text frames, MessagePack (a map of the same shape) in binary frames.
//! Publication data is normalised to JSON text in both cases, so that every subscriber gets the
//! same value whatever the publisher spoke.

use std::{fmt, marker::PhantomData};

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::WireFormat;

/// One decoded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The client's id for the request, echoed in the reply.
    pub id: u64,
    /// What the client asks for.
    pub command: Command,
}

/// The commands of the native protocol. Channel names are still unchecked strings here so that
/// one bad name fails only itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Subscribe to each channel.
    Subscribe {
        /// Channel names as sent.
        channels: Vec<String>,
        /// A channel token granting some of them (namespaces with `subscribe = "token"`).
        token: Option<String>,
        /// Channels to recover, each from the last position the client saw: what it missed
        /// is delivered before anything newer.
        recover: Vec<(String, crate::Position)>,
    },
    /// Unsubscribe from each channel.
    Unsubscribe {
        /// Channel names as sent.
        channels: Vec<String>,
    },
    /// Publish `data` into `channel`.
    Publish {
        /// Channel name as sent.
        channel: String,
        /// The data, as compact JSON text.
        data: Bytes,
    },
    /// List the members of a presence channel.
    Presence {
        /// Channel name as sent.
        channel: String,
    },
    /// Count the members of a presence channel.
    PresenceStats {
        /// Channel name as sent.
        channel: String,
    },
    /// Replace the connection's token with a fresh one for the same user.
    Refresh {
        /// The new connection token.
        token: String,
    },
    /// Read a channel's history.
    History(HistoryRequest),
}

/// What a `history` request asks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRequest {
    /// Channel name as sent.
    pub channel: String,
    /// At most this many publications (the server caps it); none: the server's most.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only publications after this position.
    #[serde(default)]
    pub since: Option<crate::Position>,
    /// Newest first.
    #[serde(default)]
    pub reverse: bool,
}

/// A frame that is not a valid request.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct RequestError {
    /// The request id, when it could still be read from the frame.
    pub id: Option<u64>,
    /// What was wrong.
    pub source: DecodeError,
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Malformed JSON, or JSON of the wrong shape.
    #[error("bad request: {0}")]
    Json(#[from] serde_json::Error),
    /// Malformed MessagePack, or MessagePack of the wrong shape.
    #[error("bad request: {0}")]
    MsgPack(#[from] rmp_serde::decode::Error),
}

impl ClientRequest {
    /// Decodes one complete WebSocket message in `format`.
    ///
    /// # Errors
    /// [`RequestError`] when the bytes are not a request; its `id` is set when the frame was at
    /// least a map with a numeric `id`, so that the error reply can name the request.
    pub fn decode(format: WireFormat, frame: &[u8]) -> Result<Self, RequestError> {
        let result = match format {
            WireFormat::Json | WireFormat::Pusher | WireFormat::Sse => {
                let mut de = serde_json::Deserializer::from_slice(frame);
                de.deserialize_map(RequestVisitor::<JsonPayload>(PhantomData))
                    .and_then(|r| de.end().map(|()| r))
                    .map_err(DecodeError::from)
            }
            WireFormat::MsgPack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(frame);
                de.deserialize_map(RequestVisitor::<MsgPackPayload>(PhantomData))
                    .map_err(DecodeError::from)
            }
        };
        result.map_err(|source| RequestError {
            id: recover_id(format, frame),
            source,
        })
    }
}

fn recover_id(format: WireFormat, frame: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: u64,
    }
    match format {
        WireFormat::Json | WireFormat::Pusher | WireFormat::Sse => {
            serde_json::from_slice::<IdOnly>(frame).ok().map(|r| r.id)
        }
        WireFormat::MsgPack => rmp_serde::from_slice::<IdOnly>(frame).ok().map(|r| r.id),
    }
}

/// Turns a deserialised `data` value into compact JSON text.
trait IntoJson {
    fn into_json(self) -> Bytes;
}

/// JSON `data` is kept as the client wrote it (already validated by the parser).
struct JsonPayload(Box<serde_json::value::RawValue>);

impl<'de> Deserialize<'de> for JsonPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(JsonPayload)
    }
}

impl IntoJson for JsonPayload {
    fn into_json(self) -> Bytes {
        Bytes::from(String::from(Box::<str>::from(self.0)))
    }
}

/// MessagePack `data` is transcoded to JSON once, at the edge. Binary strings become arrays of
/// numbers; maps with non-string keys are refused.
struct MsgPackPayload(Vec<u8>);

impl<'de> Deserialize<'de> for MsgPackPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        serde_transcode::transcode(d, &mut serde_json::Serializer::new(&mut out))
            .map_err(de::Error::custom)?;
        Ok(MsgPackPayload(out))
    }
}

impl IntoJson for MsgPackPayload {
    fn into_json(self) -> Bytes {
        Bytes::from(self.0)
    }
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Id,
    Subscribe,
    Unsubscribe,
    Publish,
    Presence,
    #[serde(rename = "presence_stats")]
    PresenceStats,
    Refresh,
    History,
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
struct ChannelsBody {
    channels: Vec<String>,
}

#[derive(serde::Deserialize)]
struct SubscribeBody {
    channels: Vec<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    recover: std::collections::BTreeMap<String, crate::Position>,
}

#[derive(serde::Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(serde::Deserialize)]
struct ChannelBody {
    channel: String,
}

#[derive(serde::Deserialize)]
struct PublishBody<P> {
    channel: String,
    data: P,
}

struct RequestVisitor<P>(PhantomData<P>);

impl<'de, P> Visitor<'de> for RequestVisitor<P>
where
    P: Deserialize<'de> + IntoJson,
{
    type Value = ClientRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a request map with an id and one of subscribe, unsubscribe, publish, presence, \
             presence_stats, refresh, history",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientRequest, A::Error> {
        let mut id = None;
        let mut command = None;
        while let Some(key) = map.next_key::<Key>()? {
            let next = match key {
                Key::Id => {
                    id = Some(map.next_value::<u64>()?);
                    continue;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Key::Subscribe => {
                    let body = map.next_value::<SubscribeBody>()?;
                    Command::Subscribe {
                        channels: body.channels,
                        token: body.token,
                        recover: body.recover.into_iter().collect(),
                    }
                }
                Key::Refresh => Command::Refresh {
                    token: map.next_value::<TokenBody>()?.token,
                },
                Key::History => Command::History(map.next_value::<HistoryRequest>()?),
                Key::Unsubscribe => Command::Unsubscribe {
                    channels: map.next_value::<ChannelsBody>()?.channels,
                },
                Key::Presence => Command::Presence {
                    channel: map.next_value::<ChannelBody>()?.channel,
                },
                Key::PresenceStats => Command::PresenceStats {
                    channel: map.next_value::<ChannelBody>()?.channel,
                },
                Key::Publish => {
                    let body = map.next_value::<PublishBody<P>>()?;
                    Command::Publish {
                        channel: body.channel,
                        data: body.data.into_json(),
                    }
                }
            };
            if command.replace(next).is_some() {
                return Err(de::Error::custom("a request carries exactly one command"));
            }
        }
        let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        let command = command.ok_or_else(|| {
            de::Error::custom(
                "missing command: one of subscribe, unsubscribe, publish, presence, \
                 presence_stats, refresh, history",
            )
        })?;
        Ok(ClientRequest { id, command })
    }
}

/// How deeply arrays and objects nest in the JSON text `json` (0 for a scalar). Strings are
/// skipped, escapes included, so brackets inside them do not count.
pub fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests;

//! What travels between nodes through Redis, and what applications may publish into it.
//!
//! Two forms arrive on a channel's Redis pub/sub channel:
//!
//! - **Sequenced**, written by Herald's Redis function (`herald_publish`): a MessagePack array
//!   laid out as [`LAYOUT`] says, `[1, offset, data, id, published_at_us, traceparent, event,
//!   exclude, user, epoch]`, where `1` is the envelope version, `offset` the channel's sequence
//!   number, `data` the publication as JSON text, `id` (optional) its message id,
//!   `published_at_us` (optional) when Redis sequenced it, in microseconds since the Unix
//!   epoch, `traceparent` (empty unless the publication was sampled for tracing) the W3C trace
//!   context of the publish, `event` (optional) its event name, `exclude` (optional) the
//!   address `node.conn` of a connection that must not receive it (its sender), and `user`
//!   (optional) the user id of the client that sent it, and `epoch` (optional) the epoch of
//!   the channel's sequence (see [`crate::position`]). Elements after these are ignored, so
//!   that later fields can be added; a `traceparent` or an event name that is not valid is
//!   ignored too.
//! - **Plain**, published by an application with nothing but `PUBLISH`: the JSON text
//!   `{"data": <value>}`. It is delivered without an offset.
//!
//! The first byte tells them apart: a MessagePack array starts with `0x90..=0x9f`, `0xdc` or
//! `0xdd`; the plain form with `{`. Anything else, or data that is not JSON, is refused.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// The envelope version this crate reads.
pub const VERSION: u8 = 1;

/// One element of the sequenced form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`VERSION`].
    Version,
    /// The channel's sequence number.
    Offset,
    /// The publication, as JSON text.
    Data,
    /// The message id (a UUID's text).
    Id,
    /// When Redis sequenced it, in microseconds since the Unix epoch.
    PublishedAtUs,
    /// The W3C trace context of a sampled publication.
    TraceParent,
    /// The event name.
    Event,
    /// The `node.conn` address of a connection that must not receive it.
    Exclude,
    /// The user id of the client that sent it.
    User,
    /// The epoch of the channel's sequence.
    Epoch,
}

/// The sequenced form, element by element: the one description of the layout that Herald's
/// Redis function writes and [`Envelope::decode`] reads, both tested against it. The elements
/// from [`Field::TraceParent`] on are there as far as the last one given (an empty string
/// for one not given before it); the function that keeps history always writes them all,
/// through [`Field::Epoch`].
pub const LAYOUT: [Field; 10] = [
    Field::Version,
    Field::Offset,
    Field::Data,
    Field::Id,
    Field::PublishedAtUs,
    Field::TraceParent,
    Field::Event,
    Field::Exclude,
    Field::User,
    Field::Epoch,
];

/// The optional elements a publisher passes to the function, after `data`, `id` and the
/// offset's time to live, in this order (the function adds the version, the offset and the
/// time).
pub const OPTIONAL: [Field; 4] = [
    Field::TraceParent,
    Field::Event,
    Field::Exclude,
    Field::User,
];

/// A decoded publication from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The channel's sequence number; `None` for the plain form.
    pub offset: Option<u64>,
    /// The data, as validated JSON text.
    pub data: Bytes,
    /// The message id, when the publisher gave one.
    pub id: Option<uuid::Uuid>,
    /// When it was sequenced, in microseconds since the Unix epoch (Redis' clock).
    pub published_at_us: Option<u64>,
    /// The trace context of a publication sampled for tracing.
    pub trace: Option<crate::TraceParent>,
    /// The event name, when the publisher gave one.
    pub event: Option<crate::EventName>,
    /// A connection that must not receive it (its sender).
    pub exclude: Option<crate::ConnAddress>,
    /// The user id of the client that sent it (a Pusher client event on a presence channel).
    pub user: Option<String>,
    /// The epoch of the channel's sequence; `None` for the plain form and older envelopes.
    pub epoch: Option<crate::Epoch>,
}

/// Anything that arrives on a channel's pub/sub channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerMessage {
    /// A publication, sequenced or plain.
    Publication(Envelope),
    /// A presence notice (`[2, ..]`, see [`crate::presence`]).
    Presence(crate::presence::PresenceNotice),
}

impl BrokerMessage {
    /// Decodes one message received from the broker.
    ///
    /// # Errors
    /// [`EnvelopeError`] for anything that is not one of the documented forms.
    pub fn decode(message: &[u8]) -> Result<Self, EnvelopeError> {
        if crate::presence::is_notice(message) {
            return crate::presence::PresenceNotice::from_broker(message)
                .map(BrokerMessage::Presence)
                .map_err(EnvelopeError::Presence);
        }
        Envelope::decode(message).map(BrokerMessage::Publication)
    }
}

/// Why a broker message was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Neither a MessagePack array nor a JSON object.
    #[error("not a Herald envelope (first byte {0:#04x})")]
    UnknownForm(u8),
    /// Empty message.
    #[error("empty message")]
    Empty,
    /// A sequenced envelope that does not decode.
    #[error("bad sequenced envelope: {0}")]
    MsgPack(#[from] rmp_serde::decode::Error),
    /// A plain form that does not decode, or data that is not JSON.
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An envelope of a version this node does not read.
    #[error("envelope version {0} is not supported")]
    Version(u8),
    /// A message id that is not a UUID.
    #[error("message id is not a UUID")]
    BadId,
    /// A presence notice that does not decode.
    #[error(transparent)]
    Presence(crate::presence::NoticeError),
}

impl Envelope {
    /// Decodes one message received from the broker.
    ///
    /// # Errors
    /// [`EnvelopeError`] for anything that is not one of the two documented forms.
    pub fn decode(message: &[u8]) -> Result<Self, EnvelopeError> {
        match message.first() {
            None => Err(EnvelopeError::Empty),
            Some(0x90..=0x9f | 0xdc | 0xdd) => decode_sequenced(message),
            Some(b'{') => decode_plain(message),
            Some(&b) => Err(EnvelopeError::UnknownForm(b)),
        }
    }
}

#[derive(serde::Deserialize)]
struct Plain<'a> {
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

fn decode_plain(message: &[u8]) -> Result<Envelope, EnvelopeError> {
    let plain: Plain<'_> = serde_json::from_slice(message)?;
    Ok(Envelope {
        offset: None,
        data: Bytes::copy_from_slice(plain.data.get().as_bytes()),
        id: None,
        published_at_us: None,
        trace: None,
        event: None,
        exclude: None,
        user: None,
        epoch: None,
    })
}

struct Sequenced {
    version: u8,
    offset: u64,
    data: Vec<u8>,
    id: Option<Vec<u8>>,
    published_at_us: Option<u64>,
    trace: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
    exclude: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    epoch: Option<Vec<u8>>,
}

struct SequencedVisitor;

impl<'de> Visitor<'de> for SequencedVisitor {
    type Value = Sequenced;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "[version, offset, data, id?, published_at_us?, traceparent?, event?, exclude?, user?, epoch?]",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sequenced, A::Error> {
        let version = seq
            .next_element::<u8>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let offset = seq
            .next_element::<u64>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let data = seq
            .next_element::<serde_bytes_like::Buf>()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?
            .0;
        let id = seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0);
        let published_at_us = match id {
            Some(_) => seq.next_element::<u64>()?,
            None => None,
        };
        let trace = match published_at_us {
            Some(_) => seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0),
            None => None,
        };
        let event = match trace {
            Some(_) => seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0),
            None => None,
        };
        let exclude = match event {
            Some(_) => seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0),
            None => None,
        };
        let user = match exclude {
            Some(_) => seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0),
            None => None,
        };
        let epoch = match user {
            Some(_) => seq.next_element::<serde_bytes_like::Buf>()?.map(|b| b.0),
            None => None,
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Sequenced {
            version,
            offset,
            data,
            id,
            published_at_us,
            trace,
            event,
            exclude,
            user,
            epoch,
        })
    }
}

/// Lua strings arrive as MessagePack str or bin; take either as bytes.
mod serde_bytes_like {
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, Visitor};

    pub(super) struct Buf(pub(super) Vec<u8>);

    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Buf, E> {
                    Ok(Buf(v.as_bytes().to_vec()))
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Buf, E> {
                    Ok(Buf(v.to_vec()))
                }
            }
            d.deserialize_any(V)
        }
    }
}

fn decode_sequenced(message: &[u8]) -> Result<Envelope, EnvelopeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(message);
    let s = de.deserialize_seq(SequencedVisitor)?;
    if s.version != VERSION {
        return Err(EnvelopeError::Version(s.version));
    }
    serde_json::from_slice::<IgnoredAny>(&s.data)?;
    let id = match s.id.as_deref() {
        None | Some(b"") => None,
        Some(raw) => Some(
            std::str::from_utf8(raw)
                .ok()
                .and_then(|t| uuid::Uuid::parse_str(t).ok())
                .ok_or(EnvelopeError::BadId)?,
        ),
    };
    Ok(Envelope {
        offset: Some(s.offset),
        data: Bytes::from(s.data),
        id,
        published_at_us: s.published_at_us,
        trace: s
            .trace
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(crate::TraceParent::parse),
        event: s
            .event
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| crate::EventName::parse(t).ok()),
        exclude: s
            .exclude
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(crate::ConnAddress::parse),
        user: s
            .user
            .filter(|u| !u.is_empty())
            .and_then(|u| String::from_utf8(u).ok()),
        epoch: s
            .epoch
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| crate::Epoch::parse(t).ok()),
    })
}

#[cfg(test)]
mod tests;

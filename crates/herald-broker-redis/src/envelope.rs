//! Publications as Redis carries them: the envelope (`herald_protocol::envelope`) of a
//! channel's message, and a cache channel's kept one.

use herald_broker::{BrokerError, History, Publication, Published};
use herald_protocol::{ChannelName, Epoch, MessageId};

use crate::resp::Value;

/// The publication an envelope of `channel` carries.
pub(crate) fn publication(
    channel: ChannelName,
    e: herald_protocol::envelope::Envelope,
) -> Publication {
    Publication {
        channel,
        data: e.data,
        offset: e.offset,
        id: e.id.map_or_else(MessageId::new, MessageId),
        published_at_us: e.published_at_us,
        trace: e.trace,
        event: e.event,
        exclude: e.exclude,
        user: e.user,
        epoch: e.epoch,
        // Herald's nodes always give an id: without one, an application called PUBLISH or the
        // function itself.
        direct: e.id.is_none(),
    }
}

/// The reply to `GET last:{channel}`: the cache channel's last publication, if any.
pub(crate) fn last_of(
    channel: &ChannelName,
    reply: Value,
) -> Result<Option<Publication>, BrokerError> {
    match reply {
        Value::Bulk(None) => Ok(None),
        Value::Bulk(Some(bytes)) => herald_protocol::envelope::Envelope::decode(&bytes)
            .map(|e| Some(publication(channel.clone(), e)))
            .map_err(|e| BrokerError::Malformed(Box::new(e))),
        Value::Error(message) => Err(BrokerError::Refused(message)),
        _ => Err(BrokerError::Unexpected("GET")),
    }
}

/// The reply to `herald_publish_position`: `{offset, epoch}`.
pub(crate) fn position_of(id: MessageId, reply: &Value) -> Option<Published> {
    let Value::Array(Some(items)) = reply else {
        return None;
    };
    let offset = match items.first()? {
        Value::Int(n) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    let epoch = match items.get(1)? {
        Value::Bulk(Some(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|e| Epoch::parse(e).ok()),
        _ => None,
    };
    Some(Published {
        id,
        offset: Some(offset),
        epoch,
    })
}

/// The reply to `herald_history`: `{offset, epoch, envelope...}`.
pub(crate) fn history_of(channel: &ChannelName, reply: Value) -> Result<History, BrokerError> {
    let items = match reply {
        Value::Array(Some(items)) if items.len() >= 2 => items,
        Value::Error(message) => return Err(BrokerError::Refused(message)),
        _ => return Err(BrokerError::Unexpected("FCALL herald_history")),
    };
    let mut items = items.into_iter();
    let offset = match items.next() {
        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
        _ => return Err(BrokerError::Unexpected("FCALL herald_history")),
    };
    let epoch = match items.next() {
        Some(Value::Bulk(Some(b))) => std::str::from_utf8(&b)
            .ok()
            .and_then(|e| Epoch::parse(e).ok()),
        _ => None,
    };
    let publications = items
        .map(|item| match item {
            Value::Bulk(Some(bytes)) => herald_protocol::envelope::Envelope::decode(&bytes)
                .map(|e| publication(channel.clone(), e))
                .map_err(|e| BrokerError::Malformed(Box::new(e))),
            _ => Err(BrokerError::Unexpected("FCALL herald_history")),
        })
        .collect::<Result<_, _>>()?;
    Ok(History {
        offset,
        epoch,
        publications,
    })
}

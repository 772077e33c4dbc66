//! Publications as Redis carries them: the envelope (`herald_protocol::envelope`) of a
//! channel's message, and a cache channel's kept one.

use herald_broker::{BrokerError, Publication};
use herald_protocol::{ChannelName, MessageId};

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

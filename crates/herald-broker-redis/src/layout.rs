//! Where Herald keeps things in Redis, and the function that sequences publications.
//!
//! For a channel `news` and the prefix `herald:`:
//!
//! - `herald:seq:{news}`: the channel's last offset (a counter, refreshed to a TTL on each
//!   publication);
//! - `herald:ch:{news}`: the pub/sub channel its publications travel on.
//!
//! Both carry the hash tag `{news}`, so they live in one cluster slot and the function may
//! touch both atomically.

use bytes::{Bytes, BytesMut};
use herald_broker::{HistoryQuery, PublishMeta};
use herald_protocol::{
    envelope::{Field, OPTIONAL},
    ChannelName, Epoch, MessageId,
};

use crate::resp;

/// Which of the library's functions publishes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PublishFunction {
    /// `herald_publish`: PUBLISH, standalone Redis.
    Plain,
    /// `herald_spublish`: SPUBLISH, Redis Cluster.
    Sharded,
}

/// The Redis function library Herald installs (`FUNCTION LOAD REPLACE`) on connecting.
///
/// `herald_publish` takes the sequence key and the pub/sub channel as keys, and the data (JSON
/// text), an optional message id, the sequence key's TTL in seconds, an optional W3C
/// `traceparent`, an optional event name, an optional connection to leave out and an optional
/// sender's user id as arguments. It increments the offset and publishes
/// `[1, offset, data, id, published_at_us, traceparent, event, exclude, user]` as MessagePack
/// (`published_at_us` is Redis' clock in microseconds; the last four are there only as far
/// as given), atomically, and returns the offset. With a third key (a cache channel's
/// `last:{channel}`), the message also stays there for 30 minutes.
pub(crate) const LIBRARY: &str = include_str!("functions/herald_v1.lua");

/// Key and channel names under a prefix.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    prefix: String,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The sequence key of `channel`.
    pub(crate) fn seq_key(&self, channel: &ChannelName) -> String {
        format!("{}seq:{{{channel}}}", self.prefix)
    }

    /// Where a cache channel's last publication stays (same hash tag as its other keys).
    pub(crate) fn last_key(&self, channel: &ChannelName) -> String {
        format!("{}last:{{{channel}}}", self.prefix)
    }

    /// The pub/sub channel of `channel`.
    pub(crate) fn pubsub_channel(&self, channel: &ChannelName) -> String {
        format!("{}ch:{{{channel}}}", self.prefix)
    }

    /// The `FCALL` that sequences and publishes `data` in `channel`; `ttl` is the offset key's
    /// lifetime in seconds, as text; `trace` rides in the envelope when given.
    pub(crate) fn publish_command(
        &self,
        function: PublishFunction,
        channel: &ChannelName,
        data: &[u8],
        id: MessageId,
        ttl: &[u8],
        meta: &PublishMeta,
    ) -> Bytes {
        let name: &[u8] = match function {
            PublishFunction::Plain => b"herald_publish_position",
            PublishFunction::Sharded => b"herald_spublish_position",
        };
        let (seq, pubsub, id) = (
            self.seq_key(channel),
            self.pubsub_channel(channel),
            id.to_string(),
        );
        let mut command = BytesMut::with_capacity(160 + data.len() + seq.len() * 3);
        let exclude = meta.exclude.map(|a| a.to_string());
        // A cache channel's function call names a third key: where its last publication stays.
        let last = meta.cache.then(|| self.last_key(channel));
        let mut parts: Vec<&[u8]> = vec![b"FCALL", name];
        parts.push(if last.is_some() { b"3" } else { b"2" });
        parts.extend([seq.as_bytes(), pubsub.as_bytes()]);
        if let Some(key) = &last {
            parts.push(key.as_bytes());
        }
        parts.extend([data, id.as_bytes(), ttl]);
        // The optional arguments, in the envelope's order (empty when not given).
        let optional = OPTIONAL.map(|field| -> Option<&[u8]> {
            match field {
                Field::TraceParent => meta.trace.as_ref().map(|t| t.as_str().as_bytes()),
                Field::Event => meta.event.as_ref().map(|e| e.as_str().as_bytes()),
                Field::Exclude => exclude.as_deref().map(str::as_bytes),
                Field::User => meta.user.as_deref().map(str::as_bytes),
                _ => unreachable!("{field:?} is not an optional element"),
            }
        });
        parts.extend(optional.iter().map(|o| o.unwrap_or(b"")));
        // The history's bounds: always given (the function's defaults are for direct callers).
        let (size, ttl) = (
            meta.history.size.to_string(),
            meta.history.ttl.as_millis().to_string(),
        );
        parts.extend([size.as_bytes(), ttl.as_bytes()]);
        let parts = &parts[..];
        resp::encode_command(&mut command, parts);
        command.freeze()
    }

    /// `GET` of a cache channel's last publication.
    pub(crate) fn last_command(&self, channel: &ChannelName) -> Bytes {
        let mut command = BytesMut::new();
        resp::encode_command(&mut command, &[b"GET", self.last_key(channel).as_bytes()]);
        command.freeze()
    }

    /// The `FCALL` that starts a new epoch of `channel`'s sequence if `seen` is still its
    /// epoch (`herald_new_epoch`).
    pub(crate) fn new_epoch_command(&self, channel: &ChannelName, seen: &Epoch) -> Bytes {
        let seq = self.seq_key(channel);
        let mut command = BytesMut::new();
        resp::encode_command(
            &mut command,
            &[
                b"FCALL",
                b"herald_new_epoch",
                b"1",
                seq.as_bytes(),
                seen.as_str().as_bytes(),
            ],
        );
        command.freeze()
    }

    /// The `FCALL` that reads `channel`'s history (`herald_history`).
    pub(crate) fn history_command(&self, channel: &ChannelName, query: &HistoryQuery) -> Bytes {
        let seq = self.seq_key(channel);
        let since = query.since.map(|s| s.to_string()).unwrap_or_default();
        let limit = query.limit.to_string();
        let max_age = query.max_age.as_millis().to_string();
        let window = query.window.to_string();
        let reverse: &[u8] = if query.reverse { b"1" } else { b"0" };
        let mut command = BytesMut::new();
        resp::encode_command(
            &mut command,
            &[
                b"FCALL",
                b"herald_history",
                b"1",
                seq.as_bytes(),
                since.as_bytes(),
                limit.as_bytes(),
                reverse,
                max_age.as_bytes(),
                window.as_bytes(),
            ],
        );
        command.freeze()
    }

    /// `PUBSUB CHANNELS` (or `SHARDCHANNELS`) asking for the pub/sub channels of the Herald
    /// channels whose name starts with `prefix`.
    pub(crate) fn occupied_command(&self, sharded: bool, prefix: &str) -> Bytes {
        // Herald channel names hold no glob character; escape anyway, for safety.
        let mut pattern = format!("{}ch:{{", self.prefix);
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let kind: &[u8] = if sharded {
            b"SHARDCHANNELS"
        } else {
            b"CHANNELS"
        };
        let mut command = BytesMut::new();
        resp::encode_command(&mut command, &[b"PUBSUB", kind, pattern.as_bytes()]);
        command.freeze()
    }

    /// The Herald channels named in a `PUBSUB CHANNELS` reply.
    pub(crate) fn channels_in(&self, reply: &crate::resp::Value) -> Option<Vec<ChannelName>> {
        let crate::resp::Value::Array(Some(items)) = reply else {
            return None;
        };
        Some(
            items
                .iter()
                .filter_map(|v| v.as_bytes().and_then(|b| self.channel_of(b)))
                .collect(),
        )
    }

    /// The Herald channel a pub/sub channel carries, if it is one of this prefix's.
    pub(crate) fn channel_of(&self, pubsub: &[u8]) -> Option<ChannelName> {
        let rest = pubsub.strip_prefix(self.prefix.as_bytes())?;
        let inner = rest.strip_prefix(b"ch:{")?.strip_suffix(b"}")?;
        ChannelName::parse(std::str::from_utf8(inner).ok()?).ok()
    }
}

/// Plain or sharded pub/sub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// SUBSCRIBE / UNSUBSCRIBE, one connection to a standalone Redis.
    Plain,
    /// SSUBSCRIBE / SUNSUBSCRIBE, one connection per cluster master.
    Sharded,
}

impl Flavor {
    pub(crate) fn subscribe(self) -> &'static [u8] {
        match self {
            Flavor::Plain => b"SUBSCRIBE",
            Flavor::Sharded => b"SSUBSCRIBE",
        }
    }

    pub(crate) fn unsubscribe(self) -> &'static [u8] {
        match self {
            Flavor::Plain => b"UNSUBSCRIBE",
            Flavor::Sharded => b"SUNSUBSCRIBE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let l = Layout::new("herald:");
        let c = ChannelName::parse("chat:room1").unwrap();
        assert_eq!(l.seq_key(&c), "herald:seq:{chat:room1}");
        assert_eq!(l.pubsub_channel(&c), "herald:ch:{chat:room1}");
        assert_eq!(l.channel_of(l.pubsub_channel(&c).as_bytes()), Some(c));
        assert_eq!(l.channel_of(b"other:ch:{x}"), None);
        assert_eq!(l.channel_of(b"herald:ch:{bad name}"), None);
    }
}

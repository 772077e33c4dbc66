//! The webhook stream, `<prefix>{presence}:webhooks`, read by the nodes' webhook workers: a
//! consumer group per webhook (so that each goes at its own pace), each node a consumer.
//!
//! The presence functions queue member and occupancy events in the same atomic step as the
//! transition, so each is queued once cluster-wide; nodes queue client events. Each entry is
//! one event, `e` = its JSON text. A worker reads new entries for itself (`XREADGROUP`),
//! delivers them, then acknowledges them. An entry stays pending while it is being
//! delivered (and retried); when its worker's node dies, another worker takes it over once it
//! has been idle for a while (`XAUTOCLAIM`). A worker that retries for long keeps its entries
//! by claiming them again ([`RedisPresence::webhook_touch`]), which resets their idle time.
//! The stream keeps about its last 100,000 entries (`XADD ... MAXLEN ~`): a webhook that falls
//! further behind than that loses its oldest events.

use std::time::Duration;

use crate::{
    presence::{integer, unexpected, PresenceError, RedisPresence},
    resp::Value,
};

/// One queued webhook event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEntry {
    /// The stream entry id.
    pub id: String,
    /// The event, JSON text.
    pub event: Vec<u8>,
}

impl RedisPresence {
    /// Queues a webhook event (JSON text), while some node delivers webhooks.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_add(&self, event: &str) -> Result<(), PresenceError> {
        self.fcall("herald_webhook_add", &[event.as_bytes()])
            .await
            .map(drop)
    }

    /// Creates the stream and its consumer group, from the stream's start, unless they exist.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_group(&self, group: &str) -> Result<(), PresenceError> {
        let key = self.webhooks_key.as_bytes();
        let args: [&[u8]; 6] = [
            b"XGROUP",
            b"CREATE",
            key,
            group.as_bytes(),
            b"0",
            b"MKSTREAM",
        ];
        match self.call(&args).await {
            Ok(_) => Ok(()),
            Err(PresenceError::Refused(m)) if m.starts_with("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Up to `count` entries no worker has read yet, now theirs for `consumer`; waits up to
    /// `block` for the first.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses (`NOGROUP` when the stream is
    /// gone: create the group again).
    pub async fn webhook_read(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<WebhookEntry>, PresenceError> {
        let (count, ms) = (count.to_string(), block.as_millis().to_string());
        let args: [&[u8]; 10] = [
            b"XREADGROUP",
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            ms.as_bytes(),
            b"STREAMS",
            self.webhooks_key.as_bytes(),
        ];
        let mut all = args.to_vec();
        all.push(b">");
        let reply = self.call_within(&all, block + self.timeout()).await?;
        match reply {
            Value::Array(None) | Value::Bulk(None) => Ok(Vec::new()),
            Value::Array(Some(streams)) => match streams.into_iter().next() {
                Some(Value::Array(Some(mut stream))) if stream.len() == 2 => {
                    entries(stream.pop().expect("two items"))
                }
                Some(other) => Err(unexpected(&other)),
                None => Ok(Vec::new()),
            },
            other => Err(unexpected(&other)),
        }
    }

    /// Up to `count` entries that other workers read and left unacknowledged for at least
    /// `min_idle` (their node died, or is stuck), now theirs for `consumer`.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_claim(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<WebhookEntry>, PresenceError> {
        let (count, ms) = (count.to_string(), min_idle.as_millis().to_string());
        let args: [&[u8]; 8] = [
            b"XAUTOCLAIM",
            self.webhooks_key.as_bytes(),
            group.as_bytes(),
            consumer.as_bytes(),
            ms.as_bytes(),
            b"0-0",
            b"COUNT",
            count.as_bytes(),
        ];
        let reply = self.call(&args).await?;
        match reply {
            Value::Array(Some(items)) if items.len() >= 2 => {
                entries(items.into_iter().nth(1).expect("two items"))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Removes from the group the consumers other than `consumer` that hold no events and
    /// have not read for `idle` (nodes gone): each node joins the group under its own id, so
    /// without this the group would keep a consumer per node start. Returns how many.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_forget_consumers(
        &self,
        group: &str,
        consumer: &str,
        idle: Duration,
    ) -> Result<usize, PresenceError> {
        let key = self.webhooks_key.as_bytes();
        let reply = self
            .call(&[b"XINFO", b"CONSUMERS", key, group.as_bytes()])
            .await?;
        let Value::Array(Some(consumers)) = reply else {
            return Err(unexpected(&reply));
        };
        let limit = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let mut forgotten = 0;
        for info in consumers {
            let Value::Array(Some(fields)) = info else {
                continue;
            };
            let (mut name, mut pending, mut since) = (None, None, None);
            for kv in fields.chunks_exact(2) {
                match kv[0].as_bytes() {
                    Some(b"name") => name = kv[1].as_bytes().map(<[u8]>::to_vec),
                    Some(b"pending") => pending = integer(&kv[1]).ok(),
                    Some(b"idle") => since = integer(&kv[1]).ok(),
                    _ => {}
                }
            }
            let (Some(name), Some(0), Some(since)) = (name, pending, since) else {
                continue;
            };
            if since >= limit && name != consumer.as_bytes() {
                self.call(&[b"XGROUP", b"DELCONSUMER", key, group.as_bytes(), &name])
                    .await?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    /// Claims `ids` again for `consumer`, which resets their idle time: a worker still retrying
    /// them keeps them from being taken over.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_touch(
        &self,
        group: &str,
        consumer: &str,
        ids: &[String],
    ) -> Result<(), PresenceError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&[u8]> = vec![
            b"XCLAIM",
            self.webhooks_key.as_bytes(),
            group.as_bytes(),
            consumer.as_bytes(),
            b"0",
        ];
        args.extend(ids.iter().map(String::as_bytes));
        args.push(b"JUSTID");
        self.call(&args).await.map(drop)
    }

    /// Acknowledges delivered entries for `group` (other groups may still read them; the
    /// stream's length bound removes them).
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn webhook_ack(&self, group: &str, ids: &[String]) -> Result<(), PresenceError> {
        if ids.is_empty() {
            return Ok(());
        }
        let key = self.webhooks_key.as_bytes();
        let mut ack: Vec<&[u8]> = vec![b"XACK", key, group.as_bytes()];
        ack.extend(ids.iter().map(String::as_bytes));
        self.call(&ack).await.map(drop)
    }
}

/// `[[id, [field, value, ...]], ...]` -> entries with their `e` field. Entries without one
/// (written by something else) are returned with an empty event, to be acknowledged.
fn entries(value: Value) -> Result<Vec<WebhookEntry>, PresenceError> {
    let Value::Array(Some(items)) = value else {
        return Err(unexpected(&value));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(Some(pair)) = &item else {
            return Err(unexpected(&item));
        };
        let (Some(id), fields) = (pair.first().and_then(Value::as_bytes), pair.get(1)) else {
            return Err(unexpected(&item));
        };
        let mut event = Vec::new();
        if let Some(Value::Array(Some(fields))) = fields {
            for kv in fields.chunks_exact(2) {
                if kv[0].as_bytes() == Some(b"e".as_slice()) {
                    event = kv[1].as_bytes().unwrap_or_default().to_vec();
                }
            }
        }
        out.push(WebhookEntry {
            id: String::from_utf8_lossy(id).into_owned(),
            event,
        });
    }
    Ok(out)
}

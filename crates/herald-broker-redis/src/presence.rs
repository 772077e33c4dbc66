//! The cluster presence table in Redis, changed only through atomic functions.
//!
//! For the prefix `herald:`:
//!
//! - `herald:pr:nodes`: a sorted set of gateway nodes, scored by the end of their lease (ms);
//! - `herald:pr:node:<node>`: what a node holds, `<channel>\n<user>` per member;
//! - `herald:pr:n:{<channel>}`: per user, on how many nodes they are in the channel;
//! - `herald:pr:m:{<channel>}`: per user, the info they joined with (JSON text).
//!
//! Every transition is one call of a function of the `herald_presence_v1` library: it changes
//! the table and publishes the join or leave notice into the channel in the same atomic step.
//! Any number of gateways and presence services may call them; only the call that makes a
//! transition publishes, so each join and leave is published exactly once. The functions use
//! keys they compute, so they need a standalone Redis (or a primary with replicas).

use std::time::Duration;

use herald_protocol::{presence::Member, ChannelName, NodeId};
use tokio::sync::Mutex;

use crate::{
    conn::{Conn, Connector, LinkError},
    resp::Value,
    Endpoint, RedisOptions,
};

/// The presence function library, loaded with `FUNCTION LOAD REPLACE` on each connection.
pub(crate) const LIBRARY: &str = r#"#!lua name=herald_presence_v1
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function notice(prefix, channel, kind, user, info)
  redis.call('PUBLISH', prefix .. 'ch:{' .. channel .. '}', cmsgpack.pack({2, kind, user, info}))
end
local function leave(prefix, node, channel, user)
  if redis.call('SREM', prefix .. 'pr:node:' .. node, channel .. '\n' .. user) == 0 then
    return 0
  end
  local nkey = prefix .. 'pr:n:{' .. channel .. '}'
  if redis.call('HINCRBY', nkey, user, -1) > 0 then return 0 end
  redis.call('HDEL', nkey, user)
  local mkey = prefix .. 'pr:m:{' .. channel .. '}'
  local info = redis.call('HGET', mkey, user) or 'null'
  redis.call('HDEL', mkey, user)
  notice(prefix, channel, 'leave', user, info)
  return 1
end
local function gone(prefix, node)
  local key = prefix .. 'pr:node:' .. node
  local left = 0
  for _, entry in ipairs(redis.call('SMEMBERS', key)) do
    local at = string.find(entry, '\n', 1, true)
    left = left + leave(prefix, node, string.sub(entry, 1, at - 1), string.sub(entry, at + 1))
  end
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'pr:nodes', node)
  return left
end
-- args: prefix, node, channel, user, info. 1 joined, 0 already a member, -1 unknown node.
redis.register_function('herald_presence_join', function(keys, args)
  local prefix, node, channel, user, info = args[1], args[2], args[3], args[4], args[5]
  if not redis.call('ZSCORE', prefix .. 'pr:nodes', node) then return -1 end
  if redis.call('SADD', prefix .. 'pr:node:' .. node, channel .. '\n' .. user) == 0 then
    return 0
  end
  if redis.call('HINCRBY', prefix .. 'pr:n:{' .. channel .. '}', user, 1) > 1 then return 0 end
  redis.call('HSET', prefix .. 'pr:m:{' .. channel .. '}', user, info)
  notice(prefix, channel, 'join', user, info)
  return 1
end)
-- args: prefix, node, channel, user. 1 left, 0 still a member elsewhere or not a member here.
redis.register_function('herald_presence_leave', function(keys, args)
  return leave(args[1], args[2], args[3], args[4])
end)
-- args: prefix, node, lease ms. 1 when the node was known, 0 when it must report again.
redis.register_function('herald_presence_heartbeat', function(keys, args)
  local nodes = args[1] .. 'pr:nodes'
  local known = redis.call('ZSCORE', nodes, args[2])
  redis.call('ZADD', nodes, now_ms() + tonumber(args[3]), args[2])
  if known then return 1 end
  return 0
end)
-- args: prefix, node. The node left for good: its members leave now. Returns the leaves.
redis.register_function('herald_presence_gone', function(keys, args)
  return gone(args[1], args[2])
end)
-- args: prefix. Nodes whose lease ran out are gone. Returns {nodes, leaves}.
redis.register_function('herald_presence_expire', function(keys, args)
  local prefix = args[1]
  local dead = redis.call('ZRANGE', prefix .. 'pr:nodes', '-inf', now_ms(), 'BYSCORE')
  local left = 0
  for _, node in ipairs(dead) do left = left + gone(prefix, node) end
  return {#dead, left}
end)
"#;

/// Why a presence call failed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// Redis could not be reached or did not answer in time.
    #[error("presence store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error.
    #[error("presence store refused: {0}")]
    Refused(String),
}

impl From<LinkError> for PresenceError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Refused { message, .. } => Self::Refused(message),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// What a join did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user became a member: the join was published.
    Joined,
    /// The user was already a member (elsewhere, or reported twice).
    AlreadyMember,
    /// The table does not know the node (its lease ran out): heartbeat, then report again.
    UnknownNode,
}

/// A client of the presence table in Redis. One connection, used by one call at a time,
/// reopened after any failure.
pub struct RedisPresence {
    endpoint: Endpoint,
    connector: Connector,
    prefix: String,
    conn: Mutex<Option<Conn>>,
}

impl RedisPresence {
    /// A client for the first endpoint of `options`; connects on first use.
    ///
    /// # Panics
    /// When `options.endpoints` is empty.
    pub fn new(options: &RedisOptions) -> Self {
        Self {
            endpoint: options.endpoints.first().expect("one endpoint").clone(),
            connector: options.connector(),
            prefix: options.prefix.clone(),
            conn: Mutex::new(None),
        }
    }

    async fn call(&self, args: &[&[u8]]) -> Result<Value, PresenceError> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            let mut conn = self.connector.open(&self.endpoint).await?;
            let reply = conn
                .call(
                    &[b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY.as_bytes()],
                    self.connector.timeout,
                )
                .await?;
            crate::conn::ok_or_refused("FUNCTION LOAD", reply)?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("opened above");
        match conn.call(args, self.connector.timeout).await {
            Ok(Value::Error(message)) => Err(PresenceError::Refused(message)),
            Ok(v) => Ok(v),
            Err(e) => {
                *slot = None;
                Err(e.into())
            }
        }
    }

    async fn fcall(&self, function: &str, args: &[&[u8]]) -> Result<Value, PresenceError> {
        let mut all: Vec<&[u8]> = vec![b"FCALL", function.as_bytes(), b"0", self.prefix.as_bytes()];
        all.extend_from_slice(args);
        self.call(&all).await
    }

    /// `node` reports that `user` entered `channel` there, with `info` (JSON text).
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn join(
        &self,
        node: NodeId,
        channel: &ChannelName,
        user: &str,
        info: &[u8],
    ) -> Result<JoinOutcome, PresenceError> {
        let node = node.to_string();
        let reply = self
            .fcall(
                "herald_presence_join",
                &[
                    node.as_bytes(),
                    channel.as_str().as_bytes(),
                    user.as_bytes(),
                    info,
                ],
            )
            .await?;
        Ok(match integer(&reply)? {
            1 => JoinOutcome::Joined,
            -1 => JoinOutcome::UnknownNode,
            _ => JoinOutcome::AlreadyMember,
        })
    }

    /// `node` reports that `user` left `channel` there. True when that was their last node.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn leave(
        &self,
        node: NodeId,
        channel: &ChannelName,
        user: &str,
    ) -> Result<bool, PresenceError> {
        let node = node.to_string();
        let reply = self
            .fcall(
                "herald_presence_leave",
                &[
                    node.as_bytes(),
                    channel.as_str().as_bytes(),
                    user.as_bytes(),
                ],
            )
            .await?;
        Ok(integer(&reply)? == 1)
    }

    /// Renews `node`'s lease for `lease`. False when the table did not know the node: it must
    /// report all its members again.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn heartbeat(&self, node: NodeId, lease: Duration) -> Result<bool, PresenceError> {
        let node = node.to_string();
        let ms = lease.as_millis().to_string();
        let reply = self
            .fcall(
                "herald_presence_heartbeat",
                &[node.as_bytes(), ms.as_bytes()],
            )
            .await?;
        Ok(integer(&reply)? == 1)
    }

    /// `node` is leaving for good: its members leave now. Returns how many left the channel.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn node_gone(&self, node: NodeId) -> Result<u64, PresenceError> {
        let node = node.to_string();
        let reply = self
            .fcall("herald_presence_gone", &[node.as_bytes()])
            .await?;
        Ok(u64::try_from(integer(&reply)?).unwrap_or(0))
    }

    /// Removes every node whose lease ran out, and their members. Returns (nodes, leaves).
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn expire(&self) -> Result<(u64, u64), PresenceError> {
        let reply = self.fcall("herald_presence_expire", &[]).await?;
        match reply {
            Value::Array(Some(items)) if items.len() == 2 => Ok((
                u64::try_from(integer(&items[0])?).unwrap_or(0),
                u64::try_from(integer(&items[1])?).unwrap_or(0),
            )),
            other => Err(unexpected(&other)),
        }
    }

    /// Every member of `channel`, in user id order.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, PresenceError> {
        let key = format!("{}pr:m:{{{channel}}}", self.prefix);
        let reply = self.call(&[b"HGETALL", key.as_bytes()]).await?;
        let Value::Array(Some(items)) = reply else {
            return Err(unexpected(&reply));
        };
        let mut members = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            let (Some(user), Some(info)) = (pair[0].as_bytes(), pair[1].as_bytes()) else {
                return Err(unexpected(&pair[0]));
            };
            members.push(Member {
                user: String::from_utf8_lossy(user).into_owned(),
                info: serde_json::from_slice(info).unwrap_or(serde_json::Value::Null),
            });
        }
        members.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(members)
    }

    /// How many members `channel` has.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn count(&self, channel: &ChannelName) -> Result<u64, PresenceError> {
        let key = format!("{}pr:m:{{{channel}}}", self.prefix);
        let reply = self.call(&[b"HLEN", key.as_bytes()]).await?;
        Ok(u64::try_from(integer(&reply)?).unwrap_or(0))
    }
}

fn integer(v: &Value) -> Result<i64, PresenceError> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(unexpected(other)),
    }
}

fn unexpected(v: &Value) -> PresenceError {
    PresenceError::Refused(format!("unexpected reply {v:?}"))
}

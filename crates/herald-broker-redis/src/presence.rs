//! The cluster presence table in Redis, changed only through atomic functions.
//!
//! For the prefix `herald:`, every key carries the hash tag `{presence}`, so that on a Redis
//! Cluster the whole table lives in one slot and the functions stay atomic:
//!
//! - `herald:{presence}:nodes`: a sorted set of gateway nodes, scored by the end of their
//!   lease (ms);
//! - `herald:{presence}:node:<node>`: what a node holds, `<channel>\n<user>` per member;
//! - `herald:{presence}:n:<channel>`: per user, on how many nodes they are in the channel;
//! - `herald:{presence}:m:<channel>`: per user, the info they joined with (JSON text);
//! - `herald:{presence}:occ:<node>`: the channels a node has subscribers in;
//! - `herald:{presence}:occ`: per channel, on how many nodes it has subscribers;
//! - `herald:{presence}:subs:<node>`: per channel, how many of a node's connections are
//!   subscribed (updated by the node every 0.1 s at most, summed over live nodes on query);
//! - `herald:{presence}:hooks`: present while some node delivers webhooks (set with its
//!   heartbeat, for the length of its lease);
//! - `herald:{presence}:webhooks`: a stream of webhook events (member added and removed,
//!   channel occupied and vacated, client events), written only while `hooks` exists, read
//!   by the nodes' webhook workers as one consumer group (see [`crate::webhooks`]).
//!
//! Every transition is one call of a function of the `herald_presence_v1` library: it changes
//! the table and publishes the join or leave notice in the same atomic step. Any number of
//! gateways and presence services may call them; only the call that makes a transition
//! publishes, so each join and leave is published (and queued as a webhook) exactly once. On a standalone Redis the
//! notice goes into the channel's own pub/sub channel (`[2, kind, user, info]`). On a Redis
//! Cluster a function may not publish into another slot's shard channel, so every notice goes
//! to one classic pub/sub channel, `herald:{presence}:events`, as `[2, kind, user, info,
//! channel]`; Redis Cluster delivers classic PUBLISH to subscribers on every node.

mod link;

use std::time::Duration;

use herald_protocol::{presence::Member, ChannelName, NodeId};
use tokio::sync::Mutex;

use crate::{
    conn::{Connector, LinkError},
    resp::Value,
    RedisOptions,
};
use link::Link;

/// The presence function library, loaded with `FUNCTION LOAD REPLACE` on each connection.
///
/// Every function is called as `FCALL <name> 1 <prefix>{presence}:nodes <prefix> <mode> ...`:
/// the key routes the call to the table's slot on a cluster, and `mode` (`standalone` or
/// `cluster`) says where notices go.
pub(crate) const LIBRARY: &str = include_str!("functions/herald_presence_v1.lua");

/// The classic pub/sub channel that carries every presence notice on a Redis Cluster.
pub(crate) fn events_channel(prefix: &str) -> String {
    format!("{prefix}{{presence}}:events")
}

/// Why a presence call failed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// Redis could not be reached or did not answer in time.
    #[error("presence store unavailable: {0}")]
    Unavailable(#[source] LinkError),
    /// The table's slot moved again while the call followed it (a cluster resharding).
    #[error("presence store unavailable: the presence table's slot is moving")]
    Moving,
    /// Redis answered with an error: its text.
    #[error("presence store refused: {0}")]
    Refused(String),
    /// Redis answered with something no function of the library returns.
    #[error("presence store refused: unexpected reply {0}")]
    Unexpected(String),
}

impl From<LinkError> for PresenceError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Refused { message, .. } => Self::Refused(message),
            other => Self::Unavailable(other),
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

/// Where the presence table lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableMode {
    /// One Redis: notices go into each channel's pub/sub channel.
    Standalone,
    /// A Redis Cluster: the table lives in the `{presence}` slot, notices go to the events
    /// channel.
    Cluster,
}

impl TableMode {
    fn as_arg(self) -> &'static [u8] {
        match self {
            TableMode::Standalone => b"standalone",
            TableMode::Cluster => b"cluster",
        }
    }
}

/// A client of the presence table in Redis. One connection, used by one call at a time,
/// reopened after any failure. On a cluster it follows `MOVED` to the master of the table's
/// slot, and tries the next seed when a node is unreachable.
pub struct RedisPresence {
    connector: Connector,
    prefix: String,
    mode: TableMode,
    nodes_key: String,
    pub(crate) webhooks_key: String,
    link: Mutex<Link>,
}

impl RedisPresence {
    /// A client for the endpoints of `options` (the first, for a standalone Redis; the seeds,
    /// for a cluster); connects on first use.
    ///
    /// # Panics
    /// When `options.endpoints` is empty.
    pub fn new(options: &RedisOptions, mode: TableMode) -> Self {
        assert!(!options.endpoints.is_empty(), "one endpoint");
        Self {
            connector: options.connector(),
            prefix: options.prefix.clone(),
            mode,
            nodes_key: format!("{}{{presence}}:nodes", options.prefix),
            webhooks_key: format!("{}{{presence}}:webhooks", options.prefix),
            link: Mutex::new(Link {
                endpoint: 0,
                endpoints: options.endpoints.clone(),
                conn: None,
            }),
        }
    }

    pub(crate) async fn fcall(
        &self,
        function: &str,
        args: &[&[u8]],
    ) -> Result<Value, PresenceError> {
        let mut all: Vec<&[u8]> = vec![
            b"FCALL",
            function.as_bytes(),
            b"1",
            self.nodes_key.as_bytes(),
            self.prefix.as_bytes(),
            self.mode.as_arg(),
        ];
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
        self.heartbeat_with(node, lease, false).await
    }

    /// [`Self::heartbeat`], saying whether the node delivers webhooks: while one does, the
    /// table queues webhook events.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn heartbeat_with(
        &self,
        node: NodeId,
        lease: Duration,
        hooks: bool,
    ) -> Result<bool, PresenceError> {
        let node = node.to_string();
        let ms = lease.as_millis().to_string();
        let mut args: Vec<&[u8]> = vec![node.as_bytes(), ms.as_bytes()];
        if hooks {
            args.push(b"hooks");
        }
        let reply = self.fcall("herald_presence_heartbeat", &args).await?;
        Ok(integer(&reply)? == 1)
    }

    /// `node` has subscribers in `channel` now (`true`), or no longer (`false`). The first
    /// node makes the channel occupied, the last vacates it, each once cluster-wide (a
    /// `channel_occupied` or `channel_vacated` webhook). `Ok(false)` when the table does not
    /// know the node: heartbeat, then report again.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn occupancy(
        &self,
        node: NodeId,
        channel: &ChannelName,
        occupied: bool,
    ) -> Result<bool, PresenceError> {
        let node = node.to_string();
        let function = if occupied {
            "herald_occupancy_enter"
        } else {
            "herald_occupancy_leave"
        };
        let reply = self
            .fcall(function, &[node.as_bytes(), channel.as_str().as_bytes()])
            .await?;
        Ok(integer(&reply)? != -1)
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

    /// `node`'s subscription counts of `counts`' channels now (0: none left). False when the
    /// table does not know the node: heartbeat, then report again.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn set_subscriptions(
        &self,
        node: NodeId,
        counts: &[(ChannelName, usize)],
    ) -> Result<bool, PresenceError> {
        let node = node.to_string();
        // A few hundred pairs per call keep each call short.
        for chunk in counts.chunks(256) {
            let numbers: Vec<String> = chunk.iter().map(|(_, n)| n.to_string()).collect();
            let mut args: Vec<&[u8]> = vec![node.as_bytes()];
            for ((channel, _), n) in chunk.iter().zip(&numbers) {
                args.push(channel.as_str().as_bytes());
                args.push(n.as_bytes());
            }
            let reply = self.fcall("herald_subscriptions_set", &args).await?;
            if integer(&reply)? == -1 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// How many connections, cluster-wide, are subscribed to each of `channels`.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn subscriptions(&self, channels: &[ChannelName]) -> Result<Vec<u64>, PresenceError> {
        let mut counts = Vec::with_capacity(channels.len());
        for chunk in channels.chunks(256) {
            let args: Vec<&[u8]> = chunk.iter().map(|c| c.as_str().as_bytes()).collect();
            let reply = self.fcall("herald_subscriptions_count", &args).await?;
            let Value::Array(Some(items)) = reply else {
                return Err(unexpected(&reply));
            };
            for item in &items {
                counts.push(u64::try_from(integer(item)?).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// Every member of `channel`, in user id order.
    ///
    /// # Errors
    /// [`PresenceError`] when Redis is unreachable or refuses.
    pub async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, PresenceError> {
        let key = format!("{}{{presence}}:m:{channel}", self.prefix);
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
        let key = format!("{}{{presence}}:m:{channel}", self.prefix);
        let reply = self.call(&[b"HLEN", key.as_bytes()]).await?;
        Ok(u64::try_from(integer(&reply)?).unwrap_or(0))
    }
}

pub(crate) fn integer(v: &Value) -> Result<i64, PresenceError> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(unexpected(other)),
    }
}

pub(crate) fn unexpected(v: &Value) -> PresenceError {
    PresenceError::Unexpected(format!("{v:?}"))
}

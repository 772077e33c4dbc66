//! `[channels]` and `[namespaces.<name>]`: who may subscribe and publish, presence, history.

use std::time::Duration;

use herald_broker::HistoryKeep;
use serde::Deserialize;

/// Who may subscribe to a namespace's channels.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubscribePolicy {
    /// Any connection.
    #[default]
    Anyone,
    /// Connections that came with a valid token.
    Authenticated,
    /// Connections granted the channel: listed in their connection token's `channels` claim,
    /// or by a channel token sent with the subscribe request (private channels).
    Token,
}

/// Options of a namespace (and, as `[channels]`, of channels without one).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceConfig {
    /// `subscribe`, default `anyone`: who may subscribe: `anyone`, `authenticated` (a
    /// connection with a valid token) or `token` (a connection granted the channel by a token).
    #[serde(deserialize_with = "herald_config::values::one_of")]
    pub subscribe: SubscribePolicy,
    /// `publish`, default false: whether clients may publish over their WebSocket. The HTTP API
    /// can always publish.
    #[serde(deserialize_with = "herald_config::values::boolean")]
    pub publish: bool,
    /// `presence`, default false: the channels are presence channels. Subscribers must have a
    /// user id; they are members, and receive join and leave pushes.
    #[serde(deserialize_with = "herald_config::values::boolean")]
    pub presence: bool,
    /// `history_size`, default 100 (0 to 10,000; 0: no history): how many of a channel's
    /// latest publications the broker keeps, for clients that read them back (`history`,
    /// `GET /v1/history`). Each costs its envelope in Redis (or in the node's memory, on the
    /// embedded broker), for at most `history_ttl`.
    pub history_size: u32,
    /// `history_ttl`, default `2m` (1s to 24h): how long a publication stays in the history.
    /// Long enough for a client to reconnect after a drain or a network drop; longer costs
    /// memory on busy channels only.
    #[serde(with = "herald_config::values::duration")]
    pub history_ttl: Duration,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            subscribe: SubscribePolicy::default(),
            publish: false,
            presence: false,
            history_size: 100,
            history_ttl: Duration::from_secs(120),
        }
    }
}

impl NamespaceConfig {
    /// The most publications a history may keep.
    pub const MAX_HISTORY_SIZE: u32 = 10_000;

    /// The history its channels keep.
    pub fn history(&self) -> HistoryKeep {
        HistoryKeep {
            size: self.history_size,
            ttl: self.history_ttl,
        }
    }
}

//! The Pusher HTTP API's queries and user routes: `GET /apps/{id}/channels`,
//! `.../channels/{name}`, `.../channels/{name}/users`, and
//! `POST /apps/{id}/users/{user}/terminate_connections`, cluster-wide.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ChannelName, EventName};
use herald_pusher::PusherChannel;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::{refuse, Refused};
use crate::pusher::herald_channel;
use crate::{ctx::NodeCtx, telemetry::PublishPath};
use herald_http::reply::json;

/// The channel attributes `info` asks for.
#[derive(Clone, Copy, Default)]
pub(super) struct Info {
    /// Members of a presence channel.
    user_count: bool,
    /// Connections subscribed, cluster-wide.
    subscription_count: bool,
}

impl Info {
    /// Parses comma-separated attribute lists (`info=user_count,subscription_count`).
    pub(super) fn parse<'a>(
        lists: impl IntoIterator<Item = &'a str>,
        ctx: &NodeCtx,
    ) -> Result<Self, Refused> {
        let mut info = Info::default();
        for list in lists {
            for attribute in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                match attribute {
                    "user_count" => info.user_count = true,
                    "subscription_count" if ctx.config.pusher.subscription_count => {
                        info.subscription_count = true;
                    }
                    "subscription_count" => {
                        return Err(Refused::new(
                            StatusCode::BAD_REQUEST,
                            "subscription_count is off on this server (pusher.subscription_count)",
                        ))
                    }
                    other => {
                        return Err(Refused::new(
                            StatusCode::BAD_REQUEST,
                            format!("unknown info attribute {other:?}"),
                        ))
                    }
                }
            }
        }
        Ok(info)
    }

    fn of_query(query: &[(String, String)], ctx: &NodeCtx) -> Result<Self, Refused> {
        Self::parse(
            query
                .iter()
                .filter(|(k, _)| k == "info")
                .map(|(_, v)| v.as_str()),
            ctx,
        )
    }

    pub(super) fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// The attributes `info` asks for of each of `channels` (`user_count` of presence channels
/// only), cluster-wide.
pub(super) async fn attributes(
    channels: &[ChannelName],
    info: Info,
    ctx: &NodeCtx,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, Response<Full<Bytes>>> {
    let mut all = vec![serde_json::Map::new(); channels.len()];
    if info.subscription_count {
        let counts = ctx
            .presence
            .subscriptions(channels)
            .await
            .map_err(unavailable)?;
        for (attributes, n) in all.iter_mut().zip(counts) {
            attributes.insert("subscription_count".into(), n.into());
        }
    }
    if info.user_count {
        for (attributes, channel) in all.iter_mut().zip(channels) {
            if channel.as_str().starts_with("presence-") {
                let n = ctx.presence.count(channel).await.map_err(unavailable)?;
                attributes.insert("user_count".into(), n.into());
            }
        }
    }
    Ok(all)
}

fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn unavailable(e: impl std::fmt::Display) -> Response<Full<Bytes>> {
    refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// A valid Pusher channel name as a Herald channel.
pub(super) fn pusher_channel(name: &str, ctx: &NodeCtx) -> Result<ChannelName, Refused> {
    let refused = |e: &dyn std::fmt::Display| {
        Refused::new(StatusCode::BAD_REQUEST, format!("channel {name:?}: {e}"))
    };
    let channel = PusherChannel::parse(name).map_err(|e| refused(&e))?;
    herald_channel(&channel, ctx.config.limits.max_channel_length).map_err(|e| refused(&e))
}

/// `GET /apps/{id}/channels`: the occupied channels (with subscribers on any node), optionally
/// only those starting with `filter_by_prefix`, with `user_count` (presence channels) and
/// `subscription_count` when asked.
pub(super) async fn channels(query: &[(String, String)], ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let info = match Info::of_query(query, ctx) {
        Ok(v) => v,
        Err(refused) => return refused.reply(),
    };
    let prefix = query_param(query, "filter_by_prefix").unwrap_or_default();
    if info.user_count && !prefix.starts_with("presence-") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "info=user_count needs filter_by_prefix=presence-",
        );
    }
    let occupied = match ctx.broker.occupied(prefix).await {
        Ok(list) => list,
        Err(e) => return unavailable(e),
    };
    // Pusher's names only: Herald's namespaced channels are not the app's.
    let occupied: Vec<ChannelName> = occupied
        .into_iter()
        .filter(|c| PusherChannel::parse(c.as_str()).is_ok())
        .collect();
    let attributes = match attributes(&occupied, info, ctx).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    // A listed channel is occupied: with counts, one whose count says none is left out, so
    // that the answer never contradicts itself.
    let channels: serde_json::Map<String, serde_json::Value> = occupied
        .iter()
        .zip(attributes)
        .filter(|(_, a)| !info.subscription_count || counted(a) > 0)
        .map(|(channel, a)| (channel.to_string(), a.into()))
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "channels": channels }))
}

/// `GET /apps/{id}/channels/{name}`: whether it is occupied, and its `user_count` and
/// `subscription_count` when asked.
pub(super) async fn channel(
    name: &str,
    query: &[(String, String)],
    ctx: &NodeCtx,
) -> Response<Full<Bytes>> {
    let channel = match pusher_channel(name, ctx) {
        Ok(c) => c,
        Err(refused) => return refused.reply(),
    };
    let info = match Info::of_query(query, ctx) {
        Ok(v) => v,
        Err(refused) => return refused.reply(),
    };
    if info.user_count && !name.starts_with("presence-") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "user_count is only available for presence channels",
        );
    }
    let attributes = match attributes(std::slice::from_ref(&channel), info, ctx).await {
        Ok(mut a) => a.pop().unwrap_or_default(),
        Err(reply) => return reply,
    };
    // With the count asked, `occupied` comes from the same counts, so that one answer never
    // says occupied with no subscriptions, or the reverse; without it, from the broker.
    let occupied = if info.subscription_count {
        counted(&attributes) > 0
    } else {
        match ctx.broker.occupied(channel.as_str()).await {
            Ok(list) => list.contains(&channel),
            Err(e) => return unavailable(e),
        }
    };
    let mut body = serde_json::Map::new();
    body.insert("occupied".into(), occupied.into());
    body.extend(attributes);
    json(StatusCode::OK, &serde_json::Value::Object(body))
}

/// The `subscription_count` among a channel's attributes (0 when absent).
fn counted(attributes: &serde_json::Map<String, serde_json::Value>) -> u64 {
    attributes
        .get("subscription_count")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// `POST /apps/{id}/users/{user}/terminate_connections`: every connection signed in as the
/// user, on every node, is closed with 4009.
pub(super) async fn terminate(user: &str, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let max_len = ctx.config.limits.max_channel_length;
    let channel = match PusherChannel::server_to_user(user)
        .map_err(|e| e.to_string())
        .and_then(|c| herald_channel(&c, max_len).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("user id: {e}")),
    };
    let meta = PublishMeta {
        event: EventName::parse(crate::pusher::TERMINATE).ok(),
        ..Default::default()
    };
    let published = ctx
        .publish(
            channel,
            Bytes::from_static(b"null"),
            PublishPath::Pusher,
            None,
            meta,
        )
        .await;
    match published {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => unavailable(e),
    }
}

/// `GET /apps/{id}/channels/{name}/users`: the members of a presence channel.
pub(super) async fn users(name: &str, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let channel = match pusher_channel(name, ctx) {
        Ok(c) => c,
        Err(refused) => return refused.reply(),
    };
    if !name.starts_with("presence-") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "users are only available for presence channels",
        );
    }
    match ctx.presence.members(&channel).await {
        Ok(members) => {
            let users: Vec<_> = members
                .iter()
                .map(|m| serde_json::json!({"id": m.user}))
                .collect();
            json(StatusCode::OK, &serde_json::json!({ "users": users }))
        }
        Err(e) => unavailable(e),
    }
}

//! The Pusher HTTP API for the configured apps: `POST /apps/{id}/events` and
//! `POST /apps/{id}/batch_events`, requests signed as Pusher's server SDKs sign them. Errors
//! are plain text with Pusher's status codes.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ChannelName, ConnAddress, EventName};
use herald_pusher::{signature::SignedRequest, PusherChannel};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::{config::PusherApp, ctx::NodeCtx, telemetry::PublishPath};
use herald_http::reply::{json, text};

/// At most this many channels per event (Pusher's limit).
const MAX_CHANNELS: usize = 100;
/// At most this many events per batch (Pusher's limit).
const MAX_BATCH: usize = 10;

/// Whether `path` is a Pusher API route (`/apps/...`).
pub(super) fn is_route(path: &str) -> bool {
    path.starts_with("/apps/")
}

#[derive(Deserialize)]
struct BatchBody {
    batch: Vec<EventBody>,
}

#[derive(Deserialize)]
struct EventBody {
    name: String,
    data: serde_json::Value,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

/// A refusal: the status and the text of the reply.
type Refused = (StatusCode, String);

fn refuse(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    text(status, message.into() + "\n")
}

/// The routes under `/apps/{id}/`.
enum Route {
    /// `POST events`.
    Events,
    /// `POST batch_events`.
    Batch,
    /// `GET channels`.
    Channels,
    /// `GET channels/{name}`.
    Channel(String),
    /// `GET channels/{name}/users`.
    Users(String),
    /// `POST users/{id}/terminate_connections`.
    Terminate(String),
}

impl Route {
    fn of(route: &str) -> Option<Self> {
        match route {
            "events" => Some(Self::Events),
            "batch_events" => Some(Self::Batch),
            "channels" => Some(Self::Channels),
            _ if route.starts_with("users/") => {
                let id = route
                    .strip_prefix("users/")?
                    .strip_suffix("/terminate_connections")?;
                let id = percent_encoding::percent_decode_str(id)
                    .decode_utf8()
                    .ok()?;
                (!id.is_empty() && !id.contains('/')).then(|| Self::Terminate(id.into_owned()))
            }
            _ => {
                let rest = route.strip_prefix("channels/")?;
                match rest.split_once('/') {
                    None => Some(Self::Channel(rest.to_owned())),
                    Some((name, "users")) => Some(Self::Users(name.to_owned())),
                    Some(_) => None,
                }
            }
        }
    }
}

/// The channel attributes `info` asks for.
#[derive(Clone, Copy, Default)]
struct Info {
    /// Members of a presence channel.
    user_count: bool,
    /// Connections subscribed, cluster-wide.
    subscription_count: bool,
}

impl Info {
    /// Parses comma-separated attribute lists (`info=user_count,subscription_count`).
    fn parse<'a>(lists: impl IntoIterator<Item = &'a str>, ctx: &NodeCtx) -> Result<Self, Refused> {
        let mut info = Info::default();
        for list in lists {
            for attribute in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                match attribute {
                    "user_count" => info.user_count = true,
                    "subscription_count" if ctx.config.pusher.subscription_count => {
                        info.subscription_count = true;
                    }
                    "subscription_count" => {
                        return Err((
                            StatusCode::BAD_REQUEST,
                            "subscription_count is off on this server (pusher.subscription_count)"
                                .into(),
                        ))
                    }
                    other => {
                        return Err((
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

    fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// The attributes `info` asks for of each of `channels` (`user_count` of presence channels
/// only), cluster-wide.
async fn attributes(
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
fn pusher_channel(name: &str, ctx: &NodeCtx) -> Result<ChannelName, Refused> {
    PusherChannel::parse(name)
        .map_err(|e| e.to_string())
        .and_then(|c| crate::pusher::herald_channel(&c, ctx.config.limits.max_channel_length))
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("channel {name:?}: {e}")))
}

/// `GET /apps/{id}/channels`: the occupied channels (with subscribers on any node), optionally
/// only those starting with `filter_by_prefix`, with `user_count` (presence channels) and
/// `subscription_count` when asked.
async fn channels(query: &[(String, String)], ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let info = match Info::of_query(query, ctx) {
        Ok(v) => v,
        Err((status, message)) => return refuse(status, message),
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
async fn channel(name: &str, query: &[(String, String)], ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let channel = match pusher_channel(name, ctx) {
        Ok(c) => c,
        Err((status, message)) => return refuse(status, message),
    };
    let info = match Info::of_query(query, ctx) {
        Ok(v) => v,
        Err((status, message)) => return refuse(status, message),
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
async fn terminate(user: &str, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let channel = match PusherChannel::server_to_user(user)
        .map_err(|e| e.to_string())
        .and_then(|c| crate::pusher::herald_channel(&c, ctx.config.limits.max_channel_length))
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
async fn users(name: &str, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let channel = match pusher_channel(name, ctx) {
        Ok(c) => c,
        Err((status, message)) => return refuse(status, message),
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

/// Answers a request to `/apps/...`.
pub(super) async fn answer(req: Request<Incoming>, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let rest = path.trim_start_matches("/apps/");
    let Some((id, route)) = rest.split_once('/') else {
        return refuse(StatusCode::NOT_FOUND, "no such route");
    };
    let Some(app) = ctx.config.pusher.apps.iter().find(|a| a.id == id) else {
        return refuse(StatusCode::NOT_FOUND, format!("unknown app {id:?}"));
    };
    let Some(route) = Route::of(route) else {
        return refuse(StatusCode::NOT_FOUND, "no such route");
    };
    let wanted = match route {
        Route::Events | Route::Batch | Route::Terminate(_) => http::Method::POST,
        _ => http::Method::GET,
    };
    if req.method() != wanted {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, format!("{wanted} only"));
    }
    let method = req.method().as_str().to_owned();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let limit = ctx.config.api.max_body_size;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {limit} bytes"),
            )
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signed = SignedRequest {
        method: &method,
        path: &path,
        query: &query,
        body: &body,
    };
    let window = ctx.config.pusher.timestamp_window.as_secs();
    if let Err(e) = signed.verify(&app.key, &app.secret, now, window) {
        ctx.metrics.families.auth_failures.inc("signature");
        return refuse(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let batch = match route {
        Route::Events => false,
        Route::Batch => true,
        Route::Channels => return channels(&query, ctx).await,
        Route::Channel(name) => return channel(&name, &query, ctx).await,
        Route::Users(name) => return users(&name, ctx).await,
        Route::Terminate(user) => return terminate(&user, ctx).await,
    };
    let bodies = if !batch {
        serde_json::from_slice::<EventBody>(&body).map(|b| vec![b])
    } else {
        serde_json::from_slice::<BatchBody>(&body).map(|b| b.batch)
    };
    let bodies = match bodies {
        Ok(b) if (1..=MAX_BATCH).contains(&b.len()) => b,
        Ok(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("a batch holds 1 to {MAX_BATCH} events"),
            )
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    // Every event is checked before any is published: a bad batch publishes nothing.
    let mut checked = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.into_iter().enumerate() {
        match check(body, app, ctx) {
            Ok(event) => checked.push(event),
            Err((status, message)) if !batch => return refuse(status, message),
            Err((status, message)) => return refuse(status, format!("batch[{i}]: {message}")),
        }
    }
    if !ctx.broker.is_ready() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "broker unavailable");
    }
    // `info`: the attributes of the channels published to, after publishing.
    let asked: Vec<(Info, Vec<ChannelName>)> = checked
        .iter()
        .map(|c| (c.info, c.channels.clone()))
        .collect();
    for event in checked {
        if let Err((status, message)) = publish(event, ctx).await {
            return refuse(status, message);
        }
    }
    if !asked.iter().any(|(info, _)| info.any()) {
        return json(StatusCode::OK, &serde_json::json!({}));
    }
    let mut replies = Vec::with_capacity(asked.len());
    for (info, channels) in &asked {
        match attributes(channels, *info, ctx).await {
            Ok(a) => replies.push((channels, a)),
            Err(reply) => return reply,
        }
    }
    let reply = if batch {
        // One channel per batched event: its attributes, in order.
        let list: Vec<serde_json::Value> = replies
            .into_iter()
            .map(|(_, a)| a.into_iter().next().unwrap_or_default().into())
            .collect();
        serde_json::json!({ "batch": list })
    } else {
        let channels: serde_json::Map<String, serde_json::Value> = replies
            .into_iter()
            .flat_map(|(channels, a)| {
                channels
                    .iter()
                    .map(|c| crate::pusher::pusher_name(c).into_owned())
                    .zip(a.into_iter().map(serde_json::Value::from))
            })
            .collect();
        serde_json::json!({ "channels": channels })
    };
    json(StatusCode::OK, &reply)
}

/// One event, checked and ready to publish.
struct Checked {
    event: EventName,
    data: Bytes,
    channels: Vec<ChannelName>,
    exclude: Option<ConnAddress>,
    /// The channel attributes the reply carries.
    info: Info,
}

/// Checks one event: its name, data, channels (at most 100) and `socket_id`.
fn check(body: EventBody, app: &PusherApp, ctx: &NodeCtx) -> Result<Checked, Refused> {
    let bad = |message: &str| (StatusCode::BAD_REQUEST, message.to_owned());
    let event = EventName::parse(&body.name)
        .map_err(|_| bad("name must be 1 to 200 bytes without control characters"))?;
    if body.name.starts_with("pusher:") || body.name.starts_with("pusher_internal:") {
        return Err(bad("event names starting with pusher: are reserved"));
    }
    // `socket_id`: the connection that triggered this (usually through the app's server)
    // does not get it.
    let exclude = match body.socket_id.as_deref().map(ConnAddress::parse) {
        None => None,
        Some(Some(address)) => Some(address),
        Some(None) => return Err(bad("invalid socket_id")),
    };
    let info = Info::parse(body.info.as_deref(), ctx)?;
    // Pusher's SDKs send data as a string (usually of JSON); it reaches Pusher clients as that
    // string and native clients as a JSON string.
    let data = match &body.data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let max = app
        .max_event_size
        .unwrap_or(ctx.config.pusher.max_event_size);
    if data.len() > max {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("data is {} bytes, over the limit of {max}", data.len()),
        ));
    }
    let names = match (body.channels, body.channel) {
        (Some(list), None) => list,
        (None, Some(one)) => vec![one],
        _ => return Err(bad("give channels or channel, not both")),
    };
    if names.is_empty() || names.len() > MAX_CHANNELS {
        return Err(bad(&format!("1 to {MAX_CHANNELS} channels per event")));
    }
    let mut channels = Vec::with_capacity(names.len());
    for name in &names {
        channels.push(pusher_channel(name, ctx)?);
    }
    let data = Bytes::from(serde_json::to_string(&data).expect("strings always serialise"));
    Ok(Checked {
        event,
        data,
        channels,
        exclude,
        info,
    })
}

/// Publishes one checked event on each of its channels.
async fn publish(checked: Checked, ctx: &NodeCtx) -> Result<(), Refused> {
    for channel in checked.channels {
        let meta = PublishMeta {
            event: Some(checked.event.clone()),
            exclude: checked.exclude,
            ..Default::default()
        };
        let published = ctx
            .publish(
                channel,
                checked.data.clone(),
                PublishPath::Pusher,
                None,
                meta,
            )
            .await;
        if let Err(e) = published {
            let status = match e {
                herald_broker::BrokerError::Uncertain(_) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return Err((status, e.to_string()));
        }
    }
    Ok(())
}

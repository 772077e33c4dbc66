//! The Pusher HTTP API for the configured apps, requests signed as Pusher's server SDKs sign
//! them: the routing, and `POST /apps/{id}/events` and `.../batch_events` here; the channel
//! and user queries in [`queries`]. Errors are plain text with Pusher's status codes.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ChannelName, ConnAddress, EventName};
use herald_pusher::signature::SignedRequest;
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

mod queries;

use queries::{attributes, channel, channels, pusher_channel, terminate, users, Info};

/// Whether `path` is a Pusher API route (`/apps/...`).
pub(crate) fn is_route(path: &str) -> bool {
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

/// A refusal of the Pusher HTTP API: the status and the text of the reply.
#[derive(Debug)]
pub(super) struct Refused {
    status: StatusCode,
    message: String,
}

impl Refused {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The reply.
    pub(super) fn reply(self) -> Response<Full<Bytes>> {
        text(self.status, self.message + "\n")
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    Refused::new(status, message).reply()
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

/// Answers a request to `/apps/...`.
pub(crate) async fn answer(req: Request<Incoming>, ctx: &NodeCtx) -> Response<Full<Bytes>> {
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
            Err(refused) if !batch => return refused.reply(),
            Err(refused) => {
                let message = format!("batch[{i}]: {}", refused.message);
                return refuse(refused.status, message);
            }
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
        if let Err(refused) = publish(event, ctx).await {
            return refused.reply();
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
    let bad = |message: &str| Refused::new(StatusCode::BAD_REQUEST, message);
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
        return Err(Refused::new(
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
            return Err(Refused::new(status, e.to_string()));
        }
    }
    Ok(())
}

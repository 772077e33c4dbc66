//! The Pusher HTTP API for the configured apps: `POST /apps/{id}/events`, requests signed as
//! Pusher's server SDKs sign them. Errors are plain text with Pusher's status codes.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ChannelName, ConnAddress, EventName};
use herald_pusher::{signature::SignedRequest, PusherChannel};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::{node::NodeCtx, telemetry::PublishPath};
use herald_http::reply::{json, text};

/// At most this many channels per event (Pusher's limit).
const MAX_CHANNELS: usize = 100;

/// Whether `path` is a Pusher API route (`/apps/...`).
pub(super) fn is_route(path: &str) -> bool {
    path.starts_with("/apps/")
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

fn refuse(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    text(status, message.into() + "\n")
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
    if route != "events" {
        return refuse(StatusCode::NOT_FOUND, "no such route");
    }
    if req.method() != http::Method::POST {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "POST only");
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
    events(&body, ctx).await
}

/// `POST /apps/{id}/events`: one event on up to 100 channels.
async fn events(body: &[u8], ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let body: EventBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    let Ok(event) = EventName::parse(&body.name) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "name must be 1 to 200 bytes without control characters",
        );
    };
    // `socket_id`: the connection that triggered this (usually through the app's server)
    // does not get it.
    let exclude = match body.socket_id.as_deref().map(ConnAddress::parse) {
        None => None,
        Some(Some(address)) => Some(address),
        Some(None) => return refuse(StatusCode::BAD_REQUEST, "invalid socket_id"),
    };
    if body.info.is_some() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "info (channel attributes in the reply) is not supported by this server yet",
        );
    }
    // Pusher's SDKs send data as a string (usually of JSON); it reaches Pusher clients as that
    // string and native clients as a JSON string.
    let data = match &body.data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let max = ctx.config.pusher.max_event_size;
    if data.len() > max {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("data is {} bytes, over the limit of {max}", data.len()),
        );
    }
    let names = match (body.channels, body.channel) {
        (Some(list), None) => list,
        (None, Some(one)) => vec![one],
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "give channels or channel, not both",
            )
        }
    };
    if names.is_empty() || names.len() > MAX_CHANNELS {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("1 to {MAX_CHANNELS} channels per event"),
        );
    }
    let mut channels = Vec::with_capacity(names.len());
    for name in &names {
        let checked = PusherChannel::parse(name)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                ChannelName::parse_with_max(c.as_str(), ctx.config.limits.max_channel_length)
                    .map_err(|e| e.to_string())
            });
        match checked {
            Ok(channel) => channels.push(channel),
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("channel {name:?}: {e}")),
        }
    }
    if !ctx.broker.is_ready() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "broker unavailable");
    }
    let data = Bytes::from(serde_json::to_string(&data).expect("strings always serialise"));
    for channel in channels {
        let published = ctx
            .publish(
                channel,
                data.clone(),
                PublishPath::Pusher,
                None,
                PublishMeta {
                    event: Some(event.clone()),
                    exclude,
                    ..Default::default()
                },
            )
            .await;
        if let Err(e) = published {
            let status = match e {
                herald_broker::BrokerError::Uncertain(_) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return refuse(status, e.to_string());
        }
    }
    json(StatusCode::OK, &serde_json::json!({}))
}

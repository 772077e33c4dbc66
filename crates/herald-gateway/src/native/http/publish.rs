//! `POST /v1/publish`, `POST /v1/publish/batch` and `POST /v1/broadcast`.

use bytes::Bytes;
use herald_protocol::{ChannelName, ErrorCode, EventName, TraceParent};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{ctx::NodeCtx, refusal::Refusal, telemetry::PublishPath};
use herald_http::{
    auth::authorize,
    reply::{json, ApiError},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    channel: String,
    data: Box<RawValue>,
    /// The event name (what Pusher clients bind to), optional.
    #[serde(default)]
    event: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    messages: Vec<PublishBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastBody {
    channels: Vec<String>,
    data: Box<RawValue>,
    #[serde(default)]
    event: Option<String>,
}

/// The most channels one broadcast names.
pub(crate) const MAX_BROADCAST: usize = 1000;

/// One publish request, checked and ready for the broker.
struct Checked {
    channel: ChannelName,
    data: Bytes,
    event: Option<EventName>,
}

pub(super) async fn single(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let parent = traceparent(&req);
    let body = admit(req, ctx).await?;
    let body: PublishBody = parse(&body)?;
    let checked = check(body, ctx)?;
    let result = send(checked, ctx, parent.as_ref()).await?;
    Ok(json(StatusCode::OK, &result))
}

pub(super) async fn batch(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let parent = traceparent(&req);
    let body = admit(req, ctx).await?;
    let body: BatchBody = parse(&body)?;
    // Every message is checked before any is published: a bad batch publishes nothing.
    let checked = body
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            check(m, ctx).map_err(|e| ApiError {
                message: format!("messages[{i}]: {}", e.message),
                ..e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total = checked.len();
    let mut results = Vec::with_capacity(total);
    for (i, m) in checked.into_iter().enumerate() {
        let result = send(m, ctx, parent.as_ref()).await.map_err(|e| ApiError {
            message: format!("{} after {i} of {total} messages were published", e.message),
            ..e
        })?;
        results.push(result);
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "results": results }),
    ))
}

/// One publication to many channels: each channel gets its own offset in its own sequence.
/// Every channel is checked before any is published.
pub(super) async fn broadcast(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let parent = traceparent(&req);
    let body = admit(req, ctx).await?;
    let body: BroadcastBody = parse(&body)?;
    if body.channels.is_empty() || body.channels.len() > MAX_BROADCAST {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("channels: 1 to {MAX_BROADCAST} channels"),
        ));
    }
    let mut checked = Vec::with_capacity(body.channels.len());
    for (i, channel) in body.channels.into_iter().enumerate() {
        let one = PublishBody {
            channel,
            data: body.data.clone(),
            event: body.event.clone(),
        };
        let m = check(one, ctx).map_err(|e| ApiError {
            message: format!("channels[{i}]: {}", e.message),
            ..e
        })?;
        if !checked.iter().any(|c: &Checked| c.channel == m.channel) {
            checked.push(m);
        }
    }
    let total = checked.len();
    let mut results = Vec::with_capacity(total);
    for (i, m) in checked.into_iter().enumerate() {
        let channel = m.channel.to_string();
        let mut result = send(m, ctx, parent.as_ref()).await.map_err(|e| ApiError {
            message: format!("{} after {i} of {total} channels were published", e.message),
            ..e
        })?;
        result["channel"] = channel.into();
        results.push(result);
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "results": results }),
    ))
}

/// The request's W3C `traceparent`, when it has a valid one (an invalid one is ignored, as the
/// specification asks: the publish then starts a new trace if it is sampled).
fn traceparent(req: &Request<Incoming>) -> Option<TraceParent> {
    let value = req.headers().get("traceparent")?.to_str().ok()?;
    TraceParent::parse(value.trim())
}

/// Authenticates, checks readiness, and reads the body within the size limit.
pub(super) async fn admit(req: Request<Incoming>, ctx: &NodeCtx) -> Result<Bytes, ApiError> {
    authorize(&req, &ctx.config.api.keys)?;
    if !ctx.broker.is_ready() {
        return Err(ApiError::new(ErrorCode::Unavailable, "broker unavailable"));
    }
    let limit = ctx.config.api.max_body_size;
    let too_large = || ApiError::new(ErrorCode::TooLarge, format!("body over {limit} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("cannot read body: {e}"),
        )),
    }
}

pub(super) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("bad JSON body: {e}")))
}

fn check(body: PublishBody, ctx: &NodeCtx) -> Result<Checked, ApiError> {
    let (channel, _) = ctx
        .config
        .check_channel(&body.channel)
        .map_err(super::api_error)?;
    let data = body.data.get();
    ctx.config.check_depth(data.as_bytes()).map_err(|refusal| {
        ctx.metrics.families.limit_hits.inc("max_json_depth");
        super::api_error(refusal)
    })?;
    let max = ctx.config.api.max_data_size;
    if data.len() > max {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("data is {} bytes, over the limit of {max}", data.len()),
        ));
    }
    let event = body
        .event
        .as_deref()
        .map(EventName::parse)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("event: {e}")))?;
    Ok(Checked {
        channel,
        data: Bytes::copy_from_slice(data.as_bytes()),
        event,
    })
}

async fn send(
    m: Checked,
    ctx: &NodeCtx,
    parent: Option<&TraceParent>,
) -> Result<serde_json::Value, ApiError> {
    let published = ctx
        .publish(
            m.channel,
            m.data,
            PublishPath::Http,
            parent,
            herald_broker::PublishMeta {
                event: m.event,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| super::api_error(Refusal::broker(&e)))?;
    let message_id = published.id.to_string();
    // `id` is the older name of `message_id`, kept as an alias (docs/http-api.md).
    Ok(serde_json::json!({
        "message_id": message_id,
        "offset": published.offset,
        "epoch": published.epoch,
        "id": message_id,
    }))
}

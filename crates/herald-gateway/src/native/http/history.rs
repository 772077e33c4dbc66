//! `GET /v1/history?channel=..&limit=..&since_offset=..&since_epoch=..&reverse=..`: a
//! channel's kept publications, as the WebSocket `history` request reads them.

use bytes::Bytes;
use herald_http::{
    auth::authorize,
    reply::{json, ApiError},
};
use herald_protocol::{Epoch, ErrorCode, Position};
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use super::api_error;
use crate::{ctx::NodeCtx, native::history, refusal::Refusal};

/// The query string's parameters.
struct Params {
    channel: String,
    limit: Option<u32>,
    since: Option<Position>,
    reverse: bool,
}

fn params(query: Option<&str>) -> Result<Params, Refusal> {
    let bad = |text: String| Refusal::new(ErrorCode::BadRequest, text);
    let (mut channel, mut limit, mut offset, mut epoch, mut reverse) =
        (None, None, None, None, false);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "channel" => channel = Some(value.into_owned()),
            "limit" => {
                let n = value
                    .parse::<u32>()
                    .map_err(|_| bad(format!("limit: {value:?} is not a count")))?;
                limit = Some(n);
            }
            "since_offset" => {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("since_offset: {value:?} is not an offset")))?;
                offset = Some(n);
            }
            "since_epoch" => {
                let e = Epoch::parse(&value).map_err(|e| bad(format!("since_epoch: {e}")))?;
                epoch = Some(e);
            }
            "reverse" => {
                reverse = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => return Err(bad(format!("reverse: {other:?} is not true or false"))),
                };
            }
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    let since = match (offset, epoch) {
        (Some(offset), Some(epoch)) => Some(Position { offset, epoch }),
        (None, None) => None,
        _ => return Err(bad("since_offset and since_epoch go together".into())),
    };
    Ok(Params {
        channel: channel.ok_or_else(|| bad("channel is missing".into()))?,
        limit,
        since,
        reverse,
    })
}

pub(super) async fn answer<B>(
    req: &Request<B>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(req, &ctx.config.api.keys)?;
    let p = params(req.uri().query()).map_err(api_error)?;
    let (channel, ns) = ctx.config.check_channel(&p.channel).map_err(api_error)?;
    let since = p.since.as_ref();
    let query = history::query(ns, p.limit, since, p.reverse).map_err(api_error)?;
    let read = ctx
        .broker
        .history(&channel, query)
        .await
        .map_err(|e| api_error(Refusal::broker(&e)))?;
    history::check_continues(since, &read, &query).map_err(api_error)?;
    let items = history::items(&read);
    let body = serde_json::to_value(history::body(&channel, &read, &items))
        .map_err(|e| api_error(Refusal::new(ErrorCode::Internal, e.to_string())))?;
    Ok(json(StatusCode::OK, &body))
}

//! `GET /v1/channels?prefix=..&limit=..&cursor=..`: the channels with subscribers anywhere in
//! the cluster, in name order, a page at a time, each with its subscription count when the
//! node counts them cluster-wide (`pusher.subscription_count`, on by default, and a table the
//! cluster shares: see docs/http-api.md).

use bytes::Bytes;
use herald_http::{
    auth::authorize,
    reply::{json, ApiError},
};
use herald_protocol::{ChannelName, ErrorCode};
use http::{Request, Response, StatusCode};
use http_body_util::Full;

use super::api_error;
use crate::{ctx::NodeCtx, refusal::Refusal};

/// Channels per page by default, and at most.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

struct Params {
    prefix: String,
    limit: usize,
    cursor: Option<String>,
}

fn params(query: Option<&str>) -> Result<Params, Refusal> {
    let bad = |text: String| Refusal::new(ErrorCode::BadRequest, text);
    let mut p = Params {
        prefix: String::new(),
        limit: DEFAULT_LIMIT,
        cursor: None,
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "prefix" => p.prefix = value.into_owned(),
            "cursor" => p.cursor = Some(value.into_owned()),
            "limit" => {
                p.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit: {value:?} is not 1 to {MAX_LIMIT}")))?;
            }
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(p)
}

pub(super) async fn answer<B>(
    req: &Request<B>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(req, &ctx.config.api.keys)?;
    let p = params(req.uri().query()).map_err(api_error)?;
    let mut all = ctx
        .broker
        .occupied(&p.prefix)
        .await
        .map_err(|e| api_error(Refusal::broker(&e)))?;
    // The nodes' own channel is not the application's.
    all.retain(|c| c.namespace() != Some(crate::config::RESERVED_NAMESPACE));
    all.sort();
    all.dedup();
    // A page: the channels after the cursor (the last name of the previous page).
    let after: Vec<ChannelName> = all
        .into_iter()
        .filter(|c| p.cursor.as_deref().is_none_or(|cursor| c.as_str() > cursor))
        .take(p.limit + 1)
        .collect();
    let more = after.len() > p.limit;
    let page = &after[..after.len().min(p.limit)];
    let cluster_wide = ctx.presence.counts_cluster_wide(ctx.config.broker.kind);
    let counts = if ctx.config.pusher.subscription_count && cluster_wide {
        let counts = ctx
            .presence
            .subscriptions(page)
            .await
            .map_err(|e| api_error(Refusal::new(ErrorCode::Unavailable, e.to_string())))?;
        Some(counts)
    } else {
        None
    };
    let channels: Vec<serde_json::Value> = page
        .iter()
        .enumerate()
        .map(|(i, c)| match &counts {
            Some(counts) => serde_json::json!({"channel": c.as_str(), "subscriptions": counts[i]}),
            None => serde_json::json!({"channel": c.as_str()}),
        })
        .collect();
    let next = more.then(|| page.last().map(ToString::to_string)).flatten();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"channels": channels, "next_cursor": next}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let p = params(Some("prefix=chat%3A&limit=2&cursor=chat%3Ab")).unwrap();
        assert_eq!((p.prefix.as_str(), p.limit), ("chat:", 2));
        assert_eq!(p.cursor.as_deref(), Some("chat:b"));
        assert_eq!(params(None).unwrap().limit, DEFAULT_LIMIT);
        for bad in ["limit=0", "limit=1001", "limit=x", "other=1"] {
            assert!(params(Some(bad)).is_err(), "{bad}");
        }
    }
}

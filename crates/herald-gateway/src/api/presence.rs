//! `GET /v1/channels/{channel}/presence` and `.../presence/stats`.

use bytes::Bytes;
use herald_protocol::ErrorCode;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::reply::{json, ApiError};
use crate::node::NodeCtx;

/// What a presence route asks for.
pub(super) enum Query {
    Members(String),
    Stats(String),
}

/// Recognises the presence routes; the channel is percent-decoded.
pub(super) fn route(path: &str) -> Option<Query> {
    let rest = path.strip_prefix("/v1/channels/")?;
    let decode = |raw: &str| {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    if let Some(raw) = rest.strip_suffix("/presence/stats") {
        return decode(raw).map(Query::Stats);
    }
    rest.strip_suffix("/presence")
        .and_then(decode)
        .map(Query::Members)
}

pub(super) async fn answer<B>(
    req: &Request<B>,
    query: Query,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    super::publish::authorize(req, &ctx.config.api.keys)?;
    let (name, stats) = match &query {
        Query::Members(name) => (name, false),
        Query::Stats(name) => (name, true),
    };
    let (channel, ns) = ctx
        .check_channel(name)
        .map_err(|(code, message)| ApiError::new(code, message))?;
    if !ns.presence {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "not a presence channel",
        ));
    }
    let unavailable =
        |e: crate::presence::StoreError| ApiError::new(ErrorCode::Unavailable, e.to_string());
    let body = if stats {
        let count = ctx.presence.count(&channel).await.map_err(unavailable)?;
        json!({"channel": channel.as_str(), "count": count})
    } else {
        let members = ctx.presence.members(&channel).await.map_err(unavailable)?;
        json!({"channel": channel.as_str(), "members": members})
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_presence_routes() {
        assert!(
            matches!(route("/v1/channels/room%3A1/presence"), Some(Query::Members(c)) if c == "room:1")
        );
        assert!(
            matches!(route("/v1/channels/a/b/presence/stats"), Some(Query::Stats(c)) if c == "a/b")
        );
        assert!(route("/v1/channels/x").is_none());
        assert!(route("/v1/publish").is_none());
    }
}

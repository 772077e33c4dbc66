//! `GET /v1/channels/{channel}/presence` and `.../presence/stats`.

use bytes::Bytes;
use herald_http::{
    auth::authorize,
    reply::{json, ApiError},
    routes::PresenceQuery,
};
use herald_protocol::ErrorCode;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::ctx::NodeCtx;

pub(super) async fn answer<B>(
    req: &Request<B>,
    query: PresenceQuery,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(req, &ctx.config.api.keys)?;
    let (channel, ns) = ctx
        .config
        .check_channel(query.channel())
        .map_err(super::api_error)?;
    if !ns.presence {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "not a presence channel",
        ));
    }
    let unavailable =
        |e: crate::presence::StoreError| ApiError::new(ErrorCode::Unavailable, e.to_string());
    let body = match query {
        PresenceQuery::Stats(_) => {
            let count = ctx.presence.count(&channel).await.map_err(unavailable)?;
            json!({"channel": channel.as_str(), "count": count})
        }
        PresenceQuery::Members(_) => {
            let members = ctx.presence.members(&channel).await.map_err(unavailable)?;
            json!({"channel": channel.as_str(), "members": members})
        }
    };
    Ok(json(StatusCode::OK, &body))
}

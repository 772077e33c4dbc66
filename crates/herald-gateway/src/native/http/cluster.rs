//! `GET /v1/info`, `POST /v1/disconnect` and `POST /v1/unsubscribe`: the nodes of the
//! cluster, and the server's hand on connections anywhere in it (through the control channel,
//! `crate::cluster`).

use bytes::Bytes;
use herald_http::{
    auth::authorize,
    reply::{json, ApiError},
};
use herald_presence_core::UserId;
use herald_protocol::{ConnAddress, ErrorCode};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;

use super::{
    api_error,
    publish::{admit, parse},
};
use crate::{
    cluster::{Control, WireTarget},
    ctx::NodeCtx,
    refusal::Refusal,
};

/// `GET /v1/info`: this node, then every other node heard from within `cluster::EXPIRY`.
pub(super) fn info<B>(req: &Request<B>, ctx: &NodeCtx) -> Result<Response<Full<Bytes>>, ApiError> {
    authorize(req, &ctx.config.api.keys)?;
    let now = herald_broker::now_us() / 1_000_000;
    let nodes: Vec<serde_json::Value> = ctx
        .cluster
        .nodes(ctx.state())
        .into_iter()
        .map(|n| {
            let mut v = serde_json::to_value(&n).expect("node info serialises");
            v["uptime_seconds"] = now.saturating_sub(n.started_at).into();
            v
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "nodes": nodes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    reconnect: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeBody {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    client: Option<String>,
    channel: String,
}

/// `POST /v1/disconnect`: `{"user": ..}` or `{"client": ..}`, with `reconnect`.
pub(super) async fn disconnect(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let body = admit(req, ctx).await?;
    let body: DisconnectBody = parse(&body)?;
    let target = target(body.user, body.client)?;
    let control = Control::Disconnect {
        target,
        reconnect: body.reconnect,
    };
    send(ctx, &control).await
}

/// `POST /v1/unsubscribe`: `{"user": .., "channel": ..}` or `{"client": .., "channel": ..}`.
pub(super) async fn unsubscribe(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let body = admit(req, ctx).await?;
    let body: UnsubscribeBody = parse(&body)?;
    let target = target(body.user, body.client)?;
    let (channel, _) = ctx.config.check_channel(&body.channel).map_err(api_error)?;
    let control = Control::Unsubscribe {
        target,
        channel: channel.to_string(),
    };
    send(ctx, &control).await
}

/// The target a body names: exactly one of a valid user id and a connection address.
fn target(user: Option<String>, client: Option<String>) -> Result<WireTarget, ApiError> {
    let bad = |text: String| ApiError::new(ErrorCode::BadRequest, text);
    match (&user, &client) {
        (Some(u), None) => {
            UserId::parse(u).map_err(|e| bad(format!("user: {e}")))?;
        }
        (None, Some(c)) => {
            if ConnAddress::parse(c).is_none() {
                return Err(bad(format!(
                    "client: {c:?} is not a connection address (node.conn, a Pusher socket_id)"
                )));
            }
        }
        _ => return Err(bad("name either a user or a client, not both".into())),
    }
    Ok(WireTarget { user, client })
}

async fn send(ctx: &NodeCtx, control: &Control) -> Result<Response<Full<Bytes>>, ApiError> {
    ctx.cluster
        .send(control)
        .await
        .map_err(|e| api_error(Refusal::broker(&e)))?;
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

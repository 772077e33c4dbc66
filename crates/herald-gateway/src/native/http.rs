//! The native HTTP routes: `POST /v1/publish`, `POST /v1/publish/batch`, `POST /v1/broadcast`,
//! `GET /v1/history`, `GET /v1/channels`, `GET /v1/channels/{channel}/presence[/stats]`,
//! `GET /v1/info`, `POST /v1/disconnect` and `POST /v1/unsubscribe`, behind the API keys.

mod channels;
mod cluster;
mod history;
mod presence;
mod publish;

use bytes::Bytes;
use herald_http::{reply::ApiError, routes::PresenceQuery};
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::{ctx::NodeCtx, refusal::Refusal};

/// Answers `req` if it is a native route; gives it back otherwise.
pub(crate) async fn route(
    req: Request<Incoming>,
    ctx: &NodeCtx,
) -> Result<Result<Response<Full<Bytes>>, ApiError>, Request<Incoming>> {
    let answer = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/publish") => publish::single(req, ctx).await,
        (&Method::POST, "/v1/publish/batch") => publish::batch(req, ctx).await,
        (&Method::POST, "/v1/broadcast") => publish::broadcast(req, ctx).await,
        (&Method::GET, "/v1/history") => history::answer(&req, ctx).await,
        (&Method::GET, "/v1/channels") => channels::answer(&req, ctx).await,
        (&Method::GET, "/v1/info") => cluster::info(&req, ctx),
        (&Method::POST, "/v1/disconnect") => cluster::disconnect(req, ctx).await,
        (&Method::POST, "/v1/unsubscribe") => cluster::unsubscribe(req, ctx).await,
        (
            _,
            "/v1/publish" | "/v1/publish/batch" | "/v1/broadcast" | "/v1/history" | "/v1/channels"
            | "/v1/info" | "/v1/disconnect" | "/v1/unsubscribe",
        ) => Err(ApiError::method_not_allowed()),
        (method, path) => match PresenceQuery::route(path) {
            Some(query) if method == Method::GET => presence::answer(&req, query, ctx).await,
            Some(_) => Err(ApiError::method_not_allowed()),
            None => return Err(req),
        },
    };
    Ok(answer)
}

/// A refusal as the API's error body.
fn api_error(refusal: Refusal) -> ApiError {
    ApiError::new(refusal.code, refusal.reason)
}

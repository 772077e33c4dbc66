//! The HTTP API's front door: health, readiness and metrics here; the native routes
//! (`native::http`) and the Pusher HTTP API (`pusher::api`) in their protocols' rooms.
//!
//! Routes (docs/http-api.md): `POST /v1/publish`, `POST /v1/publish/batch`,
//! `POST /v1/broadcast`, `GET /v1/history`, `GET /v1/channels`, `GET /v1/info`,
//! `POST /v1/disconnect`, `POST /v1/unsubscribe`,
//! `GET /v1/channels/{channel}/presence[/stats]`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, and the Pusher HTTP API (`/apps/{id}/...`) when Pusher apps are
//! configured; the web console at `/console/` (`api/console.rs`). The server loop, replies
//! and API keys are `herald-http`'s.

mod console;

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use herald_http::{
    reply::{error, metrics, text, ApiError},
    Handler,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{ctx::NodeCtx, native, pusher};

/// Serves the API until `stop` is cancelled; `websocket` is the WebSocket listener's address
/// (the console watches channels through it).
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<NodeCtx>,
    websocket: SocketAddr,
    stop: CancellationToken,
) {
    herald_http::serve(listener, Arc::new(Api { ctx, websocket }), stop).await;
}

struct Api {
    ctx: Arc<NodeCtx>,
    websocket: SocketAddr,
}

impl Handler for Api {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let ctx = &self.ctx;
        if ctx.config.console.enabled && req.uri().path().starts_with("/console") {
            let (method, path, tls) = (req.method(), req.uri().path(), ctx.tls.is_some());
            if let Some(answer) = console::answer(method, path, self.websocket, tls) {
                return answer.unwrap_or_else(error);
            }
        }
        route(req, ctx).await.unwrap_or_else(error)
    }
}

async fn route(req: Request<Incoming>, ctx: &NodeCtx) -> Result<Response<Full<Bytes>>, ApiError> {
    // Pusher's API signs its requests itself: no API key.
    if !ctx.config.pusher.apps.is_empty() && pusher::api::is_route(req.uri().path()) {
        return Ok(pusher::api::answer(req, ctx).await);
    }
    // HEAD answers as GET, without the body (hyper leaves it out).
    let probe = matches!(*req.method(), Method::GET | Method::HEAD);
    match (probe, req.uri().path()) {
        (true, "/healthz") => Ok(text(StatusCode::OK, "ok\n")),
        (true, "/readyz") => Ok(if ctx.is_ready() {
            text(StatusCode::OK, "ready\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }),
        (true, "/metrics") => Ok(metrics(
            ctx.metrics
                .render(ctx.broker.stats(), ctx.broker.is_ready()),
        )),
        (_, "/healthz" | "/readyz" | "/metrics") => Err(ApiError::method_not_allowed()),
        _ => match native::http::route(req, ctx).await {
            Ok(answer) => answer,
            Err(_) => Err(ApiError::not_found()),
        },
    }
}

//! The internal HTTP API: publish, health, readiness, metrics.
//!
//! Routes (docs/http-api.md): `POST /v1/publish`, `POST /v1/publish/batch`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics`.

mod presence;
mod publish;
mod reply;

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::NodeCtx;
use reply::{error, text, ApiError};

/// Serves the API until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<NodeCtx>, stop: CancellationToken) {
    while let Some((stream, _)) = crate::accept::next(&listener, &stop).await {
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(route(req, &ctx).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r {
                    tracing::debug!(error = %e, "api connection failed");
                },
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

async fn route(req: Request<Incoming>, ctx: &NodeCtx) -> Response<Full<Bytes>> {
    let result = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => Ok(text(StatusCode::OK, "ok\n")),
        (&Method::GET, "/readyz") => Ok(if ctx.is_ready() {
            text(StatusCode::OK, "ready\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }),
        (&Method::GET, "/metrics") => {
            let rendered = ctx
                .metrics
                .render(ctx.broker.stats(), ctx.broker.is_ready());
            let mut r = text(StatusCode::OK, rendered);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        (&Method::POST, "/v1/publish") => publish::single(req, ctx).await,
        (&Method::POST, "/v1/publish/batch") => publish::batch(req, ctx).await,
        (_, "/healthz" | "/readyz" | "/metrics" | "/v1/publish" | "/v1/publish/batch") => {
            Err(ApiError::method_not_allowed())
        }
        (method, path) => match presence::route(path) {
            Some(query) if method == Method::GET => presence::answer(&req, query, ctx).await,
            Some(_) => Err(ApiError::method_not_allowed()),
            None => Err(ApiError::not_found()),
        },
    };
    result.unwrap_or_else(error)
}

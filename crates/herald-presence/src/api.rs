//! The HTTP API: `GET /v1/channels/{channel}/presence[/stats]`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics`.
//!
//! The service does not know the gateways' namespaces: it answers for any valid channel name,
//! and a channel that is not a presence channel simply has no members.

use std::sync::Arc;

use bytes::Bytes;
use herald_broker_redis::RedisPresence;
use herald_http::{
    auth::authorize,
    reply::{error, json, metrics, text, ApiError},
    routes::PresenceQuery,
    Handler,
};
use herald_protocol::{ChannelName, ErrorCode};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use crate::{config::PresenceServiceConfig, metrics::Metrics};

pub(crate) struct Api {
    pub(crate) config: PresenceServiceConfig,
    pub(crate) table: Arc<RedisPresence>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Handler for Api {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        self.route(&req).await.unwrap_or_else(error)
    }
}

impl Api {
    async fn route<B>(&self, req: &Request<B>) -> Result<Response<Full<Bytes>>, ApiError> {
        // HEAD answers as GET, without the body (hyper leaves it out).
        let probe = matches!(*req.method(), Method::GET | Method::HEAD);
        match (probe, req.uri().path()) {
            (true, "/healthz") => Ok(text(StatusCode::OK, "ok\n")),
            (true, "/readyz") => Ok(if self.metrics.store_up.get() == 1 {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "presence table unreachable\n",
                )
            }),
            (true, "/metrics") => Ok(metrics(self.metrics.render())),
            (_, "/healthz" | "/readyz" | "/metrics") => Err(ApiError::method_not_allowed()),
            (_, path) => match PresenceQuery::route(path) {
                Some(query) if req.method() == Method::GET => {
                    authorize(req, &self.config.api.keys)?;
                    self.answer(query).await
                }
                Some(_) => Err(ApiError::method_not_allowed()),
                None => Err(ApiError::not_found()),
            },
        }
    }

    async fn answer(&self, query: PresenceQuery) -> Result<Response<Full<Bytes>>, ApiError> {
        let channel = ChannelName::parse(query.channel())
            .map_err(|e| ApiError::new(ErrorCode::InvalidChannel, e.to_string()))?;
        let unavailable = |e: herald_broker_redis::PresenceError| {
            self.metrics.store_up.set(0);
            ApiError::new(ErrorCode::Unavailable, e.to_string())
        };
        let body = match query {
            PresenceQuery::Stats(_) => {
                let count = self.table.count(&channel).await.map_err(unavailable)?;
                json!({"channel": channel.as_str(), "count": count})
            }
            PresenceQuery::Members(_) => {
                let members = self.table.members(&channel).await.map_err(unavailable)?;
                json!({"channel": channel.as_str(), "members": members})
            }
        };
        self.metrics.queries.inc();
        Ok(json(StatusCode::OK, &body))
    }
}

//! Whether an upgrade request is served: its path, method, origin, token, subprotocol and the
//! node's limits; and what starts the connection once it is upgraded.

use std::sync::Arc;

use bytes::Bytes;
use fastwebsockets::upgrade::UpgradeFut;
use herald_protocol::{ConnId, WireFormat};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tracing::Instrument;

use super::Env;
use crate::{
    auth::UpgradeRefusal,
    ctx::{ConnectionSlot, NodeCtx},
    outbound::Outbound,
    peer::{Close, Peer},
    pusher,
    session::Session,
    ws::{connection::Connection, socket::Socket},
};

/// What an upgrade request gets.
pub(super) enum Admission {
    /// This answer, and no connection.
    Answer(Response<Full<Bytes>>),
    /// The `101`; hyper's side of the upgrade (unused when the request was read without
    /// hyper); and the connection to start.
    Upgrade {
        response: Response<Full<Bytes>>,
        upgraded: UpgradeFut,
        start: Start,
    },
}

/// A connection admitted and not yet started: what it starts with once its socket is upgraded.
pub(super) struct Start {
    conn_id: ConnId,
    format: WireFormat,
    session: Session,
    greeting: Option<(Bytes, Option<Close>)>,
    slot: ConnectionSlot,
    span: tracing::Span,
}

impl Start {
    /// Starts the connection on `io`, with `early` (what the client sent after its request)
    /// read first.
    pub(super) fn spawn(self, io: Socket, early: Bytes, env: Env) {
        let outbound = Outbound::new(self.format, env.ctx.config.websocket.outbound_queue_bytes);
        let peer = Peer::new(self.conn_id, outbound);
        let mut conn = Connection::new(io, early, peer, self.session, env.ctx);
        if let Some((frame, close)) = self.greeting {
            conn = conn.greet(frame, close);
        }
        // The connection runs as a task of its own: run from the handshake's task, it would
        // keep that future's state for its whole life. `run` borrows the connection that the
        // task holds, as an async fn taking it by value would hold it twice.
        let (stops, slot) = (env.stops, self.slot);
        let task = async move { conn.run(stops, slot).await };
        env.connections.spawn(task.instrument(self.span));
    }

    /// The connection's span (`conn_id`, `node_id`, `remote`).
    pub(super) fn span(&self) -> &tracing::Span {
        &self.span
    }
}

pub(super) fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // A connection that was not upgraded closes after its answer: an event stream's request
    // is always the first on its connection (`sniff`).
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The wire format a client asks for: JSON when it names no subprotocol, else the first
/// offered one Herald speaks.
fn choose_format(headers: &HeaderMap) -> Option<(WireFormat, bool)> {
    let mut offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .peekable();
    if offered.peek().is_none() {
        return Some((WireFormat::Json, false));
    }
    offered
        .find_map(WireFormat::from_subprotocol)
        .map(|f| (f, true))
}

/// Decides on an upgrade request: an answer (a refusal, or the demo page), or the `101` and
/// what starts the connection once the socket is upgraded.
pub(super) fn admit<B>(req: &mut Request<B>, env: &Env) -> Admission {
    // `/app/{key}`: a Pusher client, when Pusher apps are configured.
    let pusher_key = match env.ctx.config.pusher.apps.is_empty() {
        true => None,
        false => pusher::app_key(req.uri().path()).map(str::to_owned),
    };
    if env.ctx.config.demo_on() {
        if let Some(page) = crate::ws::demo::answer(req.method(), req.uri().path()) {
            return Admission::Answer(page);
        }
    }
    if req.uri().path() == crate::sse::request::PATH && env.ctx.config.sse.enabled {
        // Anything but a GET (which `sniff` took): the JSON refusal of the stream's others.
        let mut e = herald_http::reply::ApiError::method_not_allowed();
        e.message = "event streams are opened with GET".into();
        let mut r = herald_http::reply::error(e);
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Admission::Answer(r);
    }
    if req.uri().path() != env.ctx.config.websocket.path && pusher_key.is_none() {
        return Admission::Answer(plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    if !fastwebsockets::upgrade::is_upgrade_request(req) {
        let mut r = plain(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket only\n",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Admission::Answer(r);
    }
    if env.ctx.is_draining() {
        return Admission::Answer(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down; connect to another\n",
        ));
    }
    let origins = &env.ctx.config.websocket.allowed_origins;
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origins.is_empty() && !origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
            env.ctx.metrics.families.limit_hits.inc("origin");
            return Admission::Answer(plain(StatusCode::FORBIDDEN, "origin not allowed\n"));
        }
    }
    // Pusher clients authorize per channel, with signatures, not with Herald's tokens.
    let admitted = match pusher_key {
        Some(_) => Ok((None, crate::auth::Standing::anonymous())),
        None => env.ctx.auth.admit(req.headers(), req.uri().query()),
    };
    let (identity, standing) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => {
            env.ctx.metrics.families.auth_failures.inc(refusal.reason());
            let (status, text) = match refusal {
                UpgradeRefusal::BadRequest(text) => (StatusCode::BAD_REQUEST, text),
                UpgradeRefusal::Unauthorized(_, text) => (StatusCode::UNAUTHORIZED, text),
            };
            tracing::debug!(remote = %env.remote, %status, reason = %text, "upgrade refused");
            let mut r = plain(status, "");
            *r.body_mut() = Full::new(Bytes::from(text + "\n"));
            return Admission::Answer(r);
        }
    };
    let chosen = match pusher_key {
        Some(_) => Some((WireFormat::Pusher, false)),
        None => choose_format(req.headers()),
    };
    let Some((format, echo)) = chosen else {
        return Admission::Answer(plain(
            StatusCode::BAD_REQUEST,
            "unsupported subprotocol: offer herald.v1.json or herald.v1.msgpack\n",
        ));
    };
    let Some(slot) = env.ctx.claim_slot() else {
        env.ctx.metrics.families.limit_hits.inc("max_connections");
        return Admission::Answer(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is full (limits.max_connections); connect to another\n",
        ));
    };
    let (response, upgraded) = match fastwebsockets::upgrade::upgrade(&mut *req) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(remote = %env.remote, error = %e, "bad upgrade request");
            return Admission::Answer(plain(
                StatusCode::BAD_REQUEST,
                "bad WebSocket upgrade request\n",
            ));
        }
    };
    let conn_id = env.ctx.next_conn_id();
    let (session, greeting) = match pusher_key {
        Some(key) => open_pusher(&env.ctx, conn_id, &key, req.uri().query()),
        None => {
            let native = crate::native::Session::new(format, identity, standing);
            (Session::Native(native), None)
        }
    };
    let span = tracing::debug_span!(
        "conn",
        conn_id = %conn_id,
        node_id = %env.ctx.node_name,
        remote = %env.remote
    );
    let mut response = response.map(|_| Full::new(Bytes::new()));
    if echo {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(format.subprotocol()),
        );
    }
    Admission::Upgrade {
        response,
        upgraded,
        start: Start {
            conn_id,
            format,
            session,
            greeting,
            slot,
            span,
        },
    }
}

/// Opens a Pusher connection: `pusher:connection_established`, or a refusal (a `pusher:error`
/// and a close code of the protocol's) when the key, the protocol version or the app's
/// connection limit on this node says no.
fn open_pusher(
    ctx: &Arc<NodeCtx>,
    conn: ConnId,
    key: &str,
    query: Option<&str>,
) -> (Session, Option<(Bytes, Option<Close>)>) {
    let refused = |code, message: &'static str| {
        let frame = pusher::Refusal::coded(code, message).frame("");
        let close = Close::Wire {
            code,
            reason: message.into(),
        };
        (Session::Refused, Some((frame, Some(close))))
    };
    match pusher::open(&ctx.config.pusher, ctx.node_id, conn, key, query) {
        pusher::Opening::Established(mut session) => match ctx.claim_app_slot(session.app) {
            Some(slot) => {
                session.hold(slot);
                let activity = ctx.config.pusher.activity_timeout.as_secs();
                let greeting = session.established(activity);
                (Session::Pusher(session), Some((greeting, None)))
            }
            None => {
                ctx.metrics.families.limit_hits.inc("max_connections");
                refused(
                    herald_pusher::codes::APP_OVER_CONNECTION_QUOTA,
                    "the app is at its connection limit on this node",
                )
            }
        },
        pusher::Opening::Refused { code, message } => refused(code, message),
    }
}

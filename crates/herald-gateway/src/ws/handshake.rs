//! The HTTP/1.1 upgrade to WebSocket: path, subprotocol, and handing the raw socket to the
//! connection task.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use herald_protocol::{ConnId, WireFormat};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{
    connection::Connection,
    sniff::{sniff, Rewind, Sniffed},
    socket::Socket,
    stop::Stops,
};
use crate::{
    auth::UpgradeRefusal,
    ctx::NodeCtx,
    outbound::Outbound,
    peer::{Close, Peer},
    pusher,
    session::Session,
};

/// Everything a handshake needs to start the connection it upgrades.
#[derive(Clone)]
struct Env {
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    stops: Stops,
    remote: SocketAddr,
}

/// A stream the upgrade can run over, and hand to the connection as a [`Socket`].
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn into_socket(self) -> Socket;
}

impl Transport for TcpStream {
    fn into_socket(self) -> Socket {
        Socket::Plain(self)
    }
}

impl Transport for crate::tls::TlsStream {
    fn into_socket(self) -> Socket {
        let (tcp, tls) = self.into_parts();
        Socket::tls(tcp, tls)
    }
}

/// Serves one accepted socket: an event stream (`GET /v1/sse`), or HTTP until it is upgraded
/// (or closed).
pub(super) async fn serve<S: Transport>(
    mut stream: S,
    remote: SocketAddr,
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    stops: Stops,
) {
    let timeout = ctx.config.websocket.handshake_timeout;
    let sniffed = tokio::time::timeout(timeout, sniff(&mut stream, ctx.config.sse.enabled)).await;
    let prefix = match sniffed {
        Ok(Ok(Sniffed::Http(prefix))) => prefix,
        Ok(Ok(Sniffed::Stream(head))) => {
            return super::stream::start(stream, head, remote, ctx, connections, stops).await;
        }
        Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "handshake failed"),
        Err(_) => return,
    };
    let env = Env {
        ctx,
        connections,
        stops,
        remote,
    };
    let service = service_fn(move |req| {
        let env = env.clone();
        async move { Ok::<_, Infallible>(upgrade::<S>(req, env)) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(Rewind::new(prefix, stream)), service)
        .with_upgrades();
    if let Err(e) = tokio::time::timeout(timeout, served)
        .await
        .unwrap_or(Ok(()))
    {
        tracing::debug!(%remote, error = %e, "handshake failed");
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
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

fn upgrade<S: Transport>(mut req: Request<Incoming>, env: Env) -> Response<Full<Bytes>> {
    // `/app/{key}`: a Pusher client, when Pusher apps are configured.
    let pusher_key = match env.ctx.config.pusher.apps.is_empty() {
        true => None,
        false => pusher::app_key(req.uri().path()).map(str::to_owned),
    };
    if env.ctx.config.demo_on() {
        if let Some(page) = super::demo::answer(req.method(), req.uri().path()) {
            return page;
        }
    }
    if req.uri().path() == crate::sse::request::PATH && env.ctx.config.sse.enabled {
        // Anything but a GET (which `sniff` took): the JSON refusal of the stream's others.
        let mut e = herald_http::reply::ApiError::method_not_allowed();
        e.message = "event streams are opened with GET".into();
        let mut r = herald_http::reply::error(e);
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    if req.uri().path() != env.ctx.config.websocket.path && pusher_key.is_none() {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        let mut r = plain(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket only\n",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    if env.ctx.is_draining() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down; connect to another\n",
        );
    }
    let origins = &env.ctx.config.websocket.allowed_origins;
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origins.is_empty() && !origins.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
            env.ctx.metrics.families.limit_hits.inc("origin");
            return plain(StatusCode::FORBIDDEN, "origin not allowed\n");
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
            return r;
        }
    };
    let chosen = match pusher_key {
        Some(_) => Some((WireFormat::Pusher, false)),
        None => choose_format(req.headers()),
    };
    let Some((format, echo)) = chosen else {
        return plain(
            StatusCode::BAD_REQUEST,
            "unsupported subprotocol: offer herald.v1.json or herald.v1.msgpack\n",
        );
    };
    let Some(slot) = env.ctx.claim_slot() else {
        env.ctx.metrics.families.limit_hits.inc("max_connections");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is full (limits.max_connections); connect to another\n",
        );
    };
    let (response, upgraded) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(remote = %env.remote, error = %e, "bad upgrade request");
            return plain(StatusCode::BAD_REQUEST, "bad WebSocket upgrade request\n");
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
    let ctx = env.ctx.clone();
    let connections = env.connections.clone();
    env.connections.spawn(
        async move {
            let stream = match upgraded.await {
                Ok(ws) => ws.into_inner().into_inner(),
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            let parts = match stream.downcast::<TokioIo<Rewind<S>>>() {
                Ok(parts) => parts,
                Err(_) => {
                    tracing::error!("upgraded connection is not the accepted stream");
                    return;
                }
            };
            let (unread, io) = parts.io.into_inner().into_parts();
            let io = io.into_socket();
            // What the client sent after its request: unread by hyper, or still in `unread`.
            let early = match unread.is_empty() {
                true => parts.read_buf,
                false => [unread, parts.read_buf].concat().into(),
            };
            let outbound = Outbound::new(format, ctx.config.websocket.outbound_queue_bytes);
            let peer = Peer::new(conn_id, outbound);
            let mut conn = Connection::new(io, early, peer, session, ctx);
            if let Some((frame, close)) = greeting {
                conn = conn.greet(frame, close);
            }
            // The connection runs as a task of its own: run from here, it would keep this
            // future's upgrade state for its whole life. `run` borrows the connection that
            // the task holds, as an async fn taking it by value would hold it twice.
            let task = async move { conn.run(env.stops, slot).await };
            connections.spawn(task.instrument(tracing::Span::current()));
        }
        .instrument(span),
    );
    let mut response = response.map(|_| Full::new(Bytes::new()));
    if echo {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(format.subprotocol()),
        );
    }
    response
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

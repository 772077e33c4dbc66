//! The HTTP/1.1 upgrade to WebSocket: the first request on an accepted socket. An upgrade
//! request is read and answered here without hyper ([`direct`]); anything else is served by
//! hyper, which can still upgrade; [`admit`] decides either way.

mod admit;
mod direct;

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use self::admit::{admit, Admission};
use super::{
    sniff::{sniff, Rewind, Sniffed},
    socket::Socket,
    stop::Stops,
};
use crate::ctx::NodeCtx;

/// Everything a handshake needs to start the connection it upgrades.
#[derive(Clone)]
pub(super) struct Env {
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

/// The first request on a socket.
enum First {
    /// `GET /v1/sse`, and what was read of its head.
    Stream(BytesMut),
    /// A WebSocket upgrade, read whole, and what the client sent after it.
    Upgrade(Box<Request<()>>, Bytes),
    /// Anything else, for hyper, and what was read of it.
    Other(Bytes),
}

async fn first_request<S: AsyncRead + Unpin>(stream: &mut S, sse: bool) -> std::io::Result<First> {
    Ok(match sniff(stream, sse).await? {
        Sniffed::Stream(head) => First::Stream(head),
        Sniffed::Http(read) => match direct::read(stream, read).await? {
            direct::Head::Upgrade(req, rest) => First::Upgrade(req, rest),
            direct::Head::Other(read) => First::Other(read),
        },
    })
}

/// Serves one accepted socket: an event stream (`GET /v1/sse`), an upgrade, or HTTP until it
/// is upgraded (or closed).
pub(super) async fn serve<S: Transport>(
    mut stream: S,
    remote: SocketAddr,
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    stops: Stops,
) {
    let timeout = ctx.config.websocket.handshake_timeout;
    let first = tokio::time::timeout(timeout, first_request(&mut stream, ctx.config.sse.enabled));
    let prefix = match first.await {
        Ok(Ok(First::Other(prefix))) => prefix,
        Ok(Ok(First::Stream(head))) => {
            return super::stream::start(stream, head, remote, ctx, connections, stops).await;
        }
        Ok(Ok(First::Upgrade(mut req, early))) => {
            let env = Env {
                ctx,
                connections,
                stops,
                remote,
            };
            let answered =
                tokio::time::timeout(timeout, upgrade_directly(stream, &mut req, early, env));
            if let Ok(Err(e)) = answered.await {
                tracing::debug!(%remote, error = %e, "handshake failed");
            }
            return;
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
        async move { Ok::<_, Infallible>(upgrade_by_hyper::<S>(req, env)) }
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

/// Answers an upgrade request read without hyper and, when it is admitted, starts the
/// connection on the socket.
async fn upgrade_directly<S: Transport>(
    mut stream: S,
    req: &mut Request<()>,
    early: Bytes,
    env: Env,
) -> std::io::Result<()> {
    match admit(req, &env) {
        Admission::Answer(response) => direct::answer(&mut stream, response).await,
        Admission::Upgrade {
            response, start, ..
        } => {
            direct::answer(&mut stream, response).await?;
            start.spawn(stream.into_socket(), early, env);
            Ok(())
        }
    }
}

/// hyper's service: the answer, and when the request is admitted, a task that starts the
/// connection once hyper hands the socket back.
fn upgrade_by_hyper<S: Transport>(mut req: Request<Incoming>, env: Env) -> Response<Full<Bytes>> {
    let (response, upgraded, start) = match admit(&mut req, &env) {
        Admission::Answer(response) => return response,
        Admission::Upgrade {
            response,
            upgraded,
            start,
        } => (response, upgraded, start),
    };
    let span = start.span().clone();
    let connections = env.connections.clone();
    connections.spawn(
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
            // What the client sent after its request: unread by hyper, or still in `unread`.
            let early = match unread.is_empty() {
                true => parts.read_buf,
                false => [unread, parts.read_buf].concat().into(),
            };
            start.spawn(io.into_socket(), early, env);
        }
        .instrument(span),
    );
    response
}

//! The WebSocket side: the accept loop, the upgrade handshake, and the connection task.

mod connection;
mod demo;
mod handshake;
mod sniff;
mod socket;
mod stop;
mod stream;
mod waits;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::ctx::NodeCtx;

pub(crate) use stop::Stops;

/// Accepts connections until `shutdown` is cancelled. Each accepted socket gets a task (tracked
/// by `connections`) that runs the handshake and then the connection, which ends as `stops`
/// say.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    shutdown: CancellationToken,
    stops: Stops,
) {
    while let Some((stream, remote)) = herald_http::accept::next(&listener, &shutdown).await {
        let _ = stream.set_nodelay(true);
        let (ctx, tracker) = (ctx.clone(), connections.clone());
        let stops = stops.clone();
        match ctx.tls.clone() {
            None => {
                connections.spawn(handshake::serve(stream, remote, ctx, tracker, stops));
            }
            Some(config) => {
                let timeout = ctx.config.websocket.handshake_timeout;
                connections.spawn(async move {
                    match tokio::time::timeout(timeout, crate::tls::accept(stream, config)).await {
                        Ok(Ok(tls)) => {
                            handshake::serve(tls, remote, ctx, tracker, stops).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

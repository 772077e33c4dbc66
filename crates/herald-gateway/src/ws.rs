//! The WebSocket side: the accept loop, the upgrade handshake, and the connection task.

mod connection;
mod handshake;
mod requests;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::node::NodeCtx;

/// Accepts connections until `shutdown` is cancelled. Each accepted socket gets a task (tracked
/// by `connections`) that runs the handshake and then the connection.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    shutdown: CancellationToken,
    kill: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: back off a
                // little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let task = handshake::serve(
            stream,
            remote,
            ctx.clone(),
            connections.clone(),
            shutdown.clone(),
            kill.clone(),
        );
        connections.spawn(task);
    }
}

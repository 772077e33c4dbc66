//! The WebSocket side: the accept loop, the upgrade handshake, and the connection task.

mod connection;
mod handshake;
mod rate;
mod requests;

use std::sync::Arc;

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
    while let Some((stream, remote)) = herald_http::accept::next(&listener, &shutdown).await {
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

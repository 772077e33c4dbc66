//! An event stream's request: its head read whole (within the handshake's time), then the
//! stream admitted and started in a task of its own, or refused with a status.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::EventStream;
use crate::{
    ctx::NodeCtx,
    sse::{self, request},
    ws::{handshake::Transport, stop::Stops},
};

/// Serves an event-stream request whose first bytes are `buf`.
pub(in crate::ws) async fn start<S: Transport>(
    mut stream: S,
    mut buf: BytesMut,
    remote: SocketAddr,
    ctx: Arc<NodeCtx>,
    connections: TaskTracker,
    stops: Stops,
) {
    let timeout = ctx.config.websocket.handshake_timeout;
    let head = tokio::time::timeout(timeout, async {
        loop {
            match request::parse(&buf) {
                Ok(Some(req)) => return Ok(Some(req)),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    })
    .await;
    let req = match head {
        Ok(Ok(Some(req))) => req,
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(e)) => return refuse(stream, request::refusal(&e, None), &ctx).await,
    };
    match sse::open(&ctx, &req).await {
        Err(refused) => {
            tracing::debug!(%remote, status = %refused.error.status, reason = %refused.error.message, "event stream refused");
            let response = request::refusal(&refused.error, refused.origin.as_ref());
            refuse(stream, response, &ctx).await;
        }
        Ok(opened) => {
            let span = tracing::debug_span!(
                "stream",
                conn_id = %opened.peer.id,
                node_id = %ctx.node_name,
                remote = %remote
            );
            let expires_in = opened.standing.remaining();
            let mut es = EventStream {
                socket: stream.into_socket(),
                ctx,
                peer: opened.peer,
                cursor: opened.cursor,
                expires_in,
                writing: VecDeque::new(),
                written: 0,
                taken: VecDeque::new(),
                scratch: BytesMut::new(),
                id_line: BytesMut::new(),
                started: false,
                ending: None,
                close_reason: None,
            };
            let (slot, user) = (opened.slot, opened.user);
            // A task of its own: this one's future holds the request's state.
            let task = async move { es.run(stops, slot, user).await };
            connections.spawn(task.instrument(span));
        }
    }
}

/// Writes a refusal and closes.
async fn refuse<S: Transport>(mut stream: S, response: Bytes, ctx: &NodeCtx) {
    let timeout = ctx.config.websocket.close_timeout;
    let _ = tokio::time::timeout(timeout, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
}

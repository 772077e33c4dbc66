//! An HTTP/1.1 server over an accepted listener, stopped gracefully, closing its connections
//! the way clients can read.

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// What a closing connection still reads and drops from its client, at most.
const LINGER_BYTES: usize = 1 << 30;
/// For how long, at most (as nginx's `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(5);

/// Answers one request.
pub trait Handler: Send + Sync + 'static {
    /// The response to `req`.
    fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Full<Bytes>>> + Send;
}

/// Serves `handler` on `listener` until `stop` is cancelled; connections then finish the
/// request in flight and close.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>, stop: CancellationToken) {
    while let Some((stream, _)) = crate::accept::next(&listener, &stop).await {
        let handler = handler.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                Box::pin(async move { Ok::<_, Infallible>(handler.handle(req).await) })
            });
            let mut conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let stopped = stop.cancelled();
            tokio::pin!(stopped);
            let mut stopping = false;
            let done = std::future::poll_fn(|cx| {
                if !stopping && stopped.as_mut().poll(cx).is_ready() {
                    stopping = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
                conn.poll_without_shutdown(cx)
            })
            .await;
            match done {
                Ok(()) => linger(conn.into_parts().io.into_inner()).await,
                Err(e) => tracing::debug!(error = %e, "api connection failed"),
            }
        });
    }
}

/// Closes `tcp` after its last response: the end of what the server sends, then what the
/// client still sends (the rest of a body refused from its headers, such as a 413 or a 401)
/// read and dropped, within [`LINGER_BYTES`] and [`LINGER_TIME`]. Closed at once, a socket
/// with unread data is reset, and a client still writing its body never reads the answer.
async fn linger(mut tcp: TcpStream) {
    if tcp.shutdown().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0; 16 * 1024];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

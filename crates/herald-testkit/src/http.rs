//! A minimal HTTP/1.1 client over a plain socket: one request per connection.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, headers (lowercase names) and body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the sample named exactly `name` (with its labels, if any) in a
    /// Prometheus text body such as `/metrics`; `None` when there is none.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                (k == name).then(|| v.parse().ok()).flatten()
            })
    }

    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the whole response (`Connection: close`).
///
/// # Errors
/// On socket errors or an unparseable response.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        bail!("chunked responses are not supported by the test client");
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Serves `handler` on a free loopback port until the returned guard drops; returns the
/// address too.
///
/// # Panics
/// When no loopback port can be bound.
pub(crate) async fn serve_on_loopback<H: herald_http::Handler>(
    handler: H,
) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(herald_http::serve(
        listener,
        std::sync::Arc::new(handler),
        stop.clone(),
    ));
    (addr, stop.drop_guard())
}

/// Sends `HEAD path` to `addr` with `Connection: close` and returns everything the server
/// sent until it closed (a `HEAD` answer has a `Content-Length` but no body, which
/// [`http_request`] would wait for).
///
/// # Panics
/// When the connection fails or the server does not close within 5 s.
pub async fn head_request(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        s.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes after the answer")
    .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

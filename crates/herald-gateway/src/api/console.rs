//! The web console (`crates/herald-gateway/console`, compiled in) at `/console/` on the API
//! listener, when `console.enabled` says so. The files are static and open; everything the
//! page shows or does goes through the HTTP API, which asks for a key when `api.keys` are set.

use std::net::SocketAddr;

use bytes::Bytes;
use herald_http::reply::ApiError;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

/// The answer to `path` under `/console`, if it is one; `websocket` is the WebSocket
/// listener's address (the page watches channels through it) and `tls` whether it speaks wss.
pub(super) fn answer(
    method: &Method,
    path: &str,
    websocket: SocketAddr,
    tls: bool,
) -> Option<Result<Response<Full<Bytes>>, ApiError>> {
    let settings;
    let (body, kind): (&[u8], &'static str) = match path {
        "/console" => return Some(Ok(redirect("/console/"))),
        "/console/" | "/console/index.html" => (INDEX.as_bytes(), "text/html; charset=utf-8"),
        "/console/console.js" => (SCRIPT.as_bytes(), "text/javascript; charset=utf-8"),
        "/console/console.css" => (STYLE.as_bytes(), "text/css; charset=utf-8"),
        "/console/settings.json" => {
            settings =
                serde_json::json!({ "websocket_port": websocket.port(), "tls": tls }).to_string();
            (settings.as_bytes(), "application/json")
        }
        _ => return None,
    };
    let body = match *method {
        Method::GET => Bytes::copy_from_slice(body),
        Method::HEAD => Bytes::new(),
        _ => return Some(Err(ApiError::method_not_allowed())),
    };
    let mut r = Response::new(Full::new(body));
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The page and its script run in their own origin: no framing, no inline script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(Ok(r))
}

fn redirect(to: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

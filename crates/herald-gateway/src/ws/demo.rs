//! The demo page (`deploy/demo`, compiled in) at `/demo/` on the WebSocket listener, when
//! `demo.enabled` says so: with `cargo run -p herald-gateway` and a browser, a newcomer sees
//! Herald work. The page connects back to this listener's `/ws`.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

const INDEX: &str = include_str!("../../../../deploy/demo/index.html");
const CLIENT: &str = include_str!("../../../../deploy/demo/herald.js");
const MSGPACK: &str = include_str!("../../../../deploy/demo/msgpack.js");

/// The answer to a request for `path` under `/demo`, if it is one.
pub(super) fn answer(method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, kind) = match path {
        "/demo" => return Some(redirect("/demo/")),
        "/demo/" | "/demo/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/demo/herald.js" => (CLIENT, "text/javascript; charset=utf-8"),
        "/demo/msgpack.js" => (MSGPACK, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let body = match *method {
        Method::GET => Bytes::from_static(body.as_bytes()),
        Method::HEAD => Bytes::new(),
        _ => return Some(status(StatusCode::METHOD_NOT_ALLOWED)),
    };
    let mut r = Response::new(Full::new(body));
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(r)
}

fn redirect(to: &'static str) -> Response<Full<Bytes>> {
    let mut r = status(StatusCode::MOVED_PERMANENTLY);
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

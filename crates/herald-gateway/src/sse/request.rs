//! An event-stream request's head, read off the socket before anything else, and the
//! responses a stream begins with: the head of the stream, or a refusal.

use std::time::Duration;

use bytes::Bytes;
use herald_http::reply::ApiError;
use herald_protocol::ErrorCode;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};

/// The path event streams are served on.
pub(crate) const PATH: &str = "/v1/sse";
/// The longest request head read.
pub(crate) const MAX_HEAD: usize = 8192;
/// Headers read at most.
const MAX_HEADERS: usize = 64;

/// A request head.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
}

/// Reads a request head from `buf`: `None` while it is incomplete.
///
/// # Errors
/// 400 for a malformed head, 431 for one longer than [`MAX_HEAD`].
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Request>, ApiError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let status = parsed.parse(buf).map_err(|e| {
        let mut refusal = ApiError::new(ErrorCode::BadRequest, format!("bad request head: {e}"));
        if e == httparse::Error::TooManyHeaders {
            refusal.status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        }
        refusal
    })?;
    if status.is_partial() {
        if buf.len() >= MAX_HEAD {
            let mut refusal = ApiError::new(
                ErrorCode::BadRequest,
                format!("request head longer than {MAX_HEAD} bytes"),
            );
            refusal.status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            return Err(refusal);
        }
        return Ok(None);
    }
    let target = parsed.path.unwrap_or_default();
    let query = target.split_once('?').map(|(_, q)| q.to_owned());
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes());
        let value = HeaderValue::from_bytes(h.value);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    Ok(Some(Request { query, headers }))
}

impl Request {
    /// The values of query parameter `name`, decoded.
    pub(crate) fn params(&self, name: &str) -> Vec<String> {
        let query = self.query.as_deref().unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// The `Origin` header, when there is one.
    pub(crate) fn origin(&self) -> Option<&HeaderValue> {
        self.headers.get(header::ORIGIN)
    }

    /// Where the stream resumes from: `Last-Event-ID` (what a browser reconnecting sends),
    /// else `?since=`.
    pub(crate) fn since(&self) -> Option<String> {
        let header = self
            .headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        header.or_else(|| self.params("since").into_iter().next())
    }
}

/// The lines every response carries: CORS for a browser's origin.
fn common(out: &mut String, origin: Option<&HeaderValue>) {
    if let Some(origin) = origin.and_then(|o| o.to_str().ok()) {
        out.push_str("Access-Control-Allow-Origin: ");
        out.push_str(origin);
        out.push_str("\r\nVary: Origin\r\n");
    }
}

/// The head of a stream, and its first chunk: the reconnection delay browsers use.
pub(crate) fn stream_head(origin: Option<&HeaderValue>, retry: Duration) -> Bytes {
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
    );
    common(&mut out, origin);
    out.push_str("\r\n");
    let first = format!("retry: {}\n\n", retry.as_millis());
    let head = super::framing::chunk(first.as_bytes());
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&head);
    super::framing::head(&bytes)
}

/// A refusal: its status, and `{"error":{"code":..,"message":..}}`; the connection closes
/// after it.
pub(crate) fn refusal(e: &ApiError, origin: Option<&HeaderValue>) -> Bytes {
    let body = serde_json::json!({"error": {"code": e.code.code(), "message": e.message}});
    let body = body.to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n",
        e.status.as_u16(),
        e.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if e.status == StatusCode::UNAUTHORIZED {
        out.push_str("WWW-Authenticate: Bearer\r\n");
    }
    common(&mut out, origin);
    out.push_str("\r\n");
    out.push_str(&body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_once_complete() {
        let head = b"GET /v1/sse?channel=a&channel=b%3Ac&since=e%3A1 HTTP/1.1\r\nHost: x\r\n\
                     Last-Event-ID: e:4\r\nOrigin: https://app\r\n\r\n";
        assert!(parse(&head[..20]).unwrap().is_none());
        let request = parse(head).unwrap().unwrap();
        assert_eq!(request.params("channel"), ["a", "b:c"]);
        assert_eq!(request.since().as_deref(), Some("e:4"), "the header wins");
        assert_eq!(request.origin().unwrap(), "https://app");
    }

    #[test]
    fn bad_and_huge_heads_are_refused() {
        assert_eq!(
            parse(b"GET /v1/sse HTTP/1.1\r\nbad header\r\n\r\n")
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        let mut huge = b"GET /v1/sse HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        assert_eq!(
            parse(&huge).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn refusals_are_complete_responses() {
        let e = ApiError::new(ErrorCode::Unauthorized, "a token is required");
        let text = String::from_utf8(refusal(&e, None).to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("a token is required"));
    }
}

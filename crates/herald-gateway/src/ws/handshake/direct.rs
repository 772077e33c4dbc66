//! The WebSocket upgrade without hyper: a whole `GET` head that asks for `Upgrade: websocket`
//! is parsed here (httparse) and answered on the socket itself, a `101` or a refusal. Anything
//! else (another method, a head longer than [`MAX_HEAD`] or with more than [`MAX_HEADERS`]
//! headers, a body, a malformed request) goes to hyper with what was read.
//!
//! Why: hyper serving a connection that is upgraded at once costs a connection state, its
//! buffers, a second task and a channel to hand the socket back; an upgrade is the one request
//! most connections of this listener ever make.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest request head read here; a longer one goes to hyper.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// The most headers read here; a request with more goes to hyper.
pub(super) const MAX_HEADERS: usize = 48;

/// What the first request on a connection is.
pub(super) enum Head {
    /// A WebSocket upgrade, and what the client sent after its head.
    Upgrade(Box<Request<()>>, Bytes),
    /// Anything else, and what was read of it.
    Other(Bytes),
}

enum Parsed {
    Upgrade(Box<Request<()>>, usize),
    Other,
    Partial,
}

/// Reads (on from `buf`, what was read already) until the head is whole or is not an upgrade.
pub(super) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut buf: BytesMut,
) -> std::io::Result<Head> {
    loop {
        match parse(&buf) {
            Parsed::Upgrade(req, len) => {
                let rest = buf.split_off(len).freeze();
                return Ok(Head::Upgrade(req, rest));
            }
            Parsed::Other => return Ok(Head::Other(buf.freeze())),
            Parsed::Partial if buf.len() >= MAX_HEAD => return Ok(Head::Other(buf.freeze())),
            Parsed::Partial => {}
        }
        if buf.capacity() == buf.len() {
            buf.reserve(1024);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(Head::Other(buf.freeze()));
        }
    }
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if head.method.is_some_and(|m| m != "GET") => {
            return Parsed::Other
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if head.method != Some("GET") || head.version != Some(1) {
        return Parsed::Other;
    }
    let mut req = Request::new(());
    *req.method_mut() = Method::GET;
    *req.version_mut() = Version::HTTP_11;
    match head.path.and_then(|p| p.parse().ok()) {
        Some(uri) => *req.uri_mut() = uri,
        None => return Parsed::Other,
    }
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        req.headers_mut().append(name, value);
    }
    let headers = req.headers();
    if headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING)
        || !fastwebsockets::upgrade::is_upgrade_request(&req)
    {
        return Parsed::Other;
    }
    Parsed::Upgrade(Box::new(req), len)
}

/// Writes `response` as HTTP/1.1: a `101` as it is, anything else with its length and the
/// date, and (as every refusal of this listener says `Connection: close`) ends the socket
/// after it.
pub(super) async fn answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: Response<Full<Bytes>>,
) -> std::io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let switching = parts.status == StatusCode::SWITCHING_PROTOCOLS;
    if !switching {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        let date = httpdate::fmt_http_date(SystemTime::now());
        out.extend_from_slice(format!("date: {date}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    stream.write_all(&out).await?;
    stream.flush().await?;
    if !switching {
        stream.shutdown().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn head(input: &[u8]) -> Head {
        let mut rest = input;
        read(&mut rest, BytesMut::new()).await.unwrap()
    }

    const UPGRADE: &[u8] =
        b"GET /ws?token=a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\
        Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[tokio::test]
    async fn an_upgrade_is_parsed_and_what_follows_it_kept() {
        let mut input = UPGRADE.to_vec();
        input.extend_from_slice(b"\x81\x05early");
        let Head::Upgrade(req, rest) = head(&input).await else {
            panic!("an upgrade");
        };
        assert_eq!(req.uri().path(), "/ws");
        assert_eq!(req.uri().query(), Some("token=a"));
        assert_eq!(req.headers()[header::HOST], "x");
        assert_eq!(&rest[..], b"\x81\x05early");
    }

    #[tokio::test]
    async fn everything_else_goes_to_hyper_with_what_was_read() {
        let long = [
            &b"GET /ws HTTP/1.1\r\nCookie: "[..],
            &vec![b'a'; MAX_HEAD][..],
            b"\r\n\r\n",
        ]
        .concat();
        let line = UPGRADE.iter().position(|&b| b == b'\n').unwrap() + 1;
        let many: Vec<u8> = [
            &UPGRADE[..line],
            &b"X-A: 1\r\n".repeat(MAX_HEADERS + 1),
            &UPGRADE[line..],
        ]
        .concat();
        let body = [
            &UPGRADE[..UPGRADE.len() - 2],
            b"Content-Length: 2\r\n\r\nab",
        ]
        .concat();
        for other in [
            &b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"PUT /",
            b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"\x16\x03\x01garbage\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nHost: x\r\n",
            &long,
            &many,
            &body,
        ] {
            match head(other).await {
                Head::Other(read) => assert_eq!(&read[..], &other[..read.len()]),
                Head::Upgrade(..) => panic!("not an upgrade: {:?}", String::from_utf8_lossy(other)),
            }
        }
    }

    #[tokio::test]
    async fn answers_are_http_1_1() {
        let mut out = Vec::new();
        let mut r = Response::new(Full::new(Bytes::from_static(b"no\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        answer(&mut out, r).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 3\r\ndate: "
        ));
        assert!(text.ends_with("GMT\r\n\r\nno\n"), "{text}");

        let mut out = Vec::new();
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        answer(&mut out, r).await.unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"
        );
    }
}

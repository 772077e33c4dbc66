//! An event-stream client as a browser's `EventSource` reads one: HTTP/1.1 over a plain
//! socket, the chunked body de-chunked, fields parsed into events, the last event id kept.
//! Written here from the SSE and HTTP/1.1 specifications, independently of the gateway.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One dispatched event (or an id-only block, which a browser does not dispatch but whose id
/// it keeps: `data` is then `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type (`message` when none was given).
    pub event: String,
    /// The data lines, joined; `None` for an id-only block.
    pub data: Option<String>,
    /// The last event id after this block.
    pub id: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("JSON data")
    }
}

/// What a request got: a stream, or a refusal.
pub enum SseOpen {
    /// 200: the stream.
    Stream(SseClient),
    /// Another status.
    Refused {
        /// The status.
        status: u16,
        /// The headers, names in lower case.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
}

impl SseOpen {
    /// The stream; panics on a refusal.
    pub fn stream(self) -> SseClient {
        match self {
            Self::Stream(s) => s,
            Self::Refused { status, body, .. } => panic!("refused with {status}: {body}"),
        }
    }

    /// The refusal's status and JSON body; panics on a stream.
    pub fn refused(self) -> (u16, serde_json::Value) {
        match self {
            Self::Stream(_) => panic!("a stream, not a refusal"),
            Self::Refused { status, body, .. } => {
                (status, serde_json::from_str(&body).expect("a JSON body"))
            }
        }
    }
}

/// An open event stream.
pub struct SseClient {
    socket: TcpStream,
    /// Bytes read, not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked text, not yet parsed into lines.
    text: Vec<u8>,
    /// The response headers.
    pub headers: Vec<(String, String)>,
    /// The last event id, as a browser keeps it.
    pub last_event_id: String,
    /// The reconnection delay the server asked for, in milliseconds.
    pub retry: Option<u64>,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
    /// The body's last chunk arrived: the server ended the stream.
    pub ended: bool,
    event: String,
    data: Option<String>,
    id_seen: bool,
}

impl SseClient {
    /// `GET target` (path and query) with `headers`.
    pub async fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> SseOpen {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let mut request =
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        let end = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
                .await
                .expect("a response head within 10 s")
                .expect("read");
            assert!(
                n > 0,
                "closed before a response: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8(raw[..end].to_vec()).expect("a UTF-8 head");
        let rest = raw[end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if status != 200 {
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = rest;
            while body.len() < length {
                let mut buf = [0u8; 4096];
                let n = socket.read(&mut buf).await.expect("read");
                assert!(n > 0, "the body was cut short");
                body.extend_from_slice(&buf[..n]);
            }
            return SseOpen::Refused {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
        }
        SseOpen::Stream(Self {
            socket,
            raw: rest,
            text: Vec::new(),
            headers,
            last_event_id: String::new(),
            retry: None,
            comments: 0,
            ended: false,
            event: String::new(),
            data: None,
            id_seen: false,
        })
    }

    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event (id-only blocks included), or `None` when the stream ended (its last
    /// chunk, or the connection closed) or nothing came within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.parse() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 16384];
            let read = tokio::time::timeout_at(deadline, self.socket.read(&mut buf)).await;
            match read {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.ended = true;
                    return self.parse();
                }
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The next dispatched event (with data), skipping id-only blocks.
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.data.is_some() {
                return Some(event);
            }
        }
    }

    /// Whether the server closed the connection within `within`, after its last chunk.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.socket.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// De-chunks what was read, then parses complete lines until an event is dispatched.
    fn parse(&mut self) -> Option<SseEvent> {
        self.dechunk();
        loop {
            let at = self.text.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = self.text.drain(..=at).collect();
            let line = String::from_utf8(line[..line.len() - 1].to_vec()).expect("UTF-8");
            let line = line.strip_suffix('\r').unwrap_or(&line).to_owned();
            if line.is_empty() {
                let data = self.data.take();
                let event = std::mem::take(&mut self.event);
                if data.is_none() && event.is_empty() && !self.id_seen {
                    continue;
                }
                self.id_seen = false;
                return Some(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                    id: self.last_event_id.clone(),
                });
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_owned(),
                "data" => {
                    let data = self.data.get_or_insert_with(String::new);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                "id" => {
                    self.last_event_id = value.to_owned();
                    self.id_seen = true;
                }
                "retry" => self.retry = value.parse().ok(),
                _ => {}
            }
        }
    }

    fn dechunk(&mut self) {
        while !self.ended {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size = std::str::from_utf8(&self.raw[..line_end]).expect("a chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("a hexadecimal chunk size");
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return;
            }
            let need = line_end + 2 + size + 2;
            if self.raw.len() < need {
                return;
            }
            assert_eq!(&self.raw[need - 2..need], b"\r\n", "a chunk ends with CRLF");
            self.text
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..need);
        }
    }
}

//! A WebSocket test client speaking the native protocol, built on tokio-tungstenite.

use std::collections::VecDeque;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use herald_protocol::WireFormat;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::WAIT;

/// What arrived from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A frame, decoded from JSON or MessagePack into a JSON value.
    Frame(Value),
    /// A close frame with its code.
    Close(u16),
}

/// A client that speaks one wire format and keeps pushes that arrive while it waits for a
/// reply.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    format: WireFormat,
    next_id: u64,
    buffered: VecDeque<Value>,
}

impl WsClient {
    /// Connects to `url`, offering `format`'s subprotocol (none when `None`: JSON by default).
    ///
    /// # Errors
    /// When the handshake fails.
    pub async fn connect(url: &str, format: Option<WireFormat>) -> anyhow::Result<Self> {
        Self::connect_with(url, format, &[]).await
    }

    /// Connects to `url` with extra request headers (`[("Authorization", "Bearer ..")]`).
    ///
    /// # Errors
    /// When the handshake fails.
    pub async fn connect_with(
        url: &str,
        format: Option<WireFormat>,
        headers: &[(&'static str, &str)],
    ) -> anyhow::Result<Self> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value)?);
        }
        if let Some(f) = format {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(f.subprotocol()),
            );
        }
        let (stream, response) = tokio_tungstenite::connect_async(request).await?;
        let negotiated = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(f) = format {
            if negotiated.as_deref() != Some(f.subprotocol()) {
                bail!("server chose {negotiated:?}, not {}", f.subprotocol());
            }
        }
        Ok(Self {
            stream,
            format: format.unwrap_or(WireFormat::Json),
            next_id: 1,
            buffered: VecDeque::new(),
        })
    }

    /// Tries to connect and returns the HTTP status and body the upgrade was refused with.
    ///
    /// # Panics
    /// When the upgrade succeeds, or fails without an HTTP response.
    pub async fn refused(url: &str, headers: &[(&'static str, &str)]) -> (u16, String) {
        let mut request = url.into_client_request().expect("a WebSocket URL");
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => panic!("the upgrade to {url} was accepted"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response.body().clone().unwrap_or_default();
                (
                    response.status().as_u16(),
                    String::from_utf8_lossy(&body).into_owned(),
                )
            }
            Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
        }
    }

    /// The wire format in use.
    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// Sends `value` encoded in the client's format.
    ///
    /// # Panics
    /// When the send fails.
    pub async fn send(&mut self, value: &Value) {
        let message = match self.format {
            WireFormat::Json | WireFormat::Pusher | WireFormat::Sse => {
                Message::text(value.to_string())
            }
            WireFormat::MsgPack => Message::binary(rmp_serde::to_vec_named(value).expect("encode")),
        };
        self.stream.send(message).await.expect("send");
    }

    /// Sends a raw WebSocket message.
    ///
    /// # Panics
    /// When the send fails.
    pub async fn send_message(&mut self, message: Message) {
        self.stream.send(message).await.expect("send");
    }

    /// Sends `{"id":N, <command>}` and returns the reply with that id; pushes that arrive
    /// meanwhile are kept for [`WsClient::next_push`].
    ///
    /// # Panics
    /// When no reply arrives within [`WAIT`].
    pub async fn request(&mut self, command: &str, body: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"id": id, command: body})).await;
        loop {
            match self.read_within(WAIT).await.expect("reply") {
                Incoming::Frame(v) if v.get("id") == Some(&json!(id)) => return v,
                // Pushes, presence notices and gap notices carry no id: keep them for later.
                Incoming::Frame(v) if v.get("id").is_none() => self.buffered.push_back(v),
                other => panic!("expected the reply to request {id}, got {other:?}"),
            }
        }
    }

    /// Subscribes and returns the reply.
    pub async fn subscribe(&mut self, channels: &[&str]) -> Value {
        self.request("subscribe", json!({"channels": channels}))
            .await
    }

    /// Subscribes and asserts every channel succeeded.
    ///
    /// # Panics
    /// When any channel failed.
    pub async fn subscribe_ok(&mut self, channels: &[&str]) {
        let reply = self.subscribe(channels).await;
        assert_eq!(
            reply["ok"]["subscribed"].as_array().map(Vec::len),
            Some(channels.len()),
            "subscribe reply: {reply}"
        );
    }

    /// Subscribes to `channel` recovering from `offset` of `epoch`; returns the channel's
    /// recovery outcome (`{"channel":..,"recovered":..,"reason":..,"offset":..,"epoch":..}`).
    pub async fn recover(&mut self, channel: &str, offset: u64, epoch: &str) -> Value {
        let since = json!({"offset": offset, "epoch": epoch});
        let body = json!({"channels": [channel], "recover": {channel: since}});
        let reply = self.request("subscribe", body).await;
        reply["ok"]["recovery"][0].clone()
    }

    /// The next push's body (`{"channel":..,"data":..,"offset":..}`).
    ///
    /// # Panics
    /// When anything else, or nothing within [`WAIT`], arrives.
    pub async fn next_push(&mut self) -> Value {
        if let Some(v) = self.buffered.pop_front() {
            return v["push"].clone();
        }
        match self.next().await.expect("push") {
            Incoming::Frame(v) if v.get("push").is_some() => v["push"].clone(),
            other => panic!("expected a push, got {other:?}"),
        }
    }

    /// The next frame, whatever it is.
    ///
    /// # Panics
    /// When a close or nothing within [`WAIT`] arrives.
    pub async fn next_frame(&mut self) -> Value {
        match self.next().await.expect("frame") {
            Incoming::Frame(v) => v,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame or close, within [`WAIT`].
    ///
    /// # Errors
    /// On a timeout, a socket error or an undecodable frame.
    pub async fn next(&mut self) -> anyhow::Result<Incoming> {
        self.next_within(WAIT).await
    }

    /// The next frame or close, within `wait`.
    ///
    /// # Errors
    /// On a timeout, a socket error or an undecodable frame.
    pub async fn next_within(&mut self, wait: std::time::Duration) -> anyhow::Result<Incoming> {
        if let Some(v) = self.buffered.pop_front() {
            return Ok(Incoming::Frame(v));
        }
        self.read_within(wait).await
    }

    /// The next frame or close from the socket (not from what was set aside), within `wait`.
    async fn read_within(&mut self, wait: std::time::Duration) -> anyhow::Result<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("timed out waiting for the server")?
                .context("connection ended")??;
            return Ok(match message {
                Message::Text(t) => Incoming::Frame(serde_json::from_str(t.as_str())?),
                Message::Binary(b) => Incoming::Frame(rmp_serde::from_slice(&b)?),
                Message::Close(frame) => {
                    Incoming::Close(frame.map_or(1005, |f: CloseFrame| u16::from(f.code)))
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            });
        }
    }

    /// Reads until a push whose data is `data`, and returns the channels of the gap notices
    /// seen on the way and that push. Other pushes are allowed only when `skip` accepts their
    /// data.
    ///
    /// # Panics
    /// On anything else, or when nothing arrives within [`WAIT`].
    pub async fn gaps_until_push(
        &mut self,
        data: &Value,
        skip: impl Fn(&Value) -> bool,
    ) -> (Vec<String>, Value) {
        let mut gaps = Vec::new();
        loop {
            match self.next().await.expect("a frame") {
                Incoming::Frame(v) if v.get("gap").is_some() => {
                    gaps.push(v["gap"]["channel"].as_str().unwrap_or_default().to_owned());
                }
                Incoming::Frame(v) if v["push"]["data"] == *data => {
                    return (gaps, v["push"].clone())
                }
                Incoming::Frame(v) if skip(&v["push"]["data"]) => {}
                other => panic!("waiting for a push of {data}, got {other:?}"),
            }
        }
    }

    /// Waits for a close frame, skipping pushes, and returns its code.
    ///
    /// # Panics
    /// When the connection ends without one within [`WAIT`].
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next().await.expect("close frame") {
                Incoming::Close(code) => return code,
                Incoming::Frame(_) => continue,
            }
        }
    }

    /// Closes the connection normally.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// The underlying stream, for tests that need to stop reading.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.stream
    }
}

//! An in-process webhook receiver: what an app's webhook URL would get from Herald's nodes.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// One request received.
#[derive(Clone, Debug)]
pub struct ReceivedWebhook {
    /// `X-Pusher-Key`.
    pub key: String,
    /// `X-Pusher-Signature`.
    pub signature: String,
    /// `Content-Type`.
    pub content_type: String,
    /// The body, as sent.
    pub body: String,
    /// Whether it was answered 200 (others got 500).
    pub accepted: bool,
    /// When it arrived.
    pub at: Instant,
}

impl ReceivedWebhook {
    /// The `events` of the body.
    ///
    /// # Panics
    /// When the body is not a webhook body.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value = serde_json::from_str(&self.body).expect("a JSON body");
        assert!(body["time_ms"].as_u64().is_some(), "time_ms in {body}");
        body["events"].as_array().expect("events").clone()
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<ReceivedWebhook>>,
    /// Requests still to answer with 500.
    failures: AtomicUsize,
    /// Answer every request with 500.
    down: AtomicBool,
}

/// A receiver on a free loopback port, taking `POST`s on any path until dropped. It answers
/// 200, or 500 while told to fail.
pub struct WebhookReceiver {
    /// The URL to configure as a webhook's `url`.
    pub url: String,
    state: Arc<State>,
    _stop: tokio_util::sync::DropGuard,
}

struct Collect(Arc<State>);

impl herald_http::Handler for Collect {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (key, signature, content_type) = (
            header("x-pusher-key"),
            header("x-pusher-signature"),
            header("content-type"),
        );
        let body = match req.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        let fail = self.0.down.load(Ordering::SeqCst)
            || self
                .0
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        self.0
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ReceivedWebhook {
                key,
                signature,
                content_type,
                body,
                accepted: !fail,
                at: Instant::now(),
            });
        let status = if fail {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("response")
    }
}

impl WebhookReceiver {
    /// Starts the receiver.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let (addr, stop) = crate::http::serve_on_loopback(Collect(state.clone())).await;
        Self {
            url: format!("http://{addr}/pusher/webhooks"),
            state,
            _stop: stop,
        }
    }

    /// Answers the next `n` requests with 500.
    pub fn fail_next(&self, n: usize) {
        self.state.failures.store(n, Ordering::SeqCst);
    }

    /// Answers every request with 500 (`true`) or as usual.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Every request received so far, answered or not.
    pub fn requests(&self) -> Vec<ReceivedWebhook> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events of the requests answered 200, in arrival order.
    pub fn delivered(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .filter(|r| r.accepted)
            .flat_map(ReceivedWebhook::events)
            .collect()
    }

    /// The delivered events named `name` (of `channel`, when given).
    pub fn delivered_named(&self, name: &str, channel: Option<&str>) -> Vec<serde_json::Value> {
        self.delivered()
            .into_iter()
            .filter(|e| e["name"] == name && channel.is_none_or(|c| e["channel"] == c))
            .collect()
    }
}

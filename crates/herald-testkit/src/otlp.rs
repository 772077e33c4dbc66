//! An in-process OTLP/HTTP trace receiver: what a collector would get from Herald's nodes.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value::Value,
};
use prost::Message;

/// One received span, flattened.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The span's name.
    pub name: String,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent span id, empty for a root span.
    pub parent_span_id: String,
    /// The resource's `service.instance.id` (Herald's node id).
    pub instance: String,
    /// The span's attributes, values as text.
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The value of attribute `key`, as text.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on a free loopback port, serving `POST /v1/traces` (protobuf) until dropped.
pub struct OtlpReceiver {
    /// The base URL to configure as `telemetry.otlp_endpoint`.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    _stop: tokio_util::sync::DropGuard,
}

struct Collect(Arc<Mutex<Vec<ReceivedSpan>>>);

impl herald_http::Handler for Collect {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let reply = |status| {
            Response::builder()
                .status(status)
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::new()))
                .expect("response")
        };
        if req.uri().path() != "/v1/traces" {
            return reply(StatusCode::NOT_FOUND);
        }
        let Ok(body) = req.into_body().collect().await else {
            return reply(StatusCode::BAD_REQUEST);
        };
        let Ok(request) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
            return reply(StatusCode::BAD_REQUEST);
        };
        let mut spans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource in request.resource_spans {
            let instance = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.instance.id")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| text(v.value.as_ref()))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(ReceivedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    instance: instance.clone(),
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value).as_ref())))
                        .collect(),
                });
            }
        }
        reply(StatusCode::OK)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl OtlpReceiver {
    /// Starts the receiver.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let (addr, stop) = crate::http::serve_on_loopback(Collect(spans.clone())).await;
        Self {
            endpoint: format!("http://{addr}"),
            spans,
            _stop: stop,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

//! OpenTelemetry traces of publications, exported with OTLP over HTTP when
//! `telemetry.otlp_endpoint` is set.
//!
//! A sampled publish gets a `herald.publish` span on the node it entered (a child of the HTTP
//! request's `traceparent` when there is one). Its context rides in the envelope, and every
//! node that delivers the publication opens a `herald.deliver` span under it, so one trace
//! shows where a message went and how late. Publications that are not sampled carry nothing
//! and cost one sampling decision; with traces off they cost a branch.

use std::{sync::Arc, time::Duration};

use herald_broker::{BrokerError, Publication, Published};
use herald_protocol::{ChannelName, TraceParent};
use opentelemetry::{
    trace::{
        Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
        TraceState, Tracer as _, TracerProvider as _,
    },
    Context, KeyValue,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span},
    Resource,
};

use crate::config::TelemetryConfig;

mod export;

/// How a publication entered Herald (the `path` label of `herald_publications_total` and the
/// `herald.publish.path` span attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PublishPath {
    /// `POST /v1/publish` on the HTTP API.
    Http,
    /// A client's publish over its WebSocket.
    Client,
    /// Published straight into Redis by an application (counted by every node that receives
    /// it, since no node saw it enter).
    Redis,
    /// The Pusher HTTP API (`POST /apps/{id}/events`).
    Pusher,
}

impl PublishPath {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PublishPath::Http => "http",
            PublishPath::Client => "client",
            PublishPath::Redis => "redis",
            PublishPath::Pusher => "pusher",
        }
    }
}

/// Why traces could not be started.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint: {0}")]
pub struct TelemetryError(String);

/// The node's tracer; a no-op when traces are off.
pub(crate) struct Telemetry {
    on: Option<(SdkTracerProvider, SdkTracer)>,
    node: String,
}

impl Telemetry {
    /// Starts the exporter when `config.otlp_endpoint` is set; each failed export counts in
    /// `failed_exports`.
    pub(crate) fn start(
        config: &TelemetryConfig,
        node: &str,
        failed_exports: Arc<herald_runtime::metrics::Counter>,
    ) -> Result<Self, TelemetryError> {
        let node = node.to_owned();
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(Self { on: None, node });
        };
        let url = export::traces_url(endpoint);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url.clone())
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        let exporter = export::Watched::new(exporter, url.clone(), failed_exports);
        let batches = BatchConfigBuilder::default()
            .with_scheduled_delay(config.export_interval)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batches)
                    .build(),
            )
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .with_attribute(KeyValue::new("service.instance.id", node.clone()))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("herald-gateway");
        tracing::info!(%url, ratio = config.sample_ratio, "exporting traces with OTLP");
        Ok(Self {
            on: Some((provider, tracer)),
            node,
        })
    }

    /// Traces off.
    #[cfg(test)]
    pub(crate) fn off() -> Self {
        Self {
            on: None,
            node: String::new(),
        }
    }

    /// Opens the span of a publish when it is sampled: a child of `parent` (an HTTP request's
    /// `traceparent`) or the root of a new trace. `None` when traces are off or the publish is
    /// not sampled.
    pub(crate) fn publish_span(
        &self,
        parent: Option<&TraceParent>,
        channel: &ChannelName,
        path: PublishPath,
    ) -> Option<PublishSpan> {
        let (_, tracer) = self.on.as_ref()?;
        let cx = parent.map_or_else(Context::new, remote);
        let span = tracer
            .span_builder("herald.publish")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("messaging.system", "herald"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.destination.name", channel.to_string()),
                KeyValue::new("herald.publish.path", path.as_str()),
                KeyValue::new("herald.node.id", self.node.clone()),
            ])
            .start_with_context(tracer, &cx);
        let trace = traceparent(span.span_context())?;
        Some(PublishSpan { span, trace })
    }

    /// Opens the span of a delivery on this node, under the publish's span, when the
    /// publication carries a trace context.
    pub(crate) fn deliver_span(&self, p: &Publication) -> Option<Span> {
        let (_, tracer) = self.on.as_ref()?;
        let cx = remote(p.trace.as_ref()?);
        let mut attributes = vec![
            KeyValue::new("messaging.system", "herald"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", p.channel.to_string()),
            KeyValue::new("messaging.message.id", p.id.to_string()),
            KeyValue::new("herald.node.id", self.node.clone()),
        ];
        if let Some(offset) = p.offset {
            attributes.push(KeyValue::new("herald.offset", offset as i64));
        }
        if let Some(at) = p.published_at_us {
            let delay = herald_broker::now_us().saturating_sub(at);
            attributes.push(KeyValue::new("herald.broker_delay_us", delay as i64));
        }
        Some(
            tracer
                .span_builder("herald.deliver")
                .with_kind(SpanKind::Consumer)
                .with_attributes(attributes)
                .start_with_context(tracer, &cx),
        )
    }

    /// Sends what is still buffered and stops the exporter (blocks up to its timeout).
    pub(crate) fn shutdown(&self) {
        if let Some((provider, _)) = &self.on {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "traces: shutdown");
            }
        }
    }
}

/// The open span of a publish, and the context it hands to the broker.
pub(crate) struct PublishSpan {
    span: Span,
    /// The context the deliveries join.
    pub(crate) trace: TraceParent,
}

impl PublishSpan {
    /// Records the broker's answer and ends the span.
    pub(crate) fn finish(mut self, result: &Result<Published, BrokerError>) {
        match result {
            Ok(published) => {
                self.span.set_attribute(KeyValue::new(
                    "messaging.message.id",
                    published.id.to_string(),
                ));
                if let Some(offset) = published.offset {
                    self.span
                        .set_attribute(KeyValue::new("herald.offset", offset as i64));
                }
            }
            Err(e) => self.span.set_status(Status::error(e.to_string())),
        }
        self.span.end();
    }
}

/// The deliveries of a traced publication: recorded on its span, which then ends.
pub(crate) fn finish_delivery(mut span: Span, delivered: usize) {
    span.set_attribute(KeyValue::new("herald.deliveries", delivered as i64));
    span.end();
}

/// A remote parent context from a `traceparent`.
fn remote(parent: &TraceParent) -> Context {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(parent.trace_id()),
        SpanId::from_hex(parent.parent_id()),
    ) else {
        return Context::new();
    };
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(context)
}

/// The `traceparent` of a span, when it is sampled.
fn traceparent(context: &SpanContext) -> Option<TraceParent> {
    if !context.is_sampled() {
        return None;
    }
    TraceParent::parse(&format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_round_trips() {
        let tp =
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        let cx = remote(&tp);
        let span = cx.span();
        assert_eq!(traceparent(span.span_context()), Some(tp));
        let unsampled =
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
        assert_eq!(traceparent(remote(&unsampled).span().span_context()), None);
    }

    #[test]
    fn off_opens_no_spans() {
        let channel = ChannelName::parse("news").unwrap();
        assert!(Telemetry::off()
            .publish_span(None, &channel, PublishPath::Http)
            .is_none());
    }
}

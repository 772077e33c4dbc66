//! The OTLP exporter as the node runs it: the collector's URL from the configured endpoint
//! (a base, or one that already ends in `/v1/traces`), and every failed export counted and
//! logged, so that lost spans are never silent.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use herald_runtime::metrics::Counter;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
    Resource,
};

/// Failed exports are logged at most this often (with how many failed since).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The URL spans are posted to: `endpoint` + `/v1/traces`, unless it already ends so.
pub(super) fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// An exporter whose failures are counted (`herald_trace_exports_failed_total`) and logged
/// at warn, at most every minute.
#[derive(Debug)]
pub(super) struct Watched<E> {
    inner: E,
    url: String,
    failed: Arc<Counter>,
    /// When a failure was last logged, and the failures since.
    warned: Mutex<(Option<Instant>, u64)>,
}

impl<E> Watched<E> {
    pub(super) fn new(inner: E, url: String, failed: Arc<Counter>) -> Self {
        Self {
            inner,
            url,
            failed,
            warned: Mutex::new((None, 0)),
        }
    }

    fn failure(&self, spans: usize, error: &dyn std::fmt::Display) {
        self.failed.inc();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        warned.1 += 1;
        if warned.0.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        tracing::warn!(
            url = %self.url,
            %error,
            spans,
            failed_exports = warned.1,
            "spans could not be exported"
        );
        *warned = (Some(Instant::now()), 0);
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            self.failure(spans, e);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_or_one_with_the_path_both_post_to_v1_traces() {
        for endpoint in [
            "http://collector:4318",
            "http://collector:4318/",
            "http://collector:4318/v1/traces",
            "http://collector:4318/v1/traces/",
        ] {
            assert_eq!(
                traces_url(endpoint),
                "http://collector:4318/v1/traces",
                "{endpoint}"
            );
        }
        assert_eq!(
            traces_url("http://gw/otel"),
            "http://gw/otel/v1/traces",
            "a base with a path of its own"
        );
    }
}

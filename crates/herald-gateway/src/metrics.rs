//! The gateway's metrics, served at `/metrics` in the Prometheus text format.

use herald_broker::BrokerStats;
use herald_runtime::metrics::{Counter, Gauge, Histogram, LabeledCounter, TextWriter};

/// Where publications enter: `herald_publications_total{path}` (the values of
/// [`crate::telemetry::PublishPath`]).
pub(crate) const PUBLISH_PATHS: &[&str] = &["http", "client", "redis", "pusher"];
/// Why connections ended: `herald_connections_closed_total{reason}`.
pub(crate) const CLOSE_REASONS: &[&str] = &[
    "client",
    "shutdown",
    "slow_consumer",
    "idle_timeout",
    "token_expired",
    "disconnected",
    "protocol_error",
    "internal",
    "abnormal",
    "killed",
];
/// Why upgrades or tokens were refused: `herald_auth_failures_total{reason}`.
pub(crate) const AUTH_REASONS: &[&str] = &[
    "missing_token",
    "bad_parameters",
    "no_keys",
    "malformed",
    "unknown_kid",
    "no_key_for_alg",
    "signature",
    "expired",
    "not_yet_valid",
    "audience",
    "issuer",
    "missing_claim",
    "claims",
    "wrong_user",
];
/// Which limit was hit: `herald_limit_hits_total{limit}`.
pub(crate) const LIMITS: &[&str] = &[
    "max_connections",
    "max_subscriptions",
    "publish_rate",
    "max_json_depth",
    "origin",
];
/// What became of webhook requests and events: `herald_webhook_events_total{outcome}`.
pub(crate) const WEBHOOK_OUTCOMES: &[&str] = &["delivered", "retried", "given_up", "dropped"];

/// The labeled families (bounded: their values are the lists above).
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) publications: LabeledCounter,
    pub(crate) closed: LabeledCounter,
    pub(crate) auth_failures: LabeledCounter,
    pub(crate) limit_hits: LabeledCounter,
    pub(crate) webhooks: LabeledCounter,
}

impl Default for Families {
    fn default() -> Self {
        Self {
            publications: LabeledCounter::new("path", PUBLISH_PATHS),
            closed: LabeledCounter::new("reason", CLOSE_REASONS),
            auth_failures: LabeledCounter::new("reason", AUTH_REASONS),
            limit_hits: LabeledCounter::new("limit", LIMITS),
            webhooks: LabeledCounter::new("outcome", WEBHOOK_OUTCOMES),
        }
    }
}

/// Every counter and gauge of one gateway node.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections: Gauge,
    pub(crate) connections_total: Counter,
    pub(crate) channels: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) families: Families,
    pub(crate) bytes_written: Counter,
    pub(crate) broker_publications: Counter,
    pub(crate) deliveries: Counter,
    pub(crate) gap_notices: Counter,
    pub(crate) repairs: Counter,
    pub(crate) history_reads: Counter,
    pub(crate) repaired: Counter,
    pub(crate) socket_writes: Counter,
    pub(crate) frames_written: Counter,
    pub(crate) slow_consumer_evictions: Counter,
    pub(crate) idle_timeouts: Counter,
    /// Shared with the trace exporter, which counts its failures.
    pub(crate) trace_exports_failed: std::sync::Arc<Counter>,
    pub(crate) protocol_errors: Counter,
    pub(crate) bad_requests: Counter,
    pub(crate) outbound_delay: Histogram,
    pub(crate) broker_delay: Histogram,
    pub(crate) broker_publish: Histogram,
    pub(crate) presence_notices: Counter,
    pub(crate) presence_reports: Counter,
    pub(crate) presence_heartbeats: Counter,
    pub(crate) presence_resyncs: Counter,
    pub(crate) presence_failures: Counter,
}

impl Metrics {
    pub(crate) fn render(&self, broker: BrokerStats, broker_ready: bool) -> String {
        let mut w = TextWriter::new();
        w.gauge(
            "herald_broker_ready",
            "1 when the broker takes publications, 0 otherwise.",
            i64::from(broker_ready),
        );
        w.counter(
            "herald_broker_reconnects_total",
            "Broker connections re-established after a loss.",
            broker.reconnects,
        );
        w.counter(
            "herald_broker_malformed_total",
            "Messages from the broker dropped because they were not valid envelopes.",
            broker.malformed,
        );
        w.counter(
            "herald_broker_publish_writes_total",
            "Writes on the broker publish connection(s).",
            broker.publish_writes,
        );
        w.counter(
            "herald_broker_publish_commands_total",
            "Publish commands sent to the broker (many per write when pipelined).",
            broker.publish_commands,
        );
        w.counter(
            "herald_broker_gaps_total",
            "Channels resubscribed after a broker connection loss (each got a gap notice).",
            broker.gaps,
        );
        w.gauge(
            "herald_connections",
            "WebSocket connections open now.",
            self.connections.get(),
        );
        w.counter(
            "herald_connections_total",
            "WebSocket connections accepted.",
            self.connections_total.get(),
        );
        w.gauge(
            "herald_subscriptions",
            "Channel subscriptions of this node's connections receiving publications now (a \
             connection on 3 channels counts 3).",
            self.subscriptions.get(),
        );
        w.gauge(
            "herald_channels",
            "Channels this node holds a broker subscription for.",
            self.channels.get(),
        );
        w.labeled_counter(
            "herald_publications_total",
            "Publications accepted through this node, by where they entered.",
            &self.families.publications,
        );
        w.counter(
            "herald_broker_publications_total",
            "Publications received from the broker for local subscribers.",
            self.broker_publications.get(),
        );
        w.counter(
            "herald_deliveries_total",
            "Frames queued to subscribers.",
            self.deliveries.get(),
        );
        w.counter(
            "herald_history_reads_total",
            "History reads made for recovering clients, each shared by the clients recovering a channel at once.",
            self.history_reads.get(),
        );
        w.counter(
            "herald_repairs_total",
            "Channels whose missed publications a shard read back from history after the broker gave them back.",
            self.repairs.get(),
        );
        w.counter(
            "herald_repairs_completed_total",
            "Of those, the repairs that covered everything missed (no gap notice).",
            self.repaired.get(),
        );
        w.counter(
            "herald_gap_notices_total",
            "Gap notices queued to subscribers after the broker subscription was restored.",
            self.gap_notices.get(),
        );
        w.counter(
            "herald_socket_writes_total",
            "Write syscalls to client sockets (each carries up to 64 frames).",
            self.socket_writes.get(),
        );
        w.counter(
            "herald_frames_written_total",
            "Frames completely written to client sockets.",
            self.frames_written.get(),
        );
        w.counter(
            "herald_slow_consumer_evictions_total",
            "Connections closed because their outbound queue was full (close 4001).",
            self.slow_consumer_evictions.get(),
        );
        w.counter(
            "herald_idle_timeouts_total",
            "Connections closed for not answering pings (close 4002).",
            self.idle_timeouts.get(),
        );
        w.counter(
            "herald_trace_exports_failed_total",
            "Batches of spans the OTLP collector did not take (their spans are lost).",
            self.trace_exports_failed.get(),
        );
        w.counter(
            "herald_protocol_errors_total",
            "Connections closed for breaking the WebSocket protocol (1002, 1007, 1009).",
            self.protocol_errors.get(),
        );
        w.counter(
            "herald_bad_requests_total",
            "Client requests answered with an error because they could not be decoded.",
            self.bad_requests.get(),
        );
        w.counter(
            "herald_presence_notices_total",
            "Join and leave pushes queued to subscribers of presence channels.",
            self.presence_notices.get(),
        );
        w.counter(
            "herald_presence_reports_total",
            "Joins and leaves this node reported to the presence table.",
            self.presence_reports.get(),
        );
        w.counter(
            "herald_presence_heartbeats_total",
            "Lease renewals of this node accepted by the presence table.",
            self.presence_heartbeats.get(),
        );
        w.counter(
            "herald_presence_resyncs_total",
            "Times the table had forgotten this node and it reported all its members again.",
            self.presence_resyncs.get(),
        );
        w.counter(
            "herald_presence_failures_total",
            "Reports and heartbeats that failed (table unreachable); they are retried.",
            self.presence_failures.get(),
        );
        w.counter(
            "herald_bytes_written_total",
            "Bytes written to client sockets (frames, before TLS).",
            self.bytes_written.get(),
        );
        w.labeled_counter(
            "herald_connections_closed_total",
            "WebSocket connections ended, by why.",
            &self.families.closed,
        );
        w.labeled_counter(
            "herald_auth_failures_total",
            "Upgrades, refreshes and channel tokens refused, by why.",
            &self.families.auth_failures,
        );
        w.labeled_counter(
            "herald_webhook_events_total",
            "Webhook events: delivered, retried (once per failed attempt), given up after \
             pusher.webhook_attempts, or dropped because the node's queue was full.",
            &self.families.webhooks,
        );
        w.labeled_counter(
            "herald_limit_hits_total",
            "Requests and upgrades refused by a limit, by which.",
            &self.families.limit_hits,
        );
        w.histogram(
            "herald_broker_publish_seconds",
            "Round trip of a publication to the broker and back with its offset (HTTP API and \
             client publishes; failures included).",
            &self.broker_publish,
        );
        w.histogram(
            "herald_broker_delay_seconds",
            "From the broker sequencing a publication (its clock) to this node's hub taking it \
             for fan-out: the first hop of publish-to-deliver latency.",
            &self.broker_delay,
        );
        w.histogram(
            "herald_outbound_delay_seconds",
            "From a frame entering an empty outbound queue to the write that empties the \
             connection's backlog: the node's share of publish-to-deliver latency.",
            &self.outbound_delay,
        );
        herald_runtime::logging::sink::render(&mut w);
        w.finish()
    }
}

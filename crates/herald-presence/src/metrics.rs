//! The presence service's metrics, served at `/metrics` in the Prometheus text format.

use herald_runtime::metrics::{Counter, Gauge, TextWriter};

/// Every counter and gauge of one presence service replica.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) expiry_runs: Counter,
    pub(crate) expiry_failures: Counter,
    pub(crate) nodes_expired: Counter,
    pub(crate) leaves_expired: Counter,
    pub(crate) store_up: Gauge,
    pub(crate) queries: Counter,
}

impl Metrics {
    pub(crate) fn render(&self) -> String {
        let mut w = TextWriter::new();
        w.gauge(
            "herald_presence_store_up",
            "1 when the last call to the presence table in Redis succeeded, 0 otherwise.",
            self.store_up.get(),
        );
        w.counter(
            "herald_presence_expiry_runs_total",
            "Lease expiry passes run by this replica.",
            self.expiry_runs.get(),
        );
        w.counter(
            "herald_presence_expiry_failures_total",
            "Lease expiry passes that failed (Redis unreachable or refusing).",
            self.expiry_failures.get(),
        );
        w.counter(
            "herald_presence_nodes_expired_total",
            "Gateway nodes this replica removed because their lease ran out.",
            self.nodes_expired.get(),
        );
        w.counter(
            "herald_presence_expired_leaves_total",
            "Leave events published because a member's last node was expired.",
            self.leaves_expired.get(),
        );
        w.counter(
            "herald_presence_queries_total",
            "Member list and count queries answered.",
            self.queries.get(),
        );
        herald_runtime::logging::sink::render(&mut w);
        w.finish()
    }
}

//! Counters and gauges as plain atomics, rendered in the Prometheus text format.
//!
//! Updating a metric is one relaxed atomic add: cheap enough for the hot path.

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
};

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds `n` (negative to subtract).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Builds a Prometheus text exposition.
#[derive(Debug, Default)]
pub struct TextWriter {
    out: String,
}

impl TextWriter {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a counter with its help line.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let _ = write!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }

    /// Writes a gauge with its help line.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let _ = write!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        );
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let c = Counter::default();
        c.add(3);
        let g = Gauge::default();
        g.add(5);
        g.add(-2);
        let mut w = TextWriter::new();
        w.counter("herald_x_total", "Things.", c.get());
        w.gauge("herald_y", "Level.", g.get());
        assert_eq!(
            w.finish(),
            "# HELP herald_x_total Things.\n# TYPE herald_x_total counter\nherald_x_total 3\n\
             # HELP herald_y Level.\n# TYPE herald_y gauge\nherald_y 3\n"
        );
    }
}

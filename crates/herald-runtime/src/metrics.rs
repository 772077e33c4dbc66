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

/// Upper bounds, in microseconds, of the latency histogram's buckets (the last is +Inf).
pub const LATENCY_BUCKETS_US: [u64; 14] = [
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    1_000_000,
    u64::MAX,
];

/// A latency histogram over [`LATENCY_BUCKETS_US`]: one relaxed add per bucket hit, plus the
/// sum, so recording costs two atomic adds and a short search.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation of `us` microseconds.
    pub fn record_us(&self, us: u64) {
        let i = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations per bucket (not cumulative), in the order of [`LATENCY_BUCKETS_US`].
    pub fn counts(&self) -> [u64; LATENCY_BUCKETS_US.len()] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// The sum of every observation, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }
}

/// A counter per value of one label, the values fixed when it is made: the label set is
/// bounded by construction, and counting is one relaxed atomic add.
#[derive(Debug)]
pub struct LabeledCounter {
    label: &'static str,
    values: &'static [&'static str],
    counts: Box<[AtomicU64]>,
}

impl LabeledCounter {
    /// A counter for each of `values` of `label`, all at zero (and all rendered).
    pub fn new(label: &'static str, values: &'static [&'static str]) -> Self {
        Self {
            label,
            values,
            counts: values.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds one to `value`'s counter. A value not in the list counts nowhere (and fails debug
    /// builds): callers pass constants.
    pub fn inc(&self, value: &str) {
        self.add(value, 1);
    }

    /// Adds `n` to `value`'s counter, as [`Self::inc`].
    pub fn add(&self, value: &str, n: u64) {
        match self.values.iter().position(|v| *v == value) {
            Some(i) => {
                self.counts[i].fetch_add(n, Ordering::Relaxed);
            }
            None => debug_assert!(false, "{value:?} is not a value of {}", self.label),
        }
    }

    /// `value`'s count.
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .iter()
            .position(|v| *v == value)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
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

    /// Writes a labeled counter, one line per value.
    pub fn labeled_counter(&mut self, name: &str, help: &str, c: &LabeledCounter) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} counter");
        for (value, count) in c.values.iter().zip(c.counts.iter()) {
            let n = count.load(Ordering::Relaxed);
            let _ = writeln!(self.out, "{name}{{{}=\"{value}\"}} {n}", c.label);
        }
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

    /// Writes a histogram in seconds, with cumulative buckets, sum and count.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut total = 0;
        for (bound, count) in LATENCY_BUCKETS_US.iter().zip(h.counts()) {
            total += count;
            if *bound == u64::MAX {
                let _ = writeln!(self.out, "{name}_bucket{{le=\"+Inf\"}} {total}");
            } else {
                let le = *bound as f64 / 1e6;
                let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {total}");
            }
        }
        let sum = h.sum_us() as f64 / 1e6;
        let _ = write!(self.out, "{name}_sum {sum}\n{name}_count {total}\n");
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
    fn labeled_counters_render_every_value() {
        let c = LabeledCounter::new("path", &["http", "client"]);
        c.inc("client");
        c.inc("client");
        assert_eq!(c.get("client"), 2);
        let mut w = TextWriter::new();
        w.labeled_counter("x_total", "X.", &c);
        assert_eq!(
            w.finish(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{path=\"http\"} 0\nx_total{path=\"client\"} 2\n"
        );
    }

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

    #[test]
    fn histograms_are_cumulative_in_seconds() {
        let h = Histogram::default();
        h.record_us(50);
        h.record_us(51);
        h.record_us(2_000_000);
        let mut w = TextWriter::new();
        w.histogram("herald_d_seconds", "Delay.", &h);
        let text = w.finish();
        assert!(
            text.contains("herald_d_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("herald_d_seconds_bucket{le=\"0.0001\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("herald_d_seconds_bucket{le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("herald_d_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("herald_d_seconds_sum 2.000101\nherald_d_seconds_count 3\n"));
    }
}

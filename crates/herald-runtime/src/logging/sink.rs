//! Where log lines go: a bounded queue in front of stderr, written by a thread of its own.
//!
//! A node must never wait for, or fail because of, whoever reads its logs. A reader that is
//! slow (a full pipe) blocks only the log thread; a reader that is gone (a broken pipe) makes
//! writes fail. Either way the line is dropped and counted, and the node goes on: no thread that
//! serves clients or handles a signal ever blocks on, or panics over, a log write.

use std::{
    io::Write,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc::{sync_channel, SyncSender, TrySendError},
        OnceLock,
    },
    time::{Duration, Instant},
};

use crate::metrics::LabeledCounter;

/// Lines waiting for the log thread at most; more are dropped.
const QUEUE_LINES: usize = 1024;

/// The reasons a log line is dropped, for `herald_log_lines_dropped_total{reason}`.
pub const DROP_REASONS: &[&str] = &["queue_full", "write_failed"];

struct Sink {
    lines: SyncSender<Vec<u8>>,
    /// Lines sent and not yet written (or failed).
    queued: AtomicUsize,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static DROPPED: OnceLock<LabeledCounter> = OnceLock::new();
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped so far, by reason ([`DROP_REASONS`]).
pub fn dropped() -> &'static LabeledCounter {
    DROPPED.get_or_init(|| LabeledCounter::new("reason", DROP_REASONS))
}

/// Writes the logging counters (`herald_log_lines_dropped_total{reason}`) to `w`.
pub fn render(w: &mut crate::metrics::TextWriter) {
    w.labeled_counter(
        "herald_log_lines_dropped_total",
        "Log lines dropped instead of waiting: the log queue was full (a slow reader) or the write failed (no reader).",
        dropped(),
    );
}

/// Log lines written so far.
pub fn written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

fn sink() -> &'static Sink {
    SINK.get_or_init(|| {
        let (lines, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        // Without the thread, the receiver is gone and every line counts as failed.
        let _ = std::thread::Builder::new()
            .name("herald-log".into())
            .spawn(move || {
                let mut stderr = std::io::stderr();
                for line in rx {
                    match stderr.write_all(&line) {
                        Ok(()) => {
                            WRITTEN.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => dropped().inc("write_failed"),
                    }
                    if let Some(sink) = SINK.get() {
                        sink.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            });
        Sink {
            lines,
            queued: AtomicUsize::new(0),
        }
    })
}

/// A writer for one log event: the fmt layer hands it the whole formatted line in one write.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let sink = sink();
        sink.queued.fetch_add(1, Ordering::Relaxed);
        match sink.lines.try_send(buf.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                sink.queued.fetch_sub(1, Ordering::Relaxed);
                dropped().inc("queue_full");
            }
            Err(TrySendError::Disconnected(_)) => {
                sink.queued.fetch_sub(1, Ordering::Relaxed);
                dropped().inc("write_failed");
            }
        }
        // Never an error: the fmt layer would report it on stderr, the very thing that failed.
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits up to `within` for the lines already queued to be written (at exit, so that the last
/// lines are not lost when the reader keeps up); returns at once when none are queued.
pub fn flush(within: Duration) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let started = Instant::now();
    while sink.queued.load(Ordering::Relaxed) > 0 && started.elapsed() < within {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_never_fails_and_lines_reach_the_thread() {
        let before = written() + dropped().get("write_failed") + dropped().get("queue_full");
        let mut w = LogWriter;
        assert_eq!(w.write(b"a line\n").unwrap(), 7);
        flush(Duration::from_secs(5));
        let after = written() + dropped().get("write_failed") + dropped().get("queue_full");
        assert_eq!(after, before + 1, "the line was written or counted");
    }
}

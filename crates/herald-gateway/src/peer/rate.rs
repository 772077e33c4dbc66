//! A token bucket: `rate` per second, as deep as one second's worth.

use std::time::Instant;

#[derive(Debug)]
pub(crate) struct RateBucket {
    tokens: f64,
    last: Instant,
}

impl RateBucket {
    /// A full bucket.
    pub(crate) fn full(rate: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(rate),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let mut b = RateBucket::full(5, t0);
        assert_eq!((0..10).filter(|_| b.take(5, t0)).count(), 5);
        assert!(!b.take(5, t0 + Duration::from_millis(100)));
        assert!(b.take(5, t0 + Duration::from_millis(300)));
        // A long pause refills only up to one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(5, later)).count(), 5);
    }
}

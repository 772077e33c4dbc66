//! The timed waits of a connection's loop: each resolves never when it has nothing to wait for.

use std::{pin::Pin, time::Duration};

use tokio::time::{Instant, Sleep};

/// Resolves when the token's expiry timer fires; never when there is none.
pub(super) async fn expiry_wait(expiry: &mut Option<Pin<Box<Sleep>>>) {
    match expiry {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Resolves at `deadline`; never when there is none.
pub(super) async fn close_wait(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A random delay in `[0, window)`.
pub(super) fn jitter(window: Duration) -> Duration {
    let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(fastrand::u64(0..nanos))
}

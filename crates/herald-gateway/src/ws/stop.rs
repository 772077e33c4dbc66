//! The node's two stops as every connection waits for them: draining, and the grace period's
//! end.
//!
//! A connection's task polls each of its waits whenever it wakes, thousands of times a second
//! under load. Waiting on a `CancellationToken` costs a lock per poll; a [`Stop`] costs one
//! atomic load once its waiter is registered.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Poll, Waker},
};

use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// One signal, set once, that many tasks wait for.
#[derive(Default)]
pub(crate) struct Stop {
    set: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn trigger(&self) {
        self.set.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Sets a new stop when `token` is cancelled; the task that watches it is tracked by
    /// `tracker` and ends with `until`.
    fn following(
        token: &CancellationToken,
        until: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let stop = Arc::new(Self::default());
        let (token, until, set) = (token.clone(), until.clone(), stop.clone());
        tracker.spawn(async move {
            tokio::select! {
                () = token.cancelled() => set.trigger(),
                () = until.cancelled() => {}
            }
        });
        stop
    }

    /// Resolves once the stop is set. Once it has registered, polling it again from the same
    /// task reads one atomic.
    pub(crate) async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        let mut registered: Option<Waker> = None;
        std::future::poll_fn(|cx| {
            if self.set.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            if notified.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            registered = Some(cx.waker().clone());
            // Set between the load above and the registration: the notice went to no one.
            if self.set.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Draining and the grace period's end, for the connections.
#[derive(Clone)]
pub(crate) struct Stops {
    /// The node is draining: close at a random moment of the drain window.
    pub(crate) drain: Arc<Stop>,
    /// The grace period is over: drop the connection now.
    pub(crate) kill: Arc<Stop>,
}

impl Stops {
    /// Stops that follow `shutdown` and `kill`, watched until `until` is cancelled.
    pub(crate) fn following(
        shutdown: &CancellationToken,
        kill: &CancellationToken,
        until: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        Self {
            drain: Stop::following(shutdown, until, tracker),
            kill: Stop::following(kill, until, tracker),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A token to follow, the token that ends the watch, and the watcher's tracker.
    fn parts() -> (CancellationToken, CancellationToken, TaskTracker) {
        (
            CancellationToken::new(),
            CancellationToken::new(),
            TaskTracker::new(),
        )
    }

    #[tokio::test]
    async fn a_stop_wakes_every_waiter_including_those_polled_many_times() {
        let (token, until, tracker) = parts();
        let stop = Stop::following(&token, &until, &tracker);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let wait = stop.wait();
                    tokio::pin!(wait);
                    // Polled again and again by the same task before the stop is set.
                    for _ in 0..10 {
                        tokio::select! {
                            biased;
                            () = &mut wait => return "stopped early",
                            () = tokio::task::yield_now() => {}
                        }
                    }
                    wait.await;
                    "stopped"
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        token.cancel();
        for waiter in waiters {
            let outcome = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            assert_eq!(outcome.expect("woken").expect("ran"), "stopped");
        }
        // Set already: resolves at once.
        tokio::time::timeout(Duration::from_secs(1), stop.wait())
            .await
            .expect("resolves");
    }

    #[tokio::test]
    async fn the_watching_task_ends_with_until() {
        let (token, until, tracker) = parts();
        let _stop = Stop::following(&token, &until, &tracker);
        until.cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .expect("the watcher ended");
    }
}

//! The lease keeper: removes gateway nodes whose lease ran out, with their members.

use std::{sync::Arc, time::Duration};

use herald_broker_redis::RedisPresence;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Calls `herald_presence_expire` every `interval` until `stop` is cancelled.
///
/// The call is atomic in Redis, so replicas running this side by side never remove a node
/// twice nor publish a leave twice: one of them finds the node, the others find nothing.
pub(crate) async fn run(
    table: Arc<RedisPresence>,
    metrics: Arc<Metrics>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        metrics.expiry_runs.inc();
        match table.expire().await {
            Ok((nodes, leaves)) => {
                metrics.store_up.set(1);
                metrics.nodes_expired.add(nodes);
                metrics.leaves_expired.add(leaves);
                if failing {
                    tracing::info!("presence table reachable again");
                    failing = false;
                }
                if nodes > 0 {
                    tracing::info!(nodes, leaves, "expired the leases of silent nodes");
                }
            }
            Err(e) => {
                metrics.store_up.set(0);
                metrics.expiry_failures.inc();
                if !failing {
                    tracing::warn!(error = %e, "lease expiry failed; retrying every interval");
                    failing = true;
                }
            }
        }
    }
}

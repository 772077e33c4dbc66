//! Publications counted through a fault: a publisher that keeps every publication a gateway
//! acknowledged, and a reader that checks a subscriber saw each of them once, in order.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::{Incoming, WsClient};

/// A publication the gateway acknowledged: where it went, and its number (its data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Its offset in the channel.
    pub offset: u64,
    /// The epoch the offset counts in.
    pub epoch: String,
    /// Its number, the data: `n * 10000 + attempt` for the attempt acknowledged of the
    /// `n`th publication, so that an attempt that failed but was published all the same is
    /// told from the one acknowledged.
    pub n: u64,
}

/// Publishes `count` publications into `channel` through the API at `api`, `every` apart, and
/// returns the acknowledged ones. A publish that is refused or fails is tried again (for at
/// most 10 s) with the next number ([`Acked::n`]): a failed one may still have been
/// published, and is then received too; only the acknowledged ones must be.
///
/// # Panics
/// When a publication is refused for 10 s.
pub fn publish_counted(
    api: SocketAddr,
    channel: &str,
    count: u64,
    every: Duration,
) -> JoinHandle<Vec<Acked>> {
    let channel = channel.to_owned();
    tokio::spawn(async move {
        let mut acked = Vec::new();
        for n in 1..=count {
            let started = Instant::now();
            for attempt in 0.. {
                let data = n * 10_000 + attempt;
                let body = json!({"channel": channel, "data": data}).to_string();
                let sent = crate::http_request(api, "POST", "/v1/publish", &[], body.as_bytes());
                match sent.await {
                    Ok(r) if r.status == 200 => {
                        let v = r.json();
                        acked.push(Acked {
                            offset: v["offset"].as_u64().expect("an offset"),
                            epoch: v["epoch"].as_str().expect("an epoch").to_owned(),
                            n: data,
                        });
                        break;
                    }
                    _ => assert!(
                        started.elapsed() < Duration::from_secs(10),
                        "publication {n} refused for 10 s"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(every).await;
        }
        acked
    })
}

/// What a subscriber received: each push's `(offset, number)` and the gap notices.
#[derive(Debug, Default)]
pub struct Received {
    /// `(offset, number)` of each push, as received.
    pub pushes: Vec<(u64, u64)>,
    /// The gap notices, each with the number of pushes received before it.
    pub gaps: Vec<(usize, Value)>,
}

impl Received {
    /// Reads `client`'s pushes and gap notices until the last publication of `acked`.
    ///
    /// # Panics
    /// When anything else arrives, or nothing for 5 s.
    pub async fn until(client: &mut WsClient, acked: &[Acked]) -> Self {
        let last = acked.last().expect("a publication acknowledged").n;
        let mut received = Self::default();
        while received.pushes.last().map(|p| p.1) != Some(last) {
            match client.next().await.expect("the next publication") {
                Incoming::Frame(v) if v.get("push").is_some() => {
                    let push = &v["push"];
                    let offset = push["offset"].as_u64().expect("an offset");
                    received
                        .pushes
                        .push((offset, push["data"].as_u64().expect("a number")));
                }
                Incoming::Frame(v) if v.get("gap").is_some() => {
                    received.gaps.push((received.pushes.len(), v));
                }
                other => panic!("a push or a gap notice, not {other:?}"),
            }
        }
        received
    }

    /// Asserts that every publication in `acked` was received once and in order, and that
    /// nothing was received twice or out of order (offsets only grow: one epoch).
    ///
    /// # Panics
    /// When one is missing, repeated or out of order.
    pub fn assert_each_once_in_order(&self, acked: &[Acked]) {
        let back = self.pushes.windows(2).find(|w| w[1].0 <= w[0].0);
        assert!(back.is_none(), "received twice or out of order: {back:?}");
        let expected: Vec<(u64, u64)> = acked.iter().map(|a| (a.offset, a.n)).collect();
        let ours: Vec<(u64, u64)> = self
            .pushes
            .iter()
            .copied()
            .filter(|p| expected.contains(p))
            .collect();
        let missing: Vec<&(u64, u64)> = expected.iter().filter(|e| !ours.contains(e)).collect();
        assert!(
            missing.is_empty(),
            "acknowledged but not received: {missing:?}"
        );
        assert_eq!(ours, expected, "in order");
    }
}

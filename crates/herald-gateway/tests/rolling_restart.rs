//! Rolling restarts lose nothing: three gateways on one Redis are restarted one after another
//! under a steady publish rate. Native clients that get 4000 (drain) reconnect to another node
//! and subscribe with the last position they saw; each sees every publication once, in order.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use herald_testkit::{redis_config, Incoming, RedisServer, TestGateway, WsClient};
use serde_json::json;

const CLIENTS: usize = 15;
const PUBLICATIONS: u64 = 500;

/// The nodes up and not draining: `(websocket, api)`.
#[derive(Default)]
struct Live(Mutex<Vec<(SocketAddr, SocketAddr)>>);

impl Live {
    fn pick(&self, i: usize) -> (SocketAddr, SocketAddr) {
        let live = self.0.lock().unwrap();
        live[i % live.len()]
    }

    fn add(&self, gw: &TestGateway) {
        self.0.lock().unwrap().push((gw.ws_addr, gw.api_addr));
    }

    fn remove(&self, gw: &TestGateway) {
        self.0.lock().unwrap().retain(|(ws, _)| *ws != gw.ws_addr);
    }
}

/// What one client saw: `(offset, data)` of each push, from where it first subscribed.
struct Seen {
    first: u64,
    pushes: Vec<(u64, u64)>,
    reconnects: usize,
}

/// Follows `news` through the restarts: subscribes on a live node (with the last position once
/// it has one), reads pushes, and on a drain's 4000 starts again on another node. Stops once
/// it has seen offset `last` (set when the publisher is done).
async fn follow(live: Arc<Live>, which: usize, last: Arc<AtomicU64>) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut position: Option<(u64, String)> = None;
    let mut seen = Seen {
        first: 0,
        pushes: Vec::new(),
        reconnects: 0,
    };
    for attempt in which.. {
        assert!(Instant::now() < deadline, "client {which} did not finish");
        let (ws, _) = live.pick(attempt);
        let Ok(mut c) = WsClient::connect(&format!("ws://{ws}/ws"), None).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let mut subscribe = json!({"channels": ["news"]});
        if let Some((offset, epoch)) = &position {
            subscribe["recover"] = json!({"news": {"offset": offset, "epoch": epoch}});
        }
        c.send(&json!({"id": 1, "subscribe": subscribe})).await;
        loop {
            let done = last.load(Ordering::SeqCst);
            if done > 0 && position.as_ref().is_some_and(|(o, _)| *o >= done) {
                return seen;
            }
            // Short waits: the loop looks at `last` between them.
            match c.next_within(Duration::from_millis(200)).await {
                Ok(Incoming::Frame(v)) if v.get("push").is_some() => {
                    let (offset, data) = (&v["push"]["offset"], &v["push"]["data"]);
                    let offset = offset.as_u64().expect("an offset");
                    let (expected, epoch) = position.clone().expect("a position before pushes");
                    assert_eq!(offset, expected + 1, "client {which}: once each, in order");
                    seen.pushes.push((offset, data.as_u64().expect("a number")));
                    position = Some((offset, epoch));
                }
                Ok(Incoming::Frame(v)) if v["id"] == 1 => {
                    let ok = &v["ok"];
                    if position.is_some() {
                        assert_eq!(ok["recovery"][0]["recovered"], true, "client {which}: {v}");
                    } else {
                        let p = &ok["positions"][0];
                        let epoch = p["epoch"].as_str().expect("an epoch").to_owned();
                        seen.first = p["offset"].as_u64().expect("an offset");
                        position = Some((seen.first, epoch));
                    }
                }
                Ok(Incoming::Close(code)) => {
                    assert_eq!(code, 4000, "client {which}: only drains close");
                    seen.reconnects += 1;
                    break;
                }
                Err(e) if e.to_string().contains("timed out") => {}
                other => panic!("client {which}: {other:?}"),
            }
        }
    }
    unreachable!()
}

/// Publishes 1..=PUBLICATIONS into `news`, 5 ms apart, through any live node (another one
/// when a node refuses); returns each acknowledged publication's `(offset, data)`.
async fn publish(live: Arc<Live>) -> Vec<(u64, u64)> {
    let mut acked = Vec::new();
    for n in 1..=PUBLICATIONS {
        let body = json!({"channel": "news", "data": n}).to_string();
        for attempt in 0.. {
            assert!(attempt < 200, "publication {n} refused by every node");
            let (_, api) = live.pick(n as usize + attempt);
            let sent =
                herald_testkit::http_request(api, "POST", "/v1/publish", &[], body.as_bytes());
            if let Ok(r) = sent.await {
                if r.status == 200 {
                    acked.push((r.json()["offset"].as_u64().unwrap(), n));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acked
}

#[tokio::test]
async fn a_rolling_restart_of_three_gateways_loses_and_repeats_nothing() {
    let redis = RedisServer::start().await;
    let start = || async {
        let gw = TestGateway::start_with(redis_config(&redis.url())).await;
        gw.wait_ready(Duration::from_secs(5)).await;
        gw
    };
    let mut nodes = vec![start().await, start().await, start().await];
    let live = Arc::new(Live::default());
    for gw in &nodes {
        live.add(gw);
    }
    // The channel has a position (an epoch) before the clients come.
    assert_eq!(nodes[0].publish("news", json!(0)).await.status, 200);
    let last = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(follow(live.clone(), i, last.clone())))
        .collect();
    // Every client has subscribed before publishing starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let publisher = tokio::spawn(publish(live.clone()));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let old = nodes.remove(0);
        live.remove(&old);
        old.stop().await;
        let new = start().await;
        live.add(&new);
        nodes.push(new);
    }
    let acked = publisher.await.unwrap();
    last.store(acked.last().unwrap().0, Ordering::SeqCst);
    let mut reconnects = 0;
    for client in clients {
        let seen = client.await.unwrap();
        reconnects += seen.reconnects;
        let expected: Vec<(u64, u64)> = acked
            .iter()
            .copied()
            .filter(|(offset, _)| *offset > seen.first)
            .collect();
        // Every offset once and in order (checked as they came), and every acknowledged
        // publication among them with its data.
        let ours: Vec<(u64, u64)> = seen
            .pushes
            .iter()
            .copied()
            .filter(|p| expected.contains(p))
            .collect();
        assert_eq!(
            ours, expected,
            "every acknowledged publication, once, in order"
        );
    }
    // Each client was on one of the restarted nodes at least once.
    assert!(reconnects >= CLIENTS, "{reconnects} reconnects");
    for gw in nodes {
        gw.stop().await;
    }
}

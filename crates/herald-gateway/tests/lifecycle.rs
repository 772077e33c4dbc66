//! A connection's and a node's life: pings and idle timeouts, slow consumers, and the drain.

use std::time::{Duration, Instant};

use herald_protocol::WireFormat;
use herald_testkit::{eventually, test_config, Incoming, RawClient, TestGateway, WAIT};
use serde_json::json;

#[tokio::test]
async fn drain_closes_clients_with_reconnect_spread_over_the_window() {
    let mut config = test_config();
    config.shutdown.drain_window = Duration::from_millis(1000);
    config.shutdown.grace_period = Duration::from_secs(4);
    let gw = TestGateway::start_with(config).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut c = gw.client(None).await;
        c.subscribe_ok(&["news"]).await;
        clients.push(c);
    }
    let api = gw.api_addr;
    let ws = gw.ws_addr;
    let started = Instant::now();
    gw.begin_shutdown();

    eventually(WAIT, "not ready while draining", || async {
        herald_testkit::http_request(api, "GET", "/readyz", &[], b"")
            .await
            .is_ok_and(|r| r.status == 503)
    })
    .await;
    eventually(WAIT, "new connections refused while draining", || async {
        herald_testkit::WsClient::connect(&format!("ws://{ws}/ws"), None)
            .await
            .is_err()
    })
    .await;

    let waits: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let code = c.expect_close().await;
                (code, started.elapsed())
            })
        })
        .collect();
    let mut closes = Vec::new();
    for w in waits {
        closes.push(w.await.unwrap());
    }
    assert!(closes.iter().all(|(code, _)| *code == 4000), "{closes:?}");
    let first = closes.iter().map(|(_, t)| *t).min().unwrap();
    let last = closes.iter().map(|(_, t)| *t).max().unwrap();
    assert!(
        last - first >= Duration::from_millis(300),
        "closes are spread over the window, not all at once: {first:?}..{last:?}"
    );
    assert!(
        last < Duration::from_millis(1500),
        "all within the window: {last:?}"
    );
    let took = gw.stop().await + started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "exits within the grace period: {took:?}"
    );
}

#[tokio::test]
async fn grace_period_bounds_the_exit_when_clients_never_answer() {
    let mut config = test_config();
    config.shutdown.drain_window = Duration::from_millis(100);
    config.shutdown.grace_period = Duration::from_millis(1500);
    config.websocket.close_timeout = Duration::from_secs(30);
    let gw = TestGateway::start_with(config).await;
    // Never reads, never answers the close frame.
    let _silent = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    eventually(WAIT, "connected", || async {
        gw.metric("herald_connections").await == 1.0
    })
    .await;
    let took = gw.stop().await;
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(
        took >= Duration::from_millis(1000),
        "waited for the client: {took:?}"
    );
}

#[tokio::test]
async fn silent_peers_are_pinged_then_closed_and_live_ones_stay() {
    let mut config = test_config();
    config.websocket.ping_interval = Duration::from_millis(100);
    config.websocket.idle_timeout = Duration::from_millis(350);
    let gw = TestGateway::start_with(config).await;
    let mut live = gw.client(None).await;
    // The tungstenite client answers pings as it reads: it keeps reading past the timeout.
    let live = tokio::spawn(async move {
        match live.next_within(Duration::from_millis(800)).await {
            Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
            Ok(other) => panic!("the live client got {other:?}"),
        }
        live
    });
    let mut dead = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    assert_eq!(dead.next_frame().await.unwrap(), (0x9, vec![]), "a ping");
    // The raw client never answers: it is closed with 4002.
    assert_eq!(dead.close_code().await.unwrap(), 4002);
    let mut live = live.await.unwrap();
    live.subscribe_ok(&["news"]).await;
    assert_eq!(gw.metric("herald_idle_timeouts_total").await, 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_the_others_keep_receiving() {
    let mut config = test_config();
    // The default queue, 1 MiB, holds 34 of the 30 KB publications below. A shard thread that
    // falls behind may push several at once before a connection task runs: the fast client
    // must not be taken for a slow one then (a 64 KiB queue, two publications, was).
    config.websocket.outbound_queue_bytes = 1024 * 1024;
    config.websocket.close_timeout = Duration::from_secs(20);
    let gw = TestGateway::start_with(config).await;
    let mut stalled = gw.client(None).await;
    stalled.subscribe_ok(&["news"]).await;
    let mut fast = gw.client(Some(WireFormat::MsgPack)).await;
    fast.subscribe_ok(&["news"]).await;

    // The fast client reads everything as it comes.
    let reader = tokio::spawn(async move {
        let mut offsets = Vec::new();
        while let Ok(Incoming::Frame(v)) = fast.next().await {
            offsets.push(v["push"]["offset"].as_u64().unwrap());
        }
        offsets
    });

    // The stalled client reads nothing; kernel buffers fill, then its queue, then it is evicted.
    let payload = json!("x".repeat(30_000));
    let mut published = 0u64;
    for _ in 0..2000 {
        assert_eq!(gw.publish("news", payload.clone()).await.status, 200);
        published += 1;
        if published.is_multiple_of(20)
            && gw.metric("herald_slow_consumer_evictions_total").await >= 1.0
        {
            break;
        }
    }
    assert_eq!(
        gw.metric("herald_slow_consumer_evictions_total").await,
        1.0,
        "evicted after {published} publications"
    );
    // Publishing goes on for the others.
    for _ in 0..10 {
        gw.publish("news", payload.clone()).await;
        published += 1;
    }
    // The stalled client, reading again, finds what the kernel held and then close 4001.
    assert_eq!(stalled.expect_close().await, 4001);

    eventually(WAIT, "the fast client got everything", || async {
        gw.metric("herald_deliveries_total").await >= published as f64
    })
    .await;
    gw.begin_shutdown();
    let offsets = reader.await.unwrap();
    assert_eq!(
        offsets,
        (1..=published).collect::<Vec<_>>(),
        "no loss, in order"
    );
    gw.stop().await;
}

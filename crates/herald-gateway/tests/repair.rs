//! Repair without the client: when a node's broker subscription is interrupted and the
//! channel's history covers what was published meanwhile, subscribers that stayed connected
//! receive every publication exactly once and in order, with no gap notice; native and
//! Pusher clients alike.

use std::time::Duration;

use bytes::Bytes;
use herald_broker::{Broker, HistoryKeep, PublishMeta};
use herald_protocol::ChannelName;
use herald_testkit::{redis_config, Incoming, RedisServer, TestGateway};
use serde_json::{json, Value};

const COUNT: u64 = 300;

/// Publishes 1..=COUNT into `channel` through `gw`, 2 ms apart; one refused while the node
/// is not ready (503, nothing published) is sent again, as an application would.
fn publisher(gw: &TestGateway, channel: &'static str) -> tokio::task::JoinHandle<()> {
    let api = gw.api_addr;
    tokio::spawn(async move {
        for n in 1..=COUNT {
            let body = json!({"channel": channel, "data": n}).to_string();
            let mut tries = 0;
            loop {
                let r =
                    herald_testkit::http_request(api, "POST", "/v1/publish", &[], body.as_bytes())
                        .await
                        .unwrap();
                if r.status == 200 {
                    break;
                }
                assert_eq!(r.status, 503, "publish {n}: {}", r.text());
                tries += 1;
                assert!(tries < 500, "publish {n} refused for 2.5 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

#[tokio::test]
async fn a_dropped_subscriber_connection_is_repaired_from_history_for_native_clients() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut json_client = gw.client(None).await;
    json_client.subscribe_ok(&["news"]).await;
    let mut msgpack = gw.client(Some(herald_protocol::WireFormat::MsgPack)).await;
    msgpack.subscribe_ok(&["news"]).await;
    let publishing = publisher(&gw, "news");
    // Some publications are delivered; then Redis drops the node's subscriber connection (as
    // it does past the pub/sub output-buffer limit) while publishing goes on.
    for n in 1..=20u64 {
        assert_eq!(json_client.next_push().await["data"], n);
    }
    assert_eq!(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    publishing.await.unwrap();
    for c in [&mut json_client, &mut msgpack] {
        let seen = every_push_until_the_last(c).await;
        let first = seen[0];
        let expected: Vec<u64> = (first..=COUNT).collect();
        assert_eq!(seen, expected, "each once, in order");
    }
    assert_eq!(gw.metric("herald_gap_notices_total").await, 0.0);
    assert!(gw.metric("herald_repairs_total").await >= 1.0);
    assert!(gw.metric("herald_broker_reconnects_total").await >= 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_redis_restart_without_persistence_is_told_and_the_new_epoch_delivered_whole() {
    let mut redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let publishing =
        herald_testkit::publish_counted(gw.api_addr, "news", COUNT, Duration::from_millis(3));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Redis restarts without persistence: a new epoch, no history of the old one.
    redis.kill();
    redis.restart().await;
    let acked = publishing.await.unwrap();
    let received = herald_testkit::Received::until(&mut c, &acked).await;
    let old = &acked[0].epoch;
    let (before, after): (Vec<_>, Vec<_>) = acked.iter().cloned().partition(|a| a.epoch == *old);
    assert!(
        !before.is_empty() && !after.is_empty(),
        "published in both epochs"
    );
    // The subscriber is told, once the new epoch's publications arrive: the notice comes
    // before the first of them, and carries no missing range it cannot know.
    let first_new = received
        .pushes
        .iter()
        .position(|p| (p.0, p.1) == (after[0].offset, after[0].n))
        .expect("the new epoch's first publication");
    let (at, gap) = received.gaps.first().expect("a gap notice");
    assert!(*at <= first_new, "told before the new epoch: {gap}");
    assert_eq!(gap["gap"]["channel"], "news", "{gap}");
    // What the new epoch acknowledged arrives whole, once each, in order; what arrived of
    // the old one was in order.
    let split = herald_testkit::Received {
        pushes: received.pushes[first_new..].to_vec(),
        gaps: Vec::new(),
    };
    split.assert_each_once_in_order(&after);
    let old_part = herald_testkit::Received {
        pushes: received.pushes[..first_new].to_vec(),
        gaps: Vec::new(),
    };
    let delivered: Vec<_> = before
        .into_iter()
        .filter(|a| old_part.pushes.contains(&(a.offset, a.n)))
        .collect();
    old_part.assert_each_once_in_order(&delivered);
    gw.stop().await;
}

/// Reads pushes until the publication numbered COUNT, asserting no gap notice came.
async fn every_push_until_the_last(c: &mut herald_testkit::WsClient) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&COUNT) {
        match c.next().await.expect("every publication") {
            Incoming::Frame(v) if v.get("push").is_some() => {
                seen.push(v["push"]["data"].as_u64().unwrap());
            }
            other => panic!(
                "no gap notice, only pushes: {other:?} after {:?}",
                seen.last()
            ),
        }
    }
    seen
}

#[tokio::test]
async fn a_redis_restart_with_persistence_is_repaired_from_history() {
    let mut redis =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let publishing = publisher(&gw, "news");
    for n in 1..=20u64 {
        assert_eq!(c.next_push().await["data"], n);
    }
    redis.kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.restart().await;
    publishing.await.unwrap();
    let seen = every_push_until_the_last(&mut c).await;
    let expected: Vec<u64> = (21..=COUNT).collect();
    assert_eq!(seen, expected, "each once, in order, none missing");
    assert_eq!(gw.metric("herald_gap_notices_total").await, 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn pusher_clients_lose_nothing_when_the_subscriber_connection_drops() {
    let redis = RedisServer::start().await;
    let mut config = redis_config(&redis.url());
    config.pusher.apps = vec![herald_gateway::config::PusherApp::new("1", "key", "secret")];
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let url = format!(
        "ws://{}/app/key?protocol=7&client=js&version=8.4.0",
        gw.ws_addr
    );
    let mut c = herald_testkit::WsClient::connect(&url, None).await.unwrap();
    assert_eq!(
        c.next_frame().await["event"],
        "pusher:connection_established"
    );
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    assert_eq!(
        c.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let publishing = publisher(&gw, "news");
    let data = |v: &Value| -> u64 { v["data"].as_str().unwrap().parse().unwrap() };
    for n in 1..=20u64 {
        assert_eq!(data(&c.next_frame().await), n);
    }
    assert_eq!(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    publishing.await.unwrap();
    let mut seen = Vec::new();
    while seen.last() != Some(&COUNT) {
        let event = c.next_frame().await;
        assert_eq!(event["channel"], "news", "{event}");
        seen.push(data(&event));
    }
    let expected: Vec<u64> = (21..=COUNT).collect();
    assert_eq!(seen, expected, "each event once, in order, none missing");
    gw.stop().await;
}

#[tokio::test]
async fn a_sequence_that_goes_back_gets_a_new_epoch_and_recovers_nobody_over_it() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let mut epoch = String::new();
    for n in 1..=5u64 {
        let r = gw.publish("news", json!(n)).await;
        epoch = r.json()["epoch"].as_str().unwrap().to_owned();
        assert_eq!(c.next_push().await["offset"], n);
    }
    // What a failover that lost acknowledged writes leaves: the counter behind, the same
    // epoch.
    assert_eq!(redis.cli(&["SET", "herald:seq:{news}", "2"]), "OK");
    gw.publish("news", json!("rewritten")).await;
    let Incoming::Frame(gap) = c.next().await.unwrap() else {
        panic!("a gap notice")
    };
    assert_eq!(gap["gap"]["channel"], "news", "{gap}");
    assert_eq!(c.next_push().await["offset"], 3);
    // The node asked for a new epoch: publications from now on carry it.
    let mut renewed = None;
    for _ in 0..100 {
        let r = gw.publish("news", json!("next")).await.json();
        if r["epoch"].as_str() != Some(epoch.as_str()) {
            renewed = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let renewed = renewed.expect("a new epoch");
    // Past offset 5 again: a client that saw the lost 4 and 5 must not recover over them.
    let mut offset = renewed["offset"].as_u64().unwrap();
    for _ in 0..10 {
        if offset > 6 {
            break;
        }
        offset = gw.publish("news", json!("more")).await.json()["offset"]
            .as_u64()
            .unwrap();
    }
    assert!(offset > 6, "the sequence passed 5 again");
    let outcome = gw.client(None).await.recover("news", 5, &epoch).await;
    assert_eq!(outcome["recovered"], false, "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains("epoch"), "{outcome}");
    gw.stop().await;
}

#[tokio::test]
async fn a_gap_notice_names_the_offsets_the_history_no_longer_held_and_the_epoch() {
    let redis = RedisServer::start().await;
    let mut config = redis_config(&redis.url());
    config.channels.history_size = 5;
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let epoch = gw.publish("news", json!(1)).await.json()["epoch"].clone();
    assert_eq!(c.next_push().await["offset"], 1);
    // While the node's subscriber connection is down (it comes back after a backoff of at
    // least 25 ms), 30 are published straight into Redis: the history keeps the last 5.
    let broker = herald_testkit::redis_broker(&redis).await;
    let meta = PublishMeta {
        history: HistoryKeep {
            size: 5,
            ttl: Duration::from_secs(60),
        },
        ..PublishMeta::default()
    };
    let news = ChannelName::parse("news").unwrap();
    assert_eq!(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    for n in 2..=31u64 {
        let data = Bytes::from(n.to_string());
        broker
            .publish(news.clone(), data, meta.clone())
            .await
            .unwrap();
    }
    let Incoming::Frame(gap) = c.next().await.unwrap() else {
        panic!("a gap notice")
    };
    assert_eq!(
        (&gap["gap"]["missing"], &gap["gap"]["epoch"]),
        (&json!({"from": 2, "to": 26}), &epoch),
        "{gap}"
    );
    for offset in 27..=31u64 {
        assert_eq!(c.next_push().await["offset"], offset);
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_pubsub_output_buffer_limit_kill_is_repaired_under_a_publisher() {
    let redis = RedisServer::start().await;
    // Redis drops a subscriber connection whose output buffer passes 8 KiB at once: one
    // large publication on any channel the node subscribes does it.
    let limit = "pubsub 8192 0 0";
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "client-output-buffer-limit", limit]),
        "OK"
    );
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let mut bulk = gw.client(None).await;
    bulk.subscribe_ok(&["bulk"]).await;
    let publishing =
        herald_testkit::publish_counted(gw.api_addr, "news", COUNT, Duration::from_millis(3));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let large = "x".repeat(32 * 1024);
        assert_eq!(gw.publish("bulk", json!(large)).await.status, 200);
    }
    let acked = publishing.await.unwrap();
    let received = herald_testkit::Received::until(&mut c, &acked).await;
    received.assert_each_once_in_order(&acked);
    assert!(received.gaps.is_empty(), "{:?}", received.gaps);
    assert!(gw.metric("herald_broker_reconnects_total").await >= 1.0);
    assert!(gw.metric("herald_repairs_completed_total").await >= 1.0);
    gw.stop().await;
}

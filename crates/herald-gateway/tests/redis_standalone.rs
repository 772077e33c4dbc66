//! Several gateways relaying through one real redis-server: every publish form, the same
//! offsets everywhere, no duplicates, and Redis faults that never lose messages silently.

use std::time::{Duration, Instant};

use herald_gateway::config::NamespaceConfig;
use herald_protocol::WireFormat;
use herald_testkit::{eventually, redis_config, Incoming, RedisServer, TestGateway, WAIT};
use serde_json::{json, Value};

async fn gateway(redis: &RedisServer) -> TestGateway {
    let mut config = redis_config(&redis.url());
    config.namespaces.insert(
        "chat".into(),
        NamespaceConfig {
            publish: true,
            ..NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    wait_ready(&gw).await;
    gw
}

async fn wait_ready(gw: &TestGateway) {
    gw.wait_ready(WAIT).await;
}

/// Asserts nothing more arrives for a little while.
async fn assert_quiet(c: &mut herald_testkit::WsClient) {
    match c.next_within(Duration::from_millis(300)).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn every_publish_form_reaches_every_node_with_the_same_offsets() {
    let redis = RedisServer::start().await;
    let (a, b, c) = (
        gateway(&redis).await,
        gateway(&redis).await,
        gateway(&redis).await,
    );
    let mut on_a = a.client(Some(WireFormat::MsgPack)).await;
    let mut on_b = b.client(None).await;
    let mut on_c = c.client(None).await;
    on_a.subscribe_ok(&["chat:room"]).await;
    on_b.subscribe_ok(&["chat:room"]).await;

    // 1. The HTTP API of node A.
    assert_eq!(
        a.publish("chat:room", json!({"n": 1})).await.json()["offset"],
        json!(1)
    );
    // 2. A client publish on node C (which has no subscriber of its own).
    let reply = on_c
        .request("publish", json!({"channel": "chat:room", "data": {"n": 2}}))
        .await;
    assert_eq!(reply["ok"]["offset"], json!(2), "{reply}");
    // 3. The sequenced redis-cli form.
    let offset = redis.cli(&[
        "FCALL",
        "herald_publish",
        "2",
        "herald:seq:{chat:room}",
        "herald:ch:{chat:room}",
        r#"{"n":3}"#,
    ]);
    assert_eq!(offset, "3");
    // 4. The plain redis-cli form: delivered without an offset.
    redis.cli(&["PUBLISH", "herald:ch:{chat:room}", r#"{"data":{"n":4}}"#]);

    let expected = [
        json!({"channel": "chat:room", "data": {"n": 1}, "offset": 1}),
        json!({"channel": "chat:room", "data": {"n": 2}, "offset": 2}),
        json!({"channel": "chat:room", "data": {"n": 3}, "offset": 3}),
        json!({"channel": "chat:room", "data": {"n": 4}}),
    ];
    for client in [&mut on_a, &mut on_b] {
        for e in &expected {
            assert_eq!(&client.next_push().await, e);
        }
        assert_quiet(client).await;
    }
    // The three sequenced forms carry Redis' publish time, the plain form none: node B timed
    // exactly three first hops, each well under a second on one host.
    assert_eq!(b.metric("herald_broker_delay_seconds_count").await, 3.0);
    assert!(b.metric("herald_broker_delay_seconds_sum").await < 3.0);

    // Two connections per node, never one per client.
    let clients = redis.cli(&["CLIENT", "LIST"]);
    assert_eq!(clients.lines().count(), 3 * 2 + 1, "{clients}");
    // Redis subscriptions only for channels with local subscribers.
    assert_eq!(
        redis.cli(&["PUBSUB", "NUMSUB", "herald:ch:{chat:room}"]),
        "herald:ch:{chat:room}\n2"
    );
    on_b.request("unsubscribe", json!({"channels": ["chat:room"]}))
        .await;
    eventually(WAIT, "node B gives the channel back", || async {
        redis.cli(&["PUBSUB", "NUMSUB", "herald:ch:{chat:room}"]) == "herald:ch:{chat:room}\n1"
    })
    .await;
}

#[tokio::test]
async fn malformed_payloads_are_counted_and_never_reach_clients() {
    let redis = RedisServer::start().await;
    let gw = gateway(&redis).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    for garbage in ["hello", "{\"nodata\":1}", "{\"data\":", "\u{93}\u{1}"] {
        redis.cli(&["PUBLISH", "herald:ch:{news}", garbage]);
    }
    redis.cli(&[
        "FCALL",
        "herald_publish",
        "2",
        "herald:seq:{news}",
        "herald:ch:{news}",
        "{not json",
    ]);
    gw.publish("news", json!("valid")).await;
    let push = c.next_push().await;
    assert_eq!(push["data"], json!("valid"), "{push}");
    assert_eq!(gw.metric("herald_broker_malformed_total").await, 5.0);
}

#[tokio::test]
async fn redis_restart_keeps_clients_and_resumes_with_a_gap_notice() {
    let mut redis = RedisServer::start().await;
    let (a, b) = (gateway(&redis).await, gateway(&redis).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    a.publish("news", json!("before")).await;
    assert_eq!(sub.next_push().await["data"], json!("before"));

    redis.kill();
    for gw in [&a, &b] {
        eventually(WAIT, "not ready without redis", || async {
            gw.get("/readyz").await.status == 503
        })
        .await;
    }
    let started = Instant::now();
    let refused = a.publish("news", json!("lost")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], json!(105));
    assert!(started.elapsed() < Duration::from_millis(200), "503 fast");
    // The client stays connected; new subscriptions fail with a clear error.
    let reply = sub.subscribe(&["sports"]).await;
    assert_eq!(reply["ok"]["failed"][0]["code"], json!(105), "{reply}");

    redis.restart().await;
    let back = Instant::now();
    // The subscriber is told it may have missed messages.
    let Incoming::Frame(gap) = sub.next().await.unwrap() else {
        panic!("expected a gap notice")
    };
    assert_eq!(gap["gap"]["channel"], json!("news"), "{gap}");
    // Delivery resumes within 2 s of Redis being back.
    let resumed = loop {
        if a.publish("news", json!("after")).await.status == 200 {
            break Instant::now();
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "publish not back in 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(sub.next_push().await["data"], json!("after"));
    assert!(
        resumed - back < Duration::from_secs(2),
        "{:?}",
        resumed - back
    );
    assert_eq!(b.metric("herald_gap_notices_total").await, 1.0);
    assert!(b.metric("herald_broker_reconnects_total").await >= 1.0);
}

#[tokio::test]
async fn a_dropped_subscriber_connection_is_rebuilt_with_a_gap_notice() {
    let redis = RedisServer::start().await;
    let gw = gateway(&redis).await;
    let mut sub = gw.client(Some(WireFormat::MsgPack)).await;
    sub.subscribe_ok(&["news", "sports"]).await;
    // What Redis does to a subscriber over its pubsub output-buffer limit.
    assert_eq!(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    let mut gaps: Vec<Value> = Vec::new();
    for _ in 0..2 {
        let Incoming::Frame(gap) = sub.next().await.unwrap() else {
            panic!("expected gap notices")
        };
        gaps.push(gap["gap"]["channel"].clone());
    }
    gaps.sort_by_key(|v| v.to_string());
    assert_eq!(gaps, [json!("news"), json!("sports")]);
    gw.publish("sports", json!(1)).await;
    assert_eq!(sub.next_push().await["channel"], json!("sports"));
}

#[tokio::test]
async fn a_stalled_redis_is_detected_by_timeouts_and_nothing_waits_for_it() {
    let redis = RedisServer::start().await;
    let gw = gateway(&redis).await;
    let mut sub = gw.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    redis.pause();
    let started = Instant::now();
    // Written just before the stall: the outcome is unknown, and said so (504, code 108).
    let stalled = gw.publish("news", json!("stalled")).await;
    assert_eq!(stalled.status, 504, "{}", stalled.text());
    assert_eq!(stalled.json()["error"]["code"], json!(108));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    eventually(WAIT, "not ready while redis is stalled", || async {
        gw.get("/readyz").await.status == 503
    })
    .await;
    let fast = Instant::now();
    assert_eq!(gw.publish("news", json!("x")).await.status, 503);
    assert!(
        fast.elapsed() < Duration::from_millis(200),
        "later publishes fail fast"
    );
    // Long enough (three timeouts) for the subscriber connection's PING to go unanswered.
    tokio::time::sleep_until((started + Duration::from_millis(1500)).into()).await;

    redis.resume();
    wait_ready(&gw).await;
    gw.publish("news", json!("back")).await;
    // Redis may still run the stalled publication when it wakes up; whatever else arrives,
    // the gap notice comes before anything published after the node was ready again.
    let (gaps, _) = sub
        .gaps_until_push(&json!("back"), |d| *d == json!("stalled"))
        .await;
    assert_eq!(
        gaps,
        ["news"],
        "the gap notice came before the next publication"
    );
}

#[tokio::test]
async fn passwords_are_used_and_a_wrong_one_keeps_the_node_unready() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]).await;
    let url = format!("redis://:s3cret@127.0.0.1:{}", redis.port());
    let good = TestGateway::start_with(redis_config(&url)).await;
    wait_ready(&good).await;
    let mut c = good.client(None).await;
    c.subscribe_ok(&["news"]).await;
    good.publish("news", json!(1)).await;
    assert_eq!(c.next_push().await["data"], json!(1));

    let wrong = format!("redis://:nope@127.0.0.1:{}", redis.port());
    let bad = TestGateway::start_with(redis_config(&wrong)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bad.get("/readyz").await.status, 503);
    assert_eq!(bad.publish("news", json!(2)).await.status, 503);
}

#[tokio::test]
async fn the_publish_connection_pipelines_under_load() {
    let redis = RedisServer::start().await;
    let gw = gateway(&redis).await;
    let mut sub = gw.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    // The subscribe read the channel's position on the same connection: counted from here.
    let writes_before = gw.metric("herald_broker_publish_writes_total").await;
    let commands_before = gw.metric("herald_broker_publish_commands_total").await;
    let api = gw.api_addr;
    let publishes: Vec<_> = (0..200)
        .map(|n| {
            tokio::spawn(async move {
                let body = json!({"channel": "news", "data": n}).to_string();
                herald_testkit::http_request(api, "POST", "/v1/publish", &[], body.as_bytes())
                    .await
                    .unwrap()
                    .status
            })
        })
        .collect();
    for p in publishes {
        assert_eq!(p.await.unwrap(), 200);
    }
    let mut offsets: Vec<u64> = Vec::new();
    for _ in 0..200 {
        offsets.push(sub.next_push().await["offset"].as_u64().unwrap());
    }
    assert_eq!(
        offsets,
        (1..=200).collect::<Vec<_>>(),
        "in offset order, none lost"
    );
    let writes = gw.metric("herald_broker_publish_writes_total").await - writes_before;
    let commands = gw.metric("herald_broker_publish_commands_total").await - commands_before;
    assert_eq!(commands, 200.0);
    assert!(
        commands / writes >= 2.0,
        "{commands} commands in {writes} writes"
    );
    assert_eq!(
        redis.cli(&["CLIENT", "LIST"]).lines().count(),
        2 + 1,
        "two connections"
    );
}

#[tokio::test]
async fn killing_redis_mid_stream_loses_nothing_silently() {
    let mut redis = RedisServer::start().await;
    let (a, b) = (gateway(&redis).await, gateway(&redis).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;

    // A publisher that never stops: it records which sequence numbers were acknowledged.
    let api = a.api_addr;
    let stop = tokio_util::sync::CancellationToken::new();
    let publisher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !stop.is_cancelled() {
                n += 1;
                let body = json!({"channel": "news", "data": n}).to_string();
                let r =
                    herald_testkit::http_request(api, "POST", "/v1/publish", &[], body.as_bytes())
                        .await
                        .unwrap();
                if r.status == 200 {
                    acked.push((n, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acked
        })
    };
    let reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Ok(Incoming::Frame(v)) = sub.next_within(Duration::from_secs(3)).await {
            frames.push(v);
        }
        frames
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    // Publications go through A and are delivered by B: both must have reconnected (each
    // backs off on its own schedule, up to 1 s).
    wait_ready(&a).await;
    wait_ready(&b).await;
    let b_ready = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    let acked = publisher.await.unwrap();
    let frames = reader.await.unwrap();

    let gap_at = frames
        .iter()
        .position(|f| f.get("gap").is_some())
        .expect("a gap notice");
    let seqs = |fs: &[Value]| -> Vec<u64> {
        fs.iter()
            .filter_map(|f| f["push"]["data"].as_u64())
            .collect()
    };
    let (before, after) = (seqs(&frames[..gap_at]), seqs(&frames[gap_at + 1..]));
    let all: Vec<u64> = before.iter().chain(&after).copied().collect();
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all, unique, "no duplicates");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in order");
    for (n, at) in &acked {
        if *at < killed {
            assert!(
                before.contains(n),
                "{n}, acknowledged before the kill, was delivered"
            );
        }
        if *at > b_ready {
            assert!(
                after.contains(n),
                "{n}, acknowledged after recovery, was delivered"
            );
        }
    }
    assert!(
        acked.iter().any(|(_, at)| *at > b_ready),
        "publishing resumed"
    );
}

#[tokio::test]
async fn tls_connections_verify_the_server_certificate() {
    let redis = RedisServer::start_tls().await;
    let mut config = redis_config(&redis.url());
    config.broker.redis.tls_ca_file = Some(redis.ca_file());
    let good = TestGateway::start_with(config).await;
    wait_ready(&good).await;
    let mut c = good.client(None).await;
    c.subscribe_ok(&["news"]).await;
    assert_eq!(good.publish("news", json!("over tls")).await.status, 200);
    assert_eq!(c.next_push().await["data"], json!("over tls"));

    // Without the test CA the certificate is not trusted: the node never becomes ready.
    let untrusted = TestGateway::start_with(redis_config(&redis.url())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(untrusted.get("/readyz").await.status, 503);
    assert_eq!(untrusted.publish("news", json!(1)).await.status, 503);
}

#[tokio::test]
async fn exceeding_the_pubsub_output_buffer_limit_is_repaired_with_a_gap_notice() {
    let redis = RedisServer::start().await;
    let gw = gateway(&redis).await;
    let mut sub = gw.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    // A hard limit of 1 kB beyond Redis' 16 kB static reply buffer: one larger message makes
    // Redis close the node's subscriber connection, as it does to any slow subscriber.
    assert_eq!(
        redis.cli(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1kb 1kb 0"
        ]),
        "OK"
    );
    let big = "x".repeat(40_000);
    let data = json!({ "data": big }).to_string();
    redis.cli(&["PUBLISH", "herald:ch:{news}", &data]);
    let Incoming::Frame(gap) = sub.next().await.unwrap() else {
        panic!("expected a gap notice")
    };
    assert_eq!(gap["gap"]["channel"], json!("news"), "{gap}");
    assert!(gw.metric("herald_broker_reconnects_total").await >= 1.0);
    gw.publish("news", json!("small")).await;
    assert_eq!(sub.next_push().await["data"], json!("small"));
}

#[tokio::test]
async fn an_event_name_travels_with_the_publication_to_every_node() {
    let redis = RedisServer::start().await;
    let (a, b) = (gateway(&redis).await, gateway(&redis).await);
    let mut json = b.client(None).await;
    let mut packed = b.client(Some(WireFormat::MsgPack)).await;
    json.subscribe_ok(&["orders"]).await;
    packed.subscribe_ok(&["orders"]).await;

    let body = json!({"channel": "orders", "data": {"id": 7}, "event": r"App\Events\OrderShipped"});
    let reply = a
        .post("/v1/publish", &[], body.to_string().as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let expected = json!({"channel": "orders", "data": {"id": 7}, "offset": 1, "event": r"App\Events\OrderShipped"});
    assert_eq!(json.next_push().await, expected);
    assert_eq!(packed.next_push().await, expected);
    // Without an event, no event key; a bad event name is refused and publishes nothing.
    a.publish("orders", json!(2)).await;
    assert_eq!(
        json.next_push().await,
        json!({"channel": "orders", "data": 2, "offset": 2})
    );
    for bad in [json!(""), json!("a\nb"), json!("x".repeat(201)), json!(5)] {
        let body = json!({"channel": "orders", "data": 3, "event": bad});
        let reply = a
            .post("/v1/publish", &[], body.to_string().as_bytes())
            .await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.json());
    }
    assert_quiet(&mut json).await;
    // The event rides the function's optional argument: direct FCALL callers may give one.
    let offset = redis.cli(&[
        "FCALL",
        "herald_publish",
        "2",
        "herald:seq:{orders}",
        "herald:ch:{orders}",
        "4",
        "",
        "0",
        "",
        "from-redis",
    ]);
    assert_eq!(offset, "3");
    assert_eq!(json.next_push().await["event"], "from-redis");
}

//! Publish and subscribe end to end over real sockets: HTTP and client publishes reach JSON
//! and MessagePack subscribers, with offsets.

use herald_protocol::WireFormat;
use herald_testkit::{eventually, test_config, TestGateway, WAIT};
use serde_json::json;

#[tokio::test]
async fn http_publish_reaches_json_and_msgpack_subscribers() {
    let gw = TestGateway::start().await;
    let mut plain = gw.client(None).await;
    let mut js = gw.client(Some(WireFormat::Json)).await;
    let mut mp = gw.client(Some(WireFormat::MsgPack)).await;
    for c in [&mut plain, &mut js, &mut mp] {
        c.subscribe_ok(&["news"]).await;
    }

    let r = gw.publish("news", json!({"x": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert!(
        body["id"].as_str().is_some_and(|id| id.len() == 36),
        "{body}"
    );
    assert_eq!(body["offset"], json!(1));

    let expected = json!({"channel": "news", "data": {"x": 1}, "offset": 1});
    assert_eq!(plain.next_push().await, expected);
    assert_eq!(js.next_push().await, expected);
    assert_eq!(mp.next_push().await, expected);

    gw.publish("news", json!([1, "two", null])).await;
    for c in [&mut plain, &mut js, &mut mp] {
        assert_eq!(
            c.next_push().await["offset"],
            json!(2),
            "offsets grow by one"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn client_publish_is_off_by_default_and_allowed_per_namespace() {
    let mut config = test_config();
    config.namespaces.insert(
        "chat".into(),
        herald_gateway::config::NamespaceConfig {
            publish: true,
            ..herald_gateway::config::NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    let mut json_sub = gw.client(None).await;
    let mut mp = gw.client(Some(WireFormat::MsgPack)).await;
    json_sub.subscribe_ok(&["chat:room1", "news"]).await;
    mp.subscribe_ok(&["chat:room1"]).await;

    let denied = mp
        .request("publish", json!({"channel": "news", "data": 1}))
        .await;
    assert_eq!(denied["error"]["code"], json!(104), "{denied}");

    // A MessagePack publisher; the JSON subscriber gets the same value.
    let data = json!({"text": "hi", "n": [1, 2.5, true, null]});
    let ok = mp
        .request("publish", json!({"channel": "chat:room1", "data": data}))
        .await;
    assert_eq!(ok["ok"]["offset"], json!(1), "{ok}");
    assert!(ok["ok"]["message_id"].is_string(), "{ok}");
    let expected = json!({"channel": "chat:room1", "data": data, "offset": 1});
    assert_eq!(json_sub.next_push().await, expected);
    assert_eq!(mp.next_push().await, expected);

    // And a JSON publisher; the MessagePack subscriber gets the same value.
    let ok = json_sub
        .request("publish", json!({"channel": "chat:room1", "data": "plain"}))
        .await;
    assert_eq!(ok["ok"]["offset"], json!(2), "{ok}");
    assert_eq!(mp.next_push().await["data"], json!("plain"));
    gw.stop().await;
}

#[tokio::test]
async fn one_failed_channel_does_not_fail_the_others() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    let reply = c
        .subscribe(&["news", "bad name!", "nope:x", "news", "sports"])
        .await;
    let ok = &reply["ok"];
    let mut subscribed: Vec<&str> = ok["subscribed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    subscribed.sort_unstable();
    assert_eq!(subscribed, ["news", "sports"], "{reply}");
    let failed = ok["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{reply}");
    assert_eq!(failed[0]["channel"], json!("bad name!"));
    assert_eq!(failed[0]["code"], json!(102));
    assert_eq!(failed[1]["channel"], json!("nope:x"));
    assert_eq!(failed[1]["code"], json!(103));
    assert!(failed[1]["message"].as_str().unwrap().contains("nope"));

    gw.publish("sports", json!(1)).await;
    assert_eq!(c.next_push().await["channel"], json!("sports"));
    gw.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["a", "b"]).await;
    let reply = c
        .request("unsubscribe", json!({"channels": ["a", "x y"]}))
        .await;
    assert_eq!(reply["ok"]["unsubscribed"], json!(["a"]), "{reply}");
    assert_eq!(reply["ok"]["failed"][0]["code"], json!(102), "{reply}");
    gw.publish("a", json!("not for me")).await;
    gw.publish("b", json!("for me")).await;
    let push = c.next_push().await;
    assert_eq!(push["channel"], json!("b"), "{push}");
    gw.stop().await;
}

#[tokio::test]
async fn the_broker_subscription_follows_local_subscribers() {
    let gw = TestGateway::start().await;
    assert_eq!(gw.metric("herald_channels").await, 0.0);
    let mut a = gw.client(None).await;
    let mut b = gw.client(Some(WireFormat::MsgPack)).await;
    a.subscribe_ok(&["news"]).await;
    b.subscribe_ok(&["news"]).await;
    assert_eq!(gw.metric("herald_channels").await, 1.0);
    a.request("unsubscribe", json!({"channels": ["news"]}))
        .await;
    assert_eq!(gw.metric("herald_channels").await, 1.0, "b is still there");
    b.close().await;
    eventually(WAIT, "the last leaver gives the channel back", || async {
        gw.metric("herald_channels").await == 0.0
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn nodes_on_one_bus_deliver_with_the_same_offsets() {
    let bus = herald_broker::MemoryBus::new();
    let a = TestGateway::start_on_bus(test_config(), &bus).await;
    let b = TestGateway::start_on_bus(test_config(), &bus).await;
    let mut on_a = a.client(None).await;
    let mut on_b = b.client(Some(WireFormat::MsgPack)).await;
    on_a.subscribe_ok(&["news"]).await;
    on_b.subscribe_ok(&["news"]).await;
    assert_eq!(a.publish("news", json!("from a")).await.status, 200);
    assert_eq!(b.publish("news", json!("from b")).await.status, 200);
    for c in [&mut on_a, &mut on_b] {
        let first = c.next_push().await;
        let second = c.next_push().await;
        assert_eq!(
            (first["data"].clone(), first["offset"].clone()),
            (json!("from a"), json!(1))
        );
        assert_eq!(
            (second["data"].clone(), second["offset"].clone()),
            (json!("from b"), json!(2))
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn handshake_refuses_what_it_cannot_serve() {
    let gw = TestGateway::start().await;
    let err = herald_testkit::RawClient::connect(gw.ws_addr, "/ws", Some("mqtt"))
        .await
        .err()
        .expect("unsupported subprotocol refused");
    assert!(err.to_string().contains("400"), "{err}");
    let err = herald_testkit::RawClient::connect(gw.ws_addr, "/elsewhere", None)
        .await
        .err()
        .expect("wrong path refused");
    assert!(err.to_string().contains("404"), "{err}");
    let plain = herald_testkit::http_request(gw.ws_addr, "GET", "/ws", &[], b"")
        .await
        .unwrap();
    assert_eq!(plain.status, 426);
    // Offered in a list, the first supported protocol is chosen.
    let mut raw = herald_testkit::RawClient::connect(
        gw.ws_addr,
        "/ws",
        Some("mqtt, herald.v1.msgpack, herald.v1.json"),
    )
    .await
    .unwrap();
    raw.send_raw(&herald_testkit::RawClient::frame(true, 0x9, b"hi"))
        .await
        .unwrap();
    assert_eq!(
        raw.next_frame().await.unwrap(),
        (0xA, b"hi".to_vec()),
        "pong"
    );
    gw.stop().await;
}

#[tokio::test]
async fn queued_frames_are_written_many_per_syscall() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let messages: Vec<_> = (0..500)
        .map(|n| json!({"channel": "news", "data": n}))
        .collect();
    let body = json!({ "messages": messages }).to_string();
    let writes_before = gw.metric("herald_socket_writes_total").await;
    let frames_before = gw.metric("herald_frames_written_total").await;
    let delays_before = gw.metric("herald_outbound_delay_seconds_count").await;
    assert_eq!(
        gw.post("/v1/publish/batch", &[], body.as_bytes())
            .await
            .status,
        200
    );
    for n in 0..500 {
        assert_eq!(c.next_push().await["data"], json!(n));
    }
    let writes = gw.metric("herald_socket_writes_total").await - writes_before;
    let frames = gw.metric("herald_frames_written_total").await - frames_before;
    assert!(frames >= 500.0, "{frames}");
    assert!(
        frames / writes >= 4.0,
        "{frames} frames in {writes} writes: not batched"
    );
    // One delay per emptied backlog: at least one, and no more than there were writes.
    let delays = gw.metric("herald_outbound_delay_seconds_count").await - delays_before;
    assert!(
        delays >= 1.0 && delays <= writes,
        "{delays} delays for {writes} writes"
    );
    gw.stop().await;
}

//! Limits and floods over real sockets: each limit answers with its documented status, error
//! or close code, and the node keeps serving everyone else.

use std::time::Duration;

use herald_gateway::config::GatewayConfig;
use herald_testkit::{test_config, Incoming, TestGateway, WsClient};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::Message;

fn config() -> GatewayConfig {
    let mut c = test_config();
    c.channels.publish = true;
    c
}

/// A subscriber on `news` that must keep receiving whatever the others do.
async fn bystander(gw: &TestGateway) -> WsClient {
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    c
}

async fn still_served(gw: &TestGateway, c: &mut WsClient, n: i64) {
    assert_eq!(gw.publish("news", json!(n)).await.status, 200);
    assert_eq!(c.next_push().await["data"], n);
}

#[tokio::test]
async fn browsers_from_other_origins_get_403() {
    let mut c = config();
    c.websocket.allowed_origins = vec!["https://app.example".into()];
    let gw = TestGateway::start_with(c).await;
    let url = gw.ws_url();
    WsClient::connect_with(&url, None, &[("Origin", "https://app.example")])
        .await
        .unwrap();
    for other in [
        "https://evil.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        let (status, _) = WsClient::refused(&url, &[("Origin", other)]).await;
        assert_eq!(status, 403, "{other}");
    }
    // Not a browser: no Origin, not affected.
    WsClient::connect(&url, None).await.unwrap();
    gw.stop().await;
}

/// A connection flood: past `limits.max_connections` upgrades get 503, and a slot freed is
/// usable again.
#[tokio::test]
async fn connections_past_the_node_limit_get_503() {
    let mut c = config();
    c.limits.max_connections = 4;
    let gw = TestGateway::start_with(c).await;
    let mut watcher = bystander(&gw).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(gw.client(None).await);
    }
    for _ in 0..20 {
        let (status, body) = WsClient::refused(&gw.ws_url(), &[]).await;
        assert_eq!(status, 503, "{body}");
    }
    still_served(&gw, &mut watcher, 1).await;
    held.pop().unwrap().close().await;
    herald_testkit::eventually(herald_testkit::WAIT, "a slot is free again", || async {
        WsClient::connect(&gw.ws_url(), None).await.is_ok()
    })
    .await;
    gw.stop().await;
}

fn failed_codes(reply: &Value) -> Vec<u64> {
    reply["ok"]["failed"]
        .as_array()
        .map(|f| f.iter().map(|x| x["code"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

/// A subscribe flood: past `limits.max_subscriptions` channels fail with 109, one by one;
/// leaving a channel makes room; thousands of requests are answered and hurt no one.
#[tokio::test]
async fn subscriptions_past_the_connection_limit_fail_with_109() {
    let mut c = config();
    c.limits.max_subscriptions = 5;
    let gw = TestGateway::start_with(c).await;
    let mut watcher = bystander(&gw).await;
    let mut flood = gw.client(None).await;
    let names: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let reply = flood.subscribe(&names).await;
    assert_eq!(reply["ok"]["subscribed"].as_array().unwrap().len(), 5);
    assert_eq!(failed_codes(&reply), [109, 109]);
    // Subscribing again to a channel it has is not a new subscription.
    flood.subscribe_ok(&["c0"]).await;
    let left = flood
        .request("unsubscribe", json!({"channels": ["c0"]}))
        .await;
    assert_eq!(left["ok"]["unsubscribed"], json!(["c0"]));
    flood.subscribe_ok(&["c5"]).await;

    for i in 0..2000 {
        flood
            .send(&json!({"id": 1000 + i, "subscribe": {"channels": [format!("x{i}")]}}))
            .await;
    }
    let mut answered = 0;
    while answered < 2000 {
        let frame = flood.next_frame().await;
        assert_eq!(failed_codes(&frame), [109], "{frame}");
        answered += 1;
    }
    still_served(&gw, &mut watcher, 2).await;
    gw.stop().await;
}

/// A publish flood: past `limits.publish_rate` publications fail with 109 and the connection
/// stays; the bucket refills.
#[tokio::test]
async fn publications_past_the_rate_fail_with_109() {
    let mut c = config();
    c.limits.publish_rate = 5;
    let gw = TestGateway::start_with(c).await;
    let mut watcher = bystander(&gw).await;
    let mut flood = gw.client(None).await;
    for i in 0..50 {
        flood
            .send(&json!({"id": i, "publish": {"channel": "news", "data": i}}))
            .await;
    }
    let (mut ok, mut limited) = (0, 0);
    while ok + limited < 50 {
        let frame = flood.next_frame().await;
        if frame.get("ok").is_some() {
            ok += 1;
        } else {
            assert_eq!(frame["error"]["code"], 109, "{frame}");
            limited += 1;
        }
    }
    assert!((5..=7).contains(&ok), "{ok} accepted");
    for _ in 0..ok {
        watcher.next_push().await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = flood
        .request("publish", json!({"channel": "news", "data": "again"}))
        .await;
    assert!(reply.get("ok").is_some(), "{reply}");
    assert_eq!(watcher.next_push().await["data"], "again");
    gw.stop().await;
}

/// Channel names past `limits.max_channel_length` fail with 102; data nesting deeper than
/// `limits.max_json_depth` fails with 101 (WebSocket JSON and MessagePack, and HTTP 400);
/// frames nested past what a parser should follow are refused without harm.
#[tokio::test]
async fn long_names_and_deep_data_are_refused() {
    let mut c = config();
    c.limits.max_channel_length = 10;
    c.limits.max_json_depth = 4;
    let gw = TestGateway::start_with(c).await;
    let mut watcher = bystander(&gw).await;
    let mut client = gw.client(None).await;
    let reply = client.subscribe(&["abcdefghij", "abcdefghijk"]).await;
    assert_eq!(reply["ok"]["subscribed"], json!(["abcdefghij"]));
    assert_eq!(failed_codes(&reply), [102]);

    let deep = |n: usize| -> Value {
        let mut v = json!(1);
        for _ in 0..n {
            v = json!([v]);
        }
        v
    };
    let ok = client
        .request("publish", json!({"channel": "news", "data": deep(4)}))
        .await;
    assert!(ok.get("ok").is_some(), "{ok}");
    assert_eq!(watcher.next_push().await["data"], deep(4));
    let refused = client
        .request("publish", json!({"channel": "news", "data": deep(5)}))
        .await;
    assert_eq!(refused["error"]["code"], 101, "{refused}");
    let http = gw.publish("news", deep(5)).await;
    assert_eq!(http.status, 400, "{}", http.text());

    // MessagePack data is held to the same depth once converted.
    let mut mp = gw.client(Some(herald_protocol::WireFormat::MsgPack)).await;
    let refused = mp
        .request("publish", json!({"channel": "news", "data": deep(5)}))
        .await;
    assert_eq!(refused["error"]["code"], 101, "{refused}");

    // 20,000 levels in a frame (JSON and MessagePack): an error reply, no crash.
    let text = format!(
        r#"{{"id":9,"publish":{{"channel":"news","data":{}1{}}}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    client.send_message(Message::text(text)).await;
    assert_eq!(client.next_frame().await["error"]["code"], 101);
    let mut packed = vec![0x81, 0xa2, b'i', b'd'];
    packed.extend(std::iter::repeat_n(0x91, 20_000));
    packed.push(0x01);
    mp.send_message(Message::binary(packed)).await;
    assert_eq!(mp.next_frame().await["error"]["code"], 101);

    still_served(&gw, &mut watcher, 3).await;
    gw.stop().await;
}

/// Slowloris: upgrade requests that trickle in (or never finish) are dropped at
/// `websocket.handshake_timeout`, while other clients connect and are served.
#[tokio::test]
async fn slow_handshakes_are_dropped_at_the_timeout() {
    let mut c = config();
    c.websocket.handshake_timeout = Duration::from_millis(400);
    let gw = TestGateway::start_with(c).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(gw.ws_addr).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut watcher = bystander(&gw).await;
    still_served(&gw, &mut watcher, 4).await;
    for mut s in slow {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(3), async {
            // Keep trickling: a byte now and then does not extend the deadline.
            let _ = s.write_all(b"X").await;
            s.read(&mut buf).await
        })
        .await
        .expect("the server dropped the slow handshake");
        let n = n.unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    match watcher.next_within(Duration::from_millis(100)).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(Incoming::Close(code)) => panic!("the bystander was closed with {code}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
    gw.stop().await;
}

//! The server API's hand on the cluster: `GET /v1/info` (every node, from their heartbeats on
//! the control channel), `POST /v1/disconnect` and `POST /v1/unsubscribe` (a user's
//! connections on every node, or one connection), on two gateways over a real redis-server.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NamespaceConfig, NodeName, PusherApp};
use herald_testkit::{
    eventually, redis_config, Incoming, RedisServer, SseClient, TestGateway, WsClient, WAIT,
};
use serde_json::{json, Value};

/// Longer than a heartbeat: what the other node says of itself.
const BEAT: Duration = Duration::from_secs(8);

fn config(redis: &RedisServer, name: &str) -> GatewayConfig {
    let mut config = redis_config(&redis.url());
    config.node.id = Some(NodeName::parse(name).unwrap());
    config.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            ..Default::default()
        },
    );
    config
        .namespaces
        .insert("chat".into(), NamespaceConfig::default());
    config.pusher.apps = vec![PusherApp::new("42", "app-key", "app-secret")];
    config
}

async fn two_nodes(redis: &RedisServer) -> (TestGateway, TestGateway) {
    let a = TestGateway::start_with(config(redis, "gw-a")).await;
    let b = TestGateway::start_with(config(redis, "gw-b")).await;
    a.wait_ready(WAIT).await;
    b.wait_ready(WAIT).await;
    (a, b)
}

async fn as_user(gw: &TestGateway, user: &str) -> WsClient {
    WsClient::connect(&format!("{}?user={user}", gw.ws_url()), None)
        .await
        .expect("connect")
}

fn ids(info: &Value) -> Vec<String> {
    info["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn post(gw: &TestGateway, path: &str, body: &Value) -> herald_testkit::HttpResponse {
    gw.post(path, &[], body.to_string().as_bytes()).await
}

#[tokio::test]
async fn info_lists_every_node_with_its_counts_and_forgets_one_that_stops() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    eventually(WAIT, "both nodes, this one first", || async {
        ids(&a.get("/v1/info").await.json()) == ["gw-a", "gw-b"]
            && ids(&b.get("/v1/info").await.json()) == ["gw-b", "gw-a"]
    })
    .await;
    let info = a.get("/v1/info").await.json();
    let own = &info["nodes"][0];
    assert_eq!(own["state"], "ready", "{info}");
    assert_eq!(own["version"], env!("CARGO_PKG_VERSION"));
    assert!(own["uptime_seconds"].as_u64().unwrap() < 60, "{info}");
    assert_eq!(own["connections"], 0);

    // b's connection shows in a's answer once b says how it stands.
    let mut c = b.client(None).await;
    c.subscribe_ok(&["chat:x", "news"]).await;
    eventually(
        BEAT,
        "b's connection and subscriptions, seen from a",
        || async {
            let info = a.get("/v1/info").await.json();
            let b = &info["nodes"][1];
            b["connections"] == 1 && b["subscriptions"] == 2 && b["channels"] == 2
        },
    )
    .await;

    // The control channel is the nodes' own: not listed, not for clients.
    let channels = a.get("/v1/channels").await.json();
    assert_eq!(
        channels["channels"].as_array().unwrap().len(),
        2,
        "{channels}"
    );
    let refused = c.subscribe(&["_herald:control"]).await;
    assert_eq!(refused["ok"]["failed"][0]["code"], 103, "{refused}");
    assert_eq!(
        a.publish("_herald:control", json!({"gone": {"id": "gw-b"}}))
            .await
            .status,
        422
    );

    assert_eq!(a.post("/v1/info", &[], b"").await.status, 405);
    b.stop().await;
    eventually(WAIT, "a stopped node is gone at once", || async {
        ids(&a.get("/v1/info").await.json()) == ["gw-a"]
    })
    .await;
}

#[tokio::test]
async fn disconnect_closes_a_user_s_connections_on_every_node_and_no_one_else_s() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let mut alice_a = as_user(&a, "alice").await;
    let mut alice_b = as_user(&b, "alice").await;
    let mut bob = as_user(&b, "bob").await;
    bob.subscribe_ok(&["news"]).await;
    let mut stream = SseClient::open(b.ws_addr, "/v1/sse?channel=news&user=alice", &[])
        .await
        .stream();
    assert!(stream.next(WAIT).await.is_some(), "the stream began");
    eventually(WAIT, "four connections", || async {
        a.metric("herald_connections").await + b.metric("herald_connections").await == 4.0
    })
    .await;

    let r = post(&a, "/v1/disconnect", &json!({"user": "alice"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(alice_a.expect_close().await, 4501);
    assert_eq!(alice_b.expect_close().await, 4501);
    let close = stream.next_event(WAIT).await.expect("a close event");
    assert_eq!(close.event, "close");
    assert_eq!(close.json()["code"], 4501);
    assert_eq!(close.json()["reconnect"], false);
    assert!(
        stream.closed_within(WAIT).await,
        "the server ended the stream"
    );
    eventually(WAIT, "only bob is left, on the servers", || async {
        a.metric("herald_connections").await == 0.0 && b.metric("herald_connections").await == 1.0
    })
    .await;
    assert_eq!(
        b.metric("herald_connections_closed_total{reason=\"disconnected\"}")
            .await,
        2.0
    );
    a.publish("news", json!(1)).await;
    assert_eq!(bob.next_push().await["data"], 1, "bob is still served");

    // Told to come back.
    let mut again = as_user(&b, "alice").await;
    let r = post(
        &a,
        "/v1/disconnect",
        &json!({"user": "alice", "reconnect": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(again.expect_close().await, 4003);

    // One connection by its address: a Pusher socket id, with Pusher's codes.
    let url = format!("ws://{}/app/app-key?protocol=7", b.ws_addr);
    let (mut p1, mut p2) = (
        WsClient::connect(&url, None).await.unwrap(),
        WsClient::connect(&url, None).await.unwrap(),
    );
    let hello = p1.next_frame().await;
    let socket: Value = serde_json::from_str(hello["data"].as_str().unwrap()).unwrap();
    p2.next_frame().await;
    let target = json!({"client": socket["socket_id"]});
    assert_eq!(post(&a, "/v1/disconnect", &target).await.status, 200);
    assert_eq!(
        p1.expect_close().await,
        4009,
        "pusher-js does not retry 4009"
    );
    p2.send(&json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        p2.next_frame().await["event"],
        "pusher:pong",
        "the other stays"
    );

    for bad in [
        json!({}),
        json!({"user": "alice", "client": "1.2"}),
        json!({"client": "alice"}),
        json!({"user": "has space"}),
        json!({"user": "alice", "reconnect": "yes"}),
        json!({"user": "alice", "code": 4000}),
    ] {
        let r = post(&a, "/v1/disconnect", &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], 101, "{bad}");
    }
    assert_eq!(a.get("/v1/disconnect").await.status, 405);
}

/// The next frame that is not a presence join.
async fn past_joins(c: &mut WsClient) -> Value {
    loop {
        let frame = c.next_frame().await;
        if frame.get("join").is_none() {
            return frame;
        }
    }
}

#[tokio::test]
async fn unsubscribe_takes_a_user_out_of_a_channel_on_every_node() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let mut alice = as_user(&b, "alice").await;
    alice.subscribe_ok(&["chat:x", "news", "room:1"]).await;
    let mut bob = as_user(&a, "bob").await;
    bob.subscribe_ok(&["chat:x", "room:1"]).await;
    eventually(WAIT, "alice in room:1", || async {
        a.get("/v1/channels/room:1/presence/stats").await.json()["count"] == 2
    })
    .await;

    for channel in ["chat:x", "room:1"] {
        let body = json!({"user": "alice", "channel": channel});
        let r = post(&a, "/v1/unsubscribe", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let notice = past_joins(&mut alice).await;
        assert_eq!(notice, json!({"unsubscribed": {"channel": channel}}));
    }
    let left = past_joins(&mut bob).await;
    assert_eq!(left["leave"]["user"], "alice", "{left}");
    a.publish("chat:x", json!("x")).await;
    a.publish("news", json!("n")).await;
    assert_eq!(bob.next_push().await["data"], "x");
    let push = alice.next_push().await;
    assert_eq!(
        (&push["channel"], &push["data"]),
        (&json!("news"), &json!("n"))
    );
    match alice.next_within(Duration::from_millis(300)).await {
        Err(_) => {}
        Ok(Incoming::Frame(f)) => panic!("nothing more for alice, got {f}"),
        Ok(other) => panic!("nothing more for alice, got {other:?}"),
    }

    for (bad, status) in [
        (json!({"user": "alice"}), 400),
        (json!({"user": "alice", "channel": "bad name"}), 422),
        (json!({"user": "alice", "channel": "nowhere:1"}), 422),
        (json!({"channel": "news"}), 400),
    ] {
        let r = post(&a, "/v1/unsubscribe", &bad).await;
        assert_eq!(r.status, status, "{bad}: {}", r.text());
    }
}

//! Replies on one connection come in request order, and so does what the requests do: a
//! subscribe and an unsubscribe of a channel sent back to back, on a node that has yet to
//! subscribe the channel in its broker, leave the connection unsubscribed and no member.

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_testkit::{redis_config, test_config, RawClient, RedisServer, TestGateway};
use serde_json::{json, Value};

fn with_presence(mut c: GatewayConfig) -> GatewayConfig {
    c.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            ..NamespaceConfig::default()
        },
    );
    c
}

fn text(value: &Value) -> Vec<u8> {
    RawClient::frame(true, 0x1, value.to_string().as_bytes())
}

/// The next text frame that is a reply (pushes, such as the client's own join, are skipped).
async fn next_reply(client: &mut RawClient) -> Value {
    loop {
        let (opcode, payload) = client.next_frame().await.unwrap();
        if opcode != 0x1 {
            continue;
        }
        let frame: Value = serde_json::from_slice(&payload).unwrap();
        if frame.get("id").is_some() {
            return frame;
        }
    }
}

async fn subscribe_then_unsubscribe_at_once(gw: &TestGateway) {
    let mut client = RawClient::connect(gw.ws_addr, "/ws?user=alice", None)
        .await
        .unwrap();
    for i in 0..30u64 {
        let channel = format!("room:{i}");
        // Both requests in one write: the node reads them together.
        let mut bytes = text(&json!({"id": 2 * i + 1, "subscribe": {"channels": [channel]}}));
        bytes.extend(text(
            &json!({"id": 2 * i + 2, "unsubscribe": {"channels": [channel]}}),
        ));
        client.send_raw(&bytes).await.unwrap();
        let first = next_reply(&mut client).await;
        let second = next_reply(&mut client).await;
        assert_eq!(
            first["id"],
            2 * i + 1,
            "try {i}: {first} came before {second}"
        );
        assert_eq!(first["ok"]["subscribed"], json!([channel]), "{first}");
        assert_eq!(second["id"], 2 * i + 2, "{second}");
        assert_eq!(second["ok"]["unsubscribed"], json!([channel]), "{second}");
    }
    // The connection is what its replies say: subscribed to none, a member of none.
    for i in 0..30u64 {
        let channel = format!("room:{i}");
        assert_eq!(gw.publish(&channel, json!("after")).await.status, 200);
        let members = gw
            .get(&format!("/v1/channels/{channel}/presence"))
            .await
            .json();
        assert_eq!(members["members"], json!([]), "{channel}: {members}");
    }
    client
        .send_raw(&text(
            &json!({"id": 100, "presence_stats": {"channel": "room:0"}}),
        ))
        .await
        .unwrap();
    let (_, payload) = client.next_frame().await.unwrap();
    let frame: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(frame["id"], 100, "no publication reached it first: {frame}");
    assert_eq!(frame["ok"]["count"], 0, "{frame}");
}

#[tokio::test]
async fn replies_follow_requests_on_the_embedded_broker() {
    let gw = TestGateway::start_with(with_presence(test_config())).await;
    subscribe_then_unsubscribe_at_once(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn replies_follow_requests_through_redis() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(with_presence(redis_config(&redis.url()))).await;
    subscribe_then_unsubscribe_at_once(&gw).await;
    gw.stop().await;
}

/// A presence query sees what the requests before it did: right after its subscribe reply, a
/// connection finds itself among the members, and right after its unsubscribe reply, not.
async fn a_query_sees_the_requests_before_it(gw: &TestGateway) {
    let mut client = RawClient::connect(gw.ws_addr, "/ws?user=alice", None)
        .await
        .unwrap();
    for i in 0..30u64 {
        let channel = format!("room:q{i}");
        let mut bytes = text(&json!({"id": 4 * i + 1, "subscribe": {"channels": [channel]}}));
        bytes.extend(text(
            &json!({"id": 4 * i + 2, "presence": {"channel": channel}}),
        ));
        bytes.extend(text(
            &json!({"id": 4 * i + 3, "unsubscribe": {"channels": [channel]}}),
        ));
        bytes.extend(text(
            &json!({"id": 4 * i + 4, "presence_stats": {"channel": channel}}),
        ));
        client.send_raw(&bytes).await.unwrap();
        next_reply(&mut client).await;
        let members = next_reply(&mut client).await;
        assert_eq!(
            members["ok"]["members"],
            json!([{"user": "alice", "info": null}]),
            "try {i}: {members}"
        );
        next_reply(&mut client).await;
        let stats = next_reply(&mut client).await;
        assert_eq!(stats["ok"]["count"], 0, "try {i}: {stats}");
    }
}

#[tokio::test]
async fn queries_see_earlier_requests_on_the_embedded_broker() {
    let gw = TestGateway::start_with(with_presence(test_config())).await;
    a_query_sees_the_requests_before_it(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn queries_see_earlier_requests_through_redis() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(with_presence(redis_config(&redis.url()))).await;
    a_query_sees_the_requests_before_it(&gw).await;
    gw.stop().await;
}

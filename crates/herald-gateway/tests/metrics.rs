//! The labeled metrics move when their events happen, scraped from the real `/metrics`.

use std::time::Duration;

use herald_gateway::config::KeyConfig;
use herald_testkit::{
    eventually, redis_config, test_config, RawClient, RedisServer, TestGateway, WsClient, WAIT,
};
use jsonwebtoken::{encode, get_current_timestamp as now, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a metrics test secret, 32 bytes or more";

async fn equals(gw: &TestGateway, name: &str, value: f64) {
    eventually(WAIT, name, || async { gw.metric(name).await == value }).await;
}

async fn moved_to(gw: &TestGateway, name: &str, at_least: f64) {
    eventually(WAIT, name, || async { gw.metric(name).await >= at_least }).await;
}

#[tokio::test]
async fn labeled_metrics_count_paths_closes_auth_failures_and_limits() {
    let mut c = test_config();
    c.channels.publish = true;
    c.limits.max_subscriptions = 1;
    c.limits.publish_rate = 1;
    c.limits.max_connections = 3;
    c.limits.max_json_depth = 2;
    c.websocket.allowed_origins = vec!["https://ok.example".into()];
    c.auth.keys = vec![KeyConfig::hs256(SECRET)];
    let gw = TestGateway::start_with(c).await;
    for name in [
        "herald_publications_total{path=\"client\"}",
        "herald_connections_closed_total{reason=\"client\"}",
        "herald_auth_failures_total{reason=\"expired\"}",
        "herald_limit_hits_total{limit=\"publish_rate\"}",
        "herald_bytes_written_total",
    ] {
        assert_eq!(gw.metric(name).await, 0.0, "{name}");
    }

    let mut a = gw.client(None).await;
    a.subscribe_ok(&["news"]).await;
    equals(&gw, "herald_subscriptions", 1.0).await;
    assert_eq!(gw.publish("news", json!(1)).await.status, 200);
    a.next_push().await;
    let ok = a
        .request("publish", json!({"channel": "news", "data": 2}))
        .await;
    assert!(ok.get("ok").is_some(), "{ok}");
    let limited = a
        .request("publish", json!({"channel": "news", "data": 3}))
        .await;
    assert_eq!(limited["error"]["code"], 109);
    let failed = a.subscribe(&["other"]).await;
    assert_eq!(failed["ok"]["failed"][0]["code"], 109);
    let deep = gw.publish("news", json!([[[1]]])).await;
    assert_eq!(deep.status, 400);
    moved_to(&gw, "herald_publications_total{path=\"http\"}", 1.0).await;
    moved_to(&gw, "herald_publications_total{path=\"client\"}", 1.0).await;
    moved_to(&gw, "herald_limit_hits_total{limit=\"publish_rate\"}", 1.0).await;
    moved_to(
        &gw,
        "herald_limit_hits_total{limit=\"max_subscriptions\"}",
        1.0,
    )
    .await;
    moved_to(
        &gw,
        "herald_limit_hits_total{limit=\"max_json_depth\"}",
        1.0,
    )
    .await;
    assert!(gw.metric("herald_bytes_written_total").await > 100.0);
    moved_to(&gw, "herald_broker_delay_seconds_count", 2.0).await;
    // Two publications reached the broker (one HTTP, one client); the rate-limited and the
    // too deep ones did not.
    assert_eq!(gw.metric("herald_broker_publish_seconds_count").await, 2.0);

    // Refused upgrades and tokens.
    let url = gw.ws_url();
    let expired = encode(
        &Header::default(),
        &json!({"sub": "u", "exp": now() - 60}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        WsClient::refused(&format!("{url}?token={expired}"), &[])
            .await
            .0,
        401
    );
    assert_eq!(
        WsClient::refused(&format!("{url}?user=x"), &[]).await.0,
        400
    );
    let (status, _) = WsClient::refused(&url, &[("Origin", "https://no.example")]).await;
    assert_eq!(status, 403);
    moved_to(&gw, "herald_auth_failures_total{reason=\"expired\"}", 1.0).await;
    moved_to(
        &gw,
        "herald_auth_failures_total{reason=\"bad_parameters\"}",
        1.0,
    )
    .await;
    moved_to(&gw, "herald_limit_hits_total{limit=\"origin\"}", 1.0).await;

    // Closes, by why: the client's own, a protocol error, a dropped socket; then a full node.
    let mut b = gw.client(None).await;
    b.subscribe_ok(&["news"]).await;
    equals(&gw, "herald_subscriptions", 2.0).await;
    let left = b
        .request("unsubscribe", json!({"channels": ["news"]}))
        .await;
    assert_eq!(left["ok"]["unsubscribed"], json!(["news"]));
    equals(&gw, "herald_subscriptions", 1.0).await;
    b.subscribe_ok(&["news"]).await;
    b.close().await;
    let mut raw = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    raw.send_raw(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(raw.close_code().await.unwrap(), 1002);
    let dropped = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    drop(dropped);
    moved_to(
        &gw,
        "herald_connections_closed_total{reason=\"client\"}",
        1.0,
    )
    .await;
    moved_to(
        &gw,
        "herald_connections_closed_total{reason=\"protocol_error\"}",
        1.0,
    )
    .await;
    moved_to(
        &gw,
        "herald_connections_closed_total{reason=\"abnormal\"}",
        1.0,
    )
    .await;
    let _b = gw.client(None).await;
    let _c = gw.client(None).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(WsClient::refused(&url, &[]).await.0, 503);
    moved_to(
        &gw,
        "herald_limit_hits_total{limit=\"max_connections\"}",
        1.0,
    )
    .await;
    // b's subscription went with its connection; a's stays.
    equals(&gw, "herald_subscriptions", 1.0).await;
    drop(raw);
    gw.stop().await;
}

#[tokio::test]
async fn publications_straight_into_redis_are_counted_by_the_redis_path() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(WAIT).await;
    let redis_path = "herald_publications_total{path=\"redis\"}";
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    assert_eq!(gw.publish("news", json!(1)).await.status, 200);
    c.next_push().await;
    moved_to(&gw, "herald_publications_total{path=\"http\"}", 1.0).await;
    assert_eq!(
        gw.metric(redis_path).await,
        0.0,
        "an HTTP publish is not direct"
    );
    // The function without a message id, and a plain PUBLISH: both straight into Redis.
    redis.cli(&[
        "FCALL",
        "herald_publish",
        "2",
        "herald:seq:{news}",
        "herald:ch:{news}",
        "2",
    ]);
    redis.cli(&["PUBLISH", "herald:ch:{news}", r#"{"data":3}"#]);
    c.next_push().await;
    c.next_push().await;
    equals(&gw, redis_path, 2.0).await;
}

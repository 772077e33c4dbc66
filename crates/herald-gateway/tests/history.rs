//! History: publications kept per namespace, read back over the WebSocket (`history`) and the
//! HTTP API (`GET /v1/history`), from a position of offset and epoch; on the embedded broker
//! and through Redis.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_protocol::WireFormat;
use herald_testkit::{redis_config, test_config, RedisServer, TestGateway};
use serde_json::{json, Value};

/// `chat:` keeps 3 publications; `quiet:` none.
fn with_namespaces(mut config: GatewayConfig) -> GatewayConfig {
    let ns = |history_size| NamespaceConfig {
        history_size,
        history_ttl: Duration::from_secs(60),
        ..NamespaceConfig::default()
    };
    config.namespaces.insert("chat".into(), ns(3));
    config.namespaces.insert("quiet".into(), ns(0));
    config
}

/// Publishes `count` numbers into `channel` over HTTP; returns the last reply's body.
async fn publish(gw: &TestGateway, channel: &str, count: u64) -> Value {
    let mut last = Value::Null;
    for i in 1..=count {
        let r = gw.publish(channel, json!(i)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        last = r.json();
    }
    last
}

fn offsets(reply: &Value) -> Vec<u64> {
    reply["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect()
}

/// Every read a client can make, against a gateway whose `chat:1` has had 5 publications.
async fn reads_follow_the_position(gw: &TestGateway) {
    let last = publish(gw, "chat:1", 5).await;
    let epoch = last["epoch"]
        .as_str()
        .expect("the publish reply's epoch")
        .to_owned();
    assert_eq!(last["offset"], 5);

    let mut c = gw.client(None).await;
    let all = c.request("history", json!({"channel": "chat:1"})).await;
    let ok = &all["ok"];
    assert_eq!(
        (ok["offset"].as_u64(), ok["epoch"].as_str()),
        (Some(5), Some(epoch.as_str()))
    );
    assert_eq!(offsets(ok), [3, 4, 5], "the namespace keeps 3");
    assert_eq!(ok["publications"][0]["data"], 3);

    let since = |offset: u64, epoch: &str| json!({"offset": offset, "epoch": epoch});
    let after = c
        .request(
            "history",
            json!({"channel": "chat:1", "since": since(3, &epoch)}),
        )
        .await;
    assert_eq!(offsets(&after["ok"]), [4, 5]);
    let newest = c
        .request(
            "history",
            json!({"channel": "chat:1", "limit": 2, "reverse": true}),
        )
        .await;
    assert_eq!(offsets(&newest["ok"]), [5, 4]);
    let caught_up = c
        .request(
            "history",
            json!({"channel": "chat:1", "since": since(5, &epoch)}),
        )
        .await;
    assert_eq!(offsets(&caught_up["ok"]), Vec::<u64>::new());

    // Positions the history cannot continue: 110.
    let lost = |reply: &Value| {
        assert_eq!(reply["error"]["code"], 110, "{reply}");
        reply["error"]["message"].as_str().unwrap().to_owned()
    };
    let other_epoch = c
        .request(
            "history",
            json!({"channel": "chat:1", "since": since(3, "zz9")}),
        )
        .await;
    assert!(lost(&other_epoch).contains("epoch"));
    let too_old = c
        .request(
            "history",
            json!({"channel": "chat:1", "since": since(1, &epoch)}),
        )
        .await;
    assert!(lost(&too_old).contains("no longer kept"));
    let ahead = c
        .request(
            "history",
            json!({"channel": "chat:1", "since": since(9, &epoch)}),
        )
        .await;
    assert!(lost(&ahead).contains("past"));

    // No history kept, a bad channel, a bad request.
    let off = c.request("history", json!({"channel": "quiet:1"})).await;
    assert_eq!(off["error"]["code"], 104);
    let bad = c.request("history", json!({"channel": "no spaces"})).await;
    assert_eq!(bad["error"]["code"], 102);
    let malformed = c
        .request("history", json!({"channel": "chat:1", "limit": "x"}))
        .await;
    assert_eq!(malformed["error"]["code"], 101);

    // The HTTP API reads the same.
    let http = gw
        .get(&format!(
            "/v1/history?channel=chat:1&since_offset=3&since_epoch={epoch}"
        ))
        .await;
    assert_eq!(http.status, 200, "{}", http.text());
    assert_eq!(offsets(&http.json()), [4, 5]);
    assert_eq!(http.json()["epoch"], epoch.as_str());
    let http_lost = gw
        .get("/v1/history?channel=chat:1&since_offset=3&since_epoch=zz9")
        .await;
    assert_eq!(
        (http_lost.status, http_lost.json()["error"]["code"].as_u64()),
        (409, Some(110))
    );
    assert_eq!(
        gw.get("/v1/history?channel=chat:1&since_offset=3")
            .await
            .status,
        400
    );
    assert_eq!(
        gw.get("/v1/history?channel=chat:1&reverse=maybe")
            .await
            .status,
        400
    );
    assert_eq!(gw.get("/v1/history?channel=quiet:1").await.status, 403);
    assert_eq!(gw.post("/v1/history", &[], b"").await.status, 405);

    // A subscribe reply gives the position of each channel that keeps history; the pushes
    // continue from it.
    let reply = c
        .request(
            "subscribe",
            json!({"channels": ["chat:1", "quiet:1", "chat:new"]}),
        )
        .await;
    assert_eq!(
        reply["ok"]["positions"],
        json!([
            {"channel": "chat:1", "offset": 5, "epoch": epoch},
            {"channel": "chat:new", "offset": 0}
        ]),
        "{reply}"
    );
    gw.publish("chat:1", json!(6)).await;
    assert_eq!(c.next_push().await["offset"], 6);
}

#[tokio::test]
async fn history_reads_follow_the_position_on_the_embedded_broker() {
    let gw = TestGateway::start_with(with_namespaces(test_config())).await;
    reads_follow_the_position(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn history_reads_follow_the_position_through_redis() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    reads_follow_the_position(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn history_replies_in_messagepack_and_by_default_keeps_100() {
    let gw = TestGateway::start().await;
    publish(&gw, "news", 120).await;
    let mut c = gw.client(Some(WireFormat::MsgPack)).await;
    let reply = c
        .request("history", json!({"channel": "news", "limit": 1000}))
        .await;
    let kept = offsets(&reply["ok"]);
    assert_eq!(kept.len(), 100, "[channels] keeps 100 by default");
    assert_eq!((kept[0], kept[99]), (21, 120));
    assert_eq!(reply["ok"]["publications"][99]["data"], 120);
    gw.stop().await;
}

#[tokio::test]
async fn a_redis_restart_without_persistence_starts_a_new_epoch() {
    let mut redis = RedisServer::start().await;
    let port = redis.port();
    let gw = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let before = publish(&gw, "chat:1", 2).await;
    let epoch = before["epoch"].as_str().unwrap().to_owned();
    redis.kill();
    let _redis = RedisServer::start_on(port, &[]).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    let after = publish(&gw, "chat:1", 1).await;
    assert_eq!(after["offset"], 1);
    assert_ne!(after["epoch"].as_str(), Some(epoch.as_str()));
    let mut c = gw.client(None).await;
    let since = json!({"offset": 2, "epoch": epoch});
    let reply = c
        .request("history", json!({"channel": "chat:1", "since": since}))
        .await;
    assert_eq!(reply["error"]["code"], 110, "{reply}");
    gw.stop().await;
}

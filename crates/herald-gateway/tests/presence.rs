//! Presence channels on the embedded default: members, join and leave pushes, queries.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_testkit::{test_config, TestGateway, WsClient};
use serde_json::{json, Value};

fn presence_config() -> GatewayConfig {
    let mut c = test_config();
    c.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            ..NamespaceConfig::default()
        },
    );
    c.namespaces
        .insert("news".into(), NamespaceConfig::default());
    c
}

async fn as_user(gw: &TestGateway, query: &str) -> WsClient {
    WsClient::connect(&format!("{}?{query}", gw.ws_url()), None)
        .await
        .expect("connect")
}

#[tokio::test]
async fn several_connections_of_one_user_are_one_member() {
    let gw = TestGateway::start_with(presence_config()).await;
    let mut bob = as_user(&gw, "user=bob").await;
    bob.subscribe_ok(&["room:1"]).await;
    assert_eq!(
        bob.next_frame().await,
        json!({"join": {"channel": "room:1", "user": "bob", "info": null}})
    );
    let info = "%7B%22name%22%3A%22Alice%22%7D";
    let mut tab1 = as_user(&gw, &format!("user=alice&info={info}")).await;
    tab1.subscribe_ok(&["room:1"]).await;
    assert_eq!(
        bob.next_frame().await,
        json!({"join": {"channel": "room:1", "user": "alice", "info": {"name": "Alice"}}})
    );
    let mut tab2 = as_user(&gw, "user=alice").await;
    tab2.subscribe_ok(&["room:1"]).await;
    // The second tab is not a second member, and closing the first leaves nothing.
    tab1.close().await;
    let count = bob
        .request("presence_stats", json!({"channel": "room:1"}))
        .await;
    assert_eq!(count["ok"], json!({"channel": "room:1", "count": 2}));
    tab2.close().await;
    assert_eq!(
        bob.next_frame().await,
        json!({"leave": {"channel": "room:1", "user": "alice", "info": {"name": "Alice"}}})
    );
    // Nothing else came: the next frame is the reply to this request.
    let members = bob.request("presence", json!({"channel": "room:1"})).await;
    assert_eq!(
        members["ok"],
        json!({"channel": "room:1", "members": [{"user": "bob", "info": null}]})
    );
    gw.stop().await;
}

#[tokio::test]
async fn unsubscribing_leaves_and_the_http_api_answers_the_same() {
    let gw = TestGateway::start_with(presence_config()).await;
    let mut watcher = as_user(&gw, "user=w").await;
    watcher.subscribe_ok(&["room:2"]).await;
    watcher.next_frame().await;
    let mut c = as_user(&gw, "user=carol&info=%5B1%2C2%5D").await;
    c.subscribe_ok(&["room:2"]).await;
    assert_eq!(watcher.next_frame().await["join"]["user"], "carol");

    let r = gw.get("/v1/channels/room:2/presence").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"channel": "room:2", "members": [
            {"user": "carol", "info": [1, 2]}, {"user": "w", "info": null}
        ]})
    );
    let r = gw.get("/v1/channels/room%3A2/presence/stats").await;
    assert_eq!(r.json(), json!({"channel": "room:2", "count": 2}));

    let reply = c
        .request("unsubscribe", json!({"channels": ["room:2"]}))
        .await;
    assert_eq!(reply["ok"]["unsubscribed"], json!(["room:2"]));
    assert_eq!(watcher.next_frame().await["leave"]["user"], "carol");
    let r = gw.get("/v1/channels/room:2/presence/stats").await;
    assert_eq!(r.json()["count"], 1);
    gw.stop().await;
}

/// An unsubscribe that overtakes its own subscribe (sent before the broker answered) leaves
/// no member behind.
#[tokio::test]
async fn unsubscribing_before_the_subscription_settles_leaves_no_member() {
    let gw = TestGateway::start_with(presence_config()).await;
    let mut c = as_user(&gw, "user=dan").await;
    let channels: Vec<String> = (0..20).map(|i| format!("room:quick{i}")).collect();
    for (i, channel) in channels.iter().enumerate() {
        let id = 2 * i as u64 + 1;
        c.send(&json!({"id": id, "subscribe": {"channels": [channel]}}))
            .await;
        c.send(&json!({"id": id + 1, "unsubscribe": {"channels": [channel]}}))
            .await;
    }
    let mut replies = 0;
    while replies < 2 * channels.len() {
        let frame = c.next_frame().await;
        if frame.get("id").is_some() {
            assert!(frame.get("ok").is_some(), "{frame}");
            replies += 1;
        }
    }
    // Give any late join time to land, then nobody may be a member.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for channel in &channels {
        let r = gw
            .get(&format!("/v1/channels/{channel}/presence/stats"))
            .await;
        assert_eq!(r.json()["count"], 0, "{channel}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn presence_refuses_what_it_cannot_serve() {
    let gw = TestGateway::start_with(presence_config()).await;
    // No user: the presence channel fails alone, the other channel works.
    let mut anon = gw.client(None).await;
    let reply = anon.subscribe(&["room:3", "news:a"]).await;
    assert_eq!(reply["ok"]["subscribed"], json!(["news:a"]));
    assert_eq!(reply["ok"]["failed"][0]["channel"], "room:3");
    assert_eq!(reply["ok"]["failed"][0]["code"], 107);
    // Queries only on presence channels.
    let r = anon.request("presence", json!({"channel": "news:a"})).await;
    assert_eq!(r["error"]["code"], 104, "{r}");
    let r = anon
        .request("presence_stats", json!({"channel": "nope:a"}))
        .await;
    assert_eq!(r["error"]["code"], 103, "{r}");
    assert_eq!(gw.get("/v1/channels/news:a/presence").await.status, 403);
    assert_eq!(gw.get("/v1/channels/bad%20name/presence").await.status, 422);
    assert_eq!(
        gw.post("/v1/channels/room:3/presence", &[], b"")
            .await
            .status,
        405
    );
    // Bad connect parameters are refused at the upgrade.
    for query in ["user=", "user=a%20b", "user=a&info=%7B", "info=1"] {
        let url = format!("{}?{query}", gw.ws_url());
        let err = WsClient::connect(&url, None).await.err();
        let text = format!("{err:?}");
        assert!(text.contains("400"), "{query}: {text}");
    }
    let long = "x".repeat(2000);
    let url = format!("{}?user=a&info=%22{long}%22", gw.ws_url());
    assert!(WsClient::connect(&url, None).await.is_err());
    // The node still serves everyone else.
    let mut ok = as_user(&gw, "user=dan").await;
    ok.subscribe_ok(&["room:3"]).await;
    let join: Value = ok.next_frame().await;
    assert_eq!(join["join"]["user"], "dan");
    tokio::time::sleep(Duration::from_millis(10)).await;
    gw.stop().await;
}

//! Presence with the table in a real redis-server: one table for every node, joins and leaves
//! published once, a silent node's members leaving when its lease runs out.

use std::time::Duration;

use herald_gateway::config::NamespaceConfig;
use herald_testkit::{redis_config, Incoming, RedisServer, TestGateway, WsClient, WAIT};
use serde_json::json;

async fn gateway(redis: &RedisServer) -> TestGateway {
    let mut config = redis_config(&redis.url());
    config.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            ..NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(WAIT).await;
    gw
}

async fn as_user(gw: &TestGateway, user: &str) -> WsClient {
    WsClient::connect(&format!("{}?user={user}", gw.ws_url()), None)
        .await
        .expect("connect")
}

async fn assert_quiet(c: &mut WsClient) {
    match c.next_within(Duration::from_millis(300)).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn one_member_per_user_across_nodes_and_each_event_once() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis).await;
    let b = gateway(&redis).await;
    let mut watcher = as_user(&a, "w").await;
    watcher.subscribe_ok(&["room:1"]).await;
    assert_eq!(watcher.next_frame().await["join"]["user"], "w");

    let mut on_b = as_user(&b, "alice").await;
    on_b.subscribe_ok(&["room:1"]).await;
    assert_eq!(
        watcher.next_frame().await,
        json!({"join": {"channel": "room:1", "user": "alice", "info": null}})
    );
    // Alice's second connection, on the other node, is the same member.
    let mut on_a = as_user(&a, "alice").await;
    on_a.subscribe_ok(&["room:1"]).await;
    assert_quiet(&mut watcher).await;
    let stats = b.get("/v1/channels/room:1/presence/stats").await.json();
    assert_eq!(stats, json!({"channel": "room:1", "count": 2}));

    on_b.close().await;
    assert_quiet(&mut watcher).await;
    on_a.close().await;
    assert_eq!(watcher.next_frame().await["leave"]["user"], "alice");
    assert_quiet(&mut watcher).await;
    let members = b.get("/v1/channels/room:1/presence").await.json();
    assert_eq!(members["members"], json!([{"user": "w", "info": null}]));

    // A graceful stop: the node's members leave at once, seen on the other node.
    let mut bob = as_user(&b, "bob").await;
    bob.subscribe_ok(&["room:1"]).await;
    assert_eq!(watcher.next_frame().await["join"]["user"], "bob");
    b.stop().await;
    assert_eq!(watcher.next_frame().await["leave"]["user"], "bob");
    assert_quiet(&mut watcher).await;
    a.stop().await;
}

#[tokio::test]
async fn a_silent_node_s_members_leave_once_when_its_lease_runs_out() {
    let redis = RedisServer::start().await;
    let a = gateway(&redis).await;
    let mut watcher = as_user(&a, "w").await;
    watcher.subscribe_ok(&["room:2"]).await;
    watcher.next_frame().await;

    // A node that reports one member and then says nothing more, as a killed gateway would.
    let fcall = |args: &[&str]| {
        let mut all = vec![
            "FCALL",
            args[0],
            "1",
            "herald:{presence}:nodes",
            "herald:",
            "standalone",
        ];
        all.extend_from_slice(&args[1..]);
        redis.cli(&all)
    };
    fcall(&["herald_presence_heartbeat", "ghost", "300"]);
    let joined = fcall(&[
        "herald_presence_join",
        "ghost",
        "room:2",
        "zed",
        r#"{"a":1}"#,
    ]);
    assert_eq!(joined.trim(), "1");
    assert_eq!(
        watcher.next_frame().await,
        json!({"join": {"channel": "room:2", "user": "zed", "info": {"a": 1}}})
    );
    // Before the lease runs out nothing expires; after it, the member leaves exactly once.
    assert_eq!(
        fcall(&["herald_presence_expire"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"]
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fcall(&["herald_presence_expire"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1", "1"]
    );
    assert_eq!(
        fcall(&["herald_presence_expire"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"]
    );
    match watcher.next().await.expect("leave") {
        Incoming::Frame(v) => assert_eq!(
            v,
            json!({"leave": {"channel": "room:2", "user": "zed", "info": {"a": 1}}})
        ),
        other => panic!("expected the leave, got {other:?}"),
    }
    assert_quiet(&mut watcher).await;
    // A late report from the expired node changes nothing until it registers again.
    let late = fcall(&["herald_presence_join", "ghost", "room:2", "zed", "null"]);
    assert_eq!(late.trim(), "-1");
    assert_quiet(&mut watcher).await;
    let stats = a.get("/v1/channels/room:2/presence/stats").await.json();
    assert_eq!(stats["count"], 1);
    a.stop().await;
}

//! Presence on a real Redis Cluster: the table lives in the `{presence}` slot, notices travel
//! on one classic pub/sub channel to every node; joins and leaves once each, member queries,
//! a silent node's members expiring, and a lost events connection announced as gaps.

use std::time::Duration;

use herald_gateway::config::NamespaceConfig;
use herald_testkit::{redis_cluster_config, RedisCluster, TestGateway, WsClient};
use serde_json::json;

async fn gateway(cluster: &RedisCluster) -> TestGateway {
    let mut config = redis_cluster_config(cluster);
    config.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            publish: true,
            ..NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(10)).await;
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
async fn joins_leaves_and_queries_work_across_nodes_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut watcher = as_user(&a, "w").await;
    watcher.subscribe_ok(&["room:1"]).await;
    assert_eq!(watcher.next_frame().await["join"]["user"], "w");

    let mut alice_b = as_user(&b, "alice").await;
    alice_b.subscribe_ok(&["room:1"]).await;
    assert_eq!(
        watcher.next_frame().await,
        json!({"join": {"channel": "room:1", "user": "alice", "info": null}})
    );
    // A second connection of alice, on the other node: the same member, no second join.
    let mut alice_a = as_user(&a, "alice").await;
    alice_a.subscribe_ok(&["room:1"]).await;
    assert_quiet(&mut watcher).await;
    // Another channel (another slot for its messages): its events reach only its subscribers.
    let mut other = as_user(&b, "carol").await;
    other.subscribe_ok(&["room:2"]).await;
    assert_eq!(other.next_frame().await["join"]["user"], "carol");
    assert_quiet(&mut watcher).await;

    let members = b.get("/v1/channels/room:1/presence").await.json();
    assert_eq!(
        members["members"],
        json!([{"user": "alice", "info": null}, {"user": "w", "info": null}])
    );
    let count = a.get("/v1/channels/room:1/presence/stats").await.json();
    assert_eq!(count["count"], 2);

    // Alice leaves when her last connection goes, once.
    drop(alice_b);
    assert_quiet(&mut watcher).await;
    drop(alice_a);
    assert_eq!(watcher.next_frame().await["leave"]["user"], "alice");
    assert_quiet(&mut watcher).await;
    // A graceful stop of node B: carol leaves at once, seen by a watcher on A.
    let mut watcher2 = as_user(&a, "w2").await;
    watcher2.subscribe_ok(&["room:2"]).await;
    assert_eq!(watcher2.next_frame().await["join"]["user"], "w2");
    b.stop().await;
    assert_eq!(watcher2.next_frame().await["leave"]["user"], "carol");
}

#[tokio::test]
async fn a_silent_node_expires_and_a_lost_events_connection_is_a_gap() {
    let cluster = RedisCluster::start(3, 0).await;
    let a = gateway(&cluster).await;
    let mut watcher = as_user(&a, "w").await;
    watcher.subscribe_ok(&["room:3"]).await;
    watcher.next_frame().await;

    // A node that reports one member and then falls silent, as a killed gateway would.
    let fcall = |args: &[&str]| {
        let mut all = vec![
            "FCALL",
            args[0],
            "1",
            "herald:{presence}:nodes",
            "herald:",
            "cluster",
        ];
        all.extend_from_slice(&args[1..]);
        cluster.cli(&all)
    };
    fcall(&["herald_presence_heartbeat", "ghost", "300"]);
    let joined = fcall(&["herald_presence_join", "ghost", "room:3", "zed", "null"]);
    assert_eq!(joined.trim(), "1");
    assert_eq!(watcher.next_frame().await["join"]["user"], "zed");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = fcall(&["herald_presence_expire"]);
    assert_eq!(expired.split_whitespace().collect::<Vec<_>>(), ["1", "1"]);
    assert_eq!(watcher.next_frame().await["leave"]["user"], "zed");
    assert_eq!(
        fcall(&["herald_presence_expire"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "0"],
        "expired once"
    );

    // The node's presence events connection (classic SUBSCRIBE, no sharded channels) is
    // dropped, and nothing else: the node subscribes again and tells its channels that they
    // may have missed notices; later joins arrive again.
    let mut killed = 0;
    for server in &cluster.servers {
        let list = server.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        for line in list.lines() {
            if line.contains(" sub=1 ") && line.contains(" ssub=0 ") {
                let id = line
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_start_matches("id=");
                server.cli(&["CLIENT", "KILL", "ID", id]);
                killed += 1;
            }
        }
    }
    assert_eq!(killed, 1, "one events connection per node");
    let gap = watcher.next_frame().await;
    assert_eq!(gap["gap"]["channel"], "room:3", "{gap}");
    let mut late = None;
    for attempt in 0..50 {
        let mut joiner = as_user(&a, &format!("late{attempt}")).await;
        joiner.subscribe_ok(&["room:3"]).await;
        match watcher.next_within(Duration::from_millis(200)).await {
            Ok(herald_testkit::Incoming::Frame(f)) if f.get("join").is_some() => {
                late = Some(f);
                break;
            }
            Ok(herald_testkit::Incoming::Frame(f)) if f.get("gap").is_some() => {}
            _ => {}
        }
        drop(joiner);
    }
    let late = late.expect("joins arrive again after the reconnect");
    assert!(late["join"]["user"].as_str().unwrap().starts_with("late"));
}

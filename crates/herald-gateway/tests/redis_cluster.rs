//! Gateways relaying through a real Redis Cluster (3 masters, 1 replica each) with sharded
//! pub/sub: every publish form, the same offsets on every node, one subscriber connection per
//! master, and a master failover that resumes delivery: repaired from the history, or with a gap
//! notice.

use std::time::{Duration, Instant};

use herald_gateway::config::NamespaceConfig;
use herald_protocol::WireFormat;
use herald_testkit::{redis_cluster_config, RedisCluster, TestGateway};
use serde_json::json;

async fn gateway(cluster: &RedisCluster) -> TestGateway {
    let mut config = redis_cluster_config(cluster);
    config.namespaces.insert(
        "chat".into(),
        NamespaceConfig {
            publish: true,
            ..NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    gw
}

#[tokio::test]
async fn every_publish_form_reaches_every_node_through_the_cluster() {
    let cluster = RedisCluster::start(3, 1).await;
    let (a, b, c) = (
        gateway(&cluster).await,
        gateway(&cluster).await,
        gateway(&cluster).await,
    );
    // Channels spread over the three shards.
    let channels: Vec<String> = (0..6).map(|i| format!("chat:r{i}")).collect();
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    let masters: std::collections::HashSet<usize> = channels
        .iter()
        .map(|ch| cluster.master_of(&format!("herald:seq:{{{ch}}}")))
        .collect();
    assert!(masters.len() >= 2, "channels span several shards");

    let mut on_a = a.client(Some(WireFormat::MsgPack)).await;
    let mut on_b = b.client(None).await;
    let mut on_c = c.client(None).await;
    on_a.subscribe_ok(&names).await;
    on_b.subscribe_ok(&names).await;

    for ch in &channels {
        assert_eq!(
            a.publish(ch, json!("http")).await.json()["offset"],
            json!(1)
        );
        let reply = on_c
            .request("publish", json!({"channel": ch, "data": "client"}))
            .await;
        assert_eq!(reply["ok"]["offset"], json!(2), "{reply}");
        let seq = format!("herald:seq:{{{ch}}}");
        let pubsub = format!("herald:ch:{{{ch}}}");
        assert_eq!(
            cluster.cli(&["FCALL", "herald_spublish", "2", &seq, &pubsub, r#""fcall""#]),
            "3"
        );
        cluster.cli(&["SPUBLISH", &pubsub, r#"{"data":"plain"}"#]);
    }
    for client in [&mut on_a, &mut on_b] {
        // Order holds within a channel; channels on different masters interleave freely.
        let mut seen: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for _ in 0..4 * channels.len() {
            let push = client.next_push().await;
            let ch = push["channel"].as_str().expect("a channel").to_owned();
            seen.entry(ch)
                .or_default()
                .push((push["data"].clone(), push["offset"].clone()));
        }
        for ch in &channels {
            assert_eq!(
                seen.get(ch.as_str()),
                Some(&vec![
                    (json!("http"), json!(1)),
                    (json!("client"), json!(2)),
                    (json!("fcall"), json!(3)),
                    (json!("plain"), serde_json::Value::Null),
                ]),
                "{ch}"
            );
        }
        match client.next_within(Duration::from_millis(300)).await {
            Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
            Ok(other) => panic!("a duplicate or stray frame: {other:?}"),
        }
    }

    // One sharded subscriber connection per master and gateway with subscribers (A and B),
    // never one per client; on the master of the nodes' control channel, every gateway's.
    let control = cluster.master_of("herald:ch:{_herald:control}");
    let mut more = Vec::new();
    for _ in 0..5 {
        let mut extra = b.client(None).await;
        extra.subscribe_ok(&names).await;
        more.push(extra);
    }
    for (i, server) in cluster.servers.iter().enumerate() {
        if server.cli(&["ROLE"]).starts_with("master") {
            let pubsub = server.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
            let gateways = if i == control { 3 } else { 2 };
            assert_eq!(pubsub.lines().count(), gateways, "master {i}: {pubsub}");
        }
    }
}

#[tokio::test]
async fn a_master_failover_resumes_delivery_and_loses_nothing_silently() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    a.publish("news", json!("before")).await;
    assert_eq!(sub.next_push().await["data"], json!("before"));

    let master = cluster.master_of("herald:seq:{news}");
    cluster.servers[master].kill();
    cluster.wait_failover("herald:seq:{news}", master).await;
    let promoted = Instant::now();

    // Keep publishing; live publications must come back within 2 s of the failover. The
    // replica took over the channel's history with its counter: the node repairs from it,
    // with no gap notice, when the replica had everything; when the failover lost writes,
    // the counter starts again with a new epoch and the subscriber gets a gap notice.
    let reader = tokio::spawn(async move {
        let (gaps, push) = sub.gaps_until_push(&json!("after"), |_| false).await;
        let offset = push["offset"].as_u64().unwrap();
        let told_or_whole = gaps == ["news"] || (gaps.is_empty() && offset == 2);
        (told_or_whole, Instant::now())
    });
    while !reader.is_finished() && promoted.elapsed() < Duration::from_secs(5) {
        a.publish("news", json!("after")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (seen_gap, resumed) = reader.await.unwrap();
    assert!(
        seen_gap,
        "either a gap notice before the first live publication, or nothing missed"
    );
    assert!(
        resumed - promoted < Duration::from_secs(2),
        "resumed {:?} after the failover",
        resumed - promoted
    );
    assert!(b.metric("herald_broker_gaps_total").await >= 1.0);
    let (repairs, gaps) = (
        b.metric("herald_repairs_completed_total").await,
        b.metric("herald_gap_notices_total").await,
    );
    assert!(repairs + gaps >= 1.0, "repaired, or told");
}

#[tokio::test]
async fn a_migrated_slot_is_resubscribed_on_its_new_master_and_repaired_from_history() {
    let cluster = RedisCluster::start(3, 0).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    assert_eq!(
        a.publish("news", json!("before")).await.json()["offset"],
        json!(1)
    );
    assert_eq!(sub.next_push().await["data"], json!("before"));

    let key = "herald:seq:{news}";
    let from = cluster.master_of(key);
    let to = (from + 1) % 3;
    cluster.migrate_slot_of(key, to);
    assert_eq!(cluster.master_of(key), to);

    // Redis tells the old master's subscribers (sunsubscribe); the node subscribes the channel
    // on its new master. The offset counter and the history moved with the slot: the node
    // repairs from the history, and no gap notice is needed.
    let reader = tokio::spawn(async move {
        let (gaps, push) = sub.gaps_until_push(&json!("after"), |_| false).await;
        (gaps.is_empty(), push["offset"].as_u64().unwrap())
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(5) {
        a.publish("news", json!("after")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (no_gap, offset) = reader.await.unwrap();
    assert!(no_gap, "repaired from the history: no gap notice");
    assert_eq!(
        offset, 2,
        "offsets continue across the migration, none missed"
    );
    assert!(b.metric("herald_repairs_total").await >= 1.0);
}

#[tokio::test]
async fn a_subscriber_connection_killed_on_its_master_resubscribes_sharded() {
    let cluster = RedisCluster::start(3, 0).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    a.publish("news", json!("before")).await;
    assert_eq!(sub.next_push().await["data"], json!("before"));

    // Redis drops every pub/sub connection on the channel's master; the node reconnects to
    // the same master and must subscribe again with SSUBSCRIBE (a plain SUBSCRIBE would be
    // confirmed too, but never sees SPUBLISH).
    let master = cluster.master_of("herald:seq:{news}");
    cluster.servers[master].cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let (gaps, _) = sub.gaps_until_push(&json!("after"), |_| false).await;
        gaps
    });
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(5) {
        a.publish("news", json!("after")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reader.is_finished(),
        "no publication arrived after the reconnect"
    );
    assert_eq!(
        reader.await.unwrap(),
        Vec::<String>::new(),
        "repaired from the history: no gap notice, live again"
    );
}

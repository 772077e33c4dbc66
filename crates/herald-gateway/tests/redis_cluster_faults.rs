//! Faults of a real Redis Cluster with a publisher running throughout: every publication
//! acknowledged to it reaches the subscribers exactly once and in order (a master failover, a
//! migrated slot); and a failover that loses acknowledged writes recovers nobody over
//! publications that differ from what they saw.

use std::time::Duration;

use herald_testkit::{publish_counted, redis_cluster_config, Received, RedisCluster, TestGateway};
use serde_json::json;

const COUNT: u64 = 300;
const KEY: &str = "herald:seq:{news}";

async fn gateway(cluster: &RedisCluster) -> TestGateway {
    let gw = TestGateway::start_with(redis_cluster_config(cluster)).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    gw
}

#[tokio::test]
async fn a_master_failover_under_a_publisher_loses_and_repeats_nothing() {
    let cluster = RedisCluster::start(3, 1).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let (mut on_a, mut on_b) = (a.client(None).await, b.client(None).await);
    on_a.subscribe_ok(&["news"]).await;
    on_b.subscribe_ok(&["news"]).await;
    let publishing = publish_counted(a.api_addr, "news", COUNT, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The replica takes over in a coordinated failover (as an operator's or an upgrade's):
    // the master stops taking writes until the replica has them all.
    let master = cluster.master_of(KEY);
    let replica = cluster.replica_of(master);
    assert_eq!(cluster.servers[replica].cli(&["CLUSTER", "FAILOVER"]), "OK");
    cluster.wait_failover(KEY, master).await;
    let acked = publishing.await.unwrap();
    for c in [&mut on_a, &mut on_b] {
        let received = Received::until(c, &acked).await;
        received.assert_each_once_in_order(&acked);
        assert!(received.gaps.is_empty(), "{:?}", received.gaps);
    }
    assert!(b.metric("herald_repairs_total").await >= 1.0);
}

#[tokio::test]
async fn a_migrated_slot_under_a_publisher_loses_and_repeats_nothing() {
    let cluster = RedisCluster::start(3, 0).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut sub = b.client(None).await;
    sub.subscribe_ok(&["news"]).await;
    let publishing = publish_counted(a.api_addr, "news", COUNT, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let from = cluster.master_of(KEY);
    cluster.migrate_slot_of(KEY, (from + 1) % 3);
    let acked = publishing.await.unwrap();
    let received = Received::until(&mut sub, &acked).await;
    received.assert_each_once_in_order(&acked);
    assert!(received.gaps.is_empty(), "{:?}", received.gaps);
}

#[tokio::test]
async fn a_failover_that_loses_acknowledged_writes_recovers_nobody_over_them() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let (a, b) = (gateway(&cluster).await, gateway(&cluster).await);
    let mut stays = b.client(None).await;
    stays.subscribe_ok(&["news"]).await;
    let mut leaves = b.client(None).await;
    leaves.subscribe_ok(&["news"]).await;
    let mut epoch = String::new();
    for n in 1..=5u64 {
        epoch = a.publish("news", json!(n)).await.json()["epoch"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let master = cluster.master_of(KEY);
    let replica = cluster.replica_of(master);
    cluster.wait_replicated(replica).await;
    // The replica is held back and its link dropped: 6 to 10 are acknowledged by the master
    // alone.
    cluster.servers[replica].pause();
    cluster.servers[master].cli(&["CLIENT", "KILL", "TYPE", "replica"]);
    for n in 6..=10u64 {
        let r = a.publish("news", json!(n)).await;
        assert_eq!(r.json()["offset"], n, "{}", r.text());
    }
    for c in [&mut stays, &mut leaves] {
        for n in 1..=10u64 {
            assert_eq!(c.next_push().await["offset"], n);
        }
    }
    leaves.close().await;
    cluster.servers[master].kill();
    cluster.servers[replica].resume();
    cluster.wait_failover(KEY, master).await;
    // The new master has 1 to 5.
    herald_testkit::eventually(Duration::from_secs(10), "history readable", || async {
        let r = b.get("/v1/history?channel=news&limit=0").await;
        r.status == 200 && r.json()["offset"] == 5
    })
    .await;
    // A client that saw 10 is not told it recovered.
    let outcome = b.client(None).await.recover("news", 10, &epoch).await;
    assert_eq!(outcome["recovered"], false, "{outcome}");
    eprintln!("a client that saw 10 is told: {outcome}");
    // The node that delivered 10 sees the sequence behind it: its subscribers get a gap
    // notice, and the channel a new epoch. Publications from then on carry it.
    let mut renewed = None;
    for _ in 0..100 {
        let r = a.publish("news", json!("after")).await;
        if r.status == 200 && r.json()["epoch"].as_str() != Some(epoch.as_str()) {
            renewed = Some(r.json());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renewed = renewed.expect("a new epoch after the lost writes");
    let first = stays.next().await.unwrap();
    assert!(
        matches!(&first, herald_testkit::Incoming::Frame(v) if v.get("gap").is_some()),
        "a gap notice first: {first:?}"
    );
    // Past offset 10 again, a client that saw the lost 10 still does not recover over it.
    let mut offset = renewed["offset"].as_u64().unwrap();
    for _ in 0..20 {
        if offset > 11 {
            break;
        }
        offset = a.publish("news", json!("more")).await.json()["offset"]
            .as_u64()
            .unwrap();
    }
    let outcome = b.client(None).await.recover("news", 10, &epoch).await;
    assert_eq!(outcome["recovered"], false, "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains("epoch"), "{outcome}");
}

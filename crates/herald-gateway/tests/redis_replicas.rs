//! `broker.redis.wait_replicas`: a publication is acknowledged only once a replica has it, on
//! a real master and replica.

use std::time::Duration;

use herald_testkit::{eventually, redis_config, RedisServer, TestGateway};
use serde_json::json;

#[tokio::test]
async fn a_publication_is_acknowledged_only_once_the_replica_has_it() {
    let quick = ["--repl-diskless-sync-delay", "0"];
    let master = RedisServer::start_with(&quick).await;
    let port = master.port().to_string();
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &port, quick[0], quick[1]]).await;
    eventually(Duration::from_secs(10), "the replica in sync", || async {
        master
            .cli(&["INFO", "replication"])
            .contains("state=online")
    })
    .await;
    let mut config = redis_config(&master.url());
    config.broker.redis.wait_replicas = 1;
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    let r = gw.publish("news", json!(1)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        replica.cli(&["GET", "herald:seq:{news}"]),
        "1",
        "on the replica"
    );

    // A replica that does not confirm: the outcome is unknown (the master may keep it).
    replica.pause();
    let r = gw.publish("news", json!(2)).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], 108);
    replica.resume();
    eventually(Duration::from_secs(5), "acknowledged again", || async {
        gw.publish("news", json!(3)).await.status == 200
    })
    .await;
}

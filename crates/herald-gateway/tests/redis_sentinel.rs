//! Redis Sentinel: two gateways and the presence service following a master, its replica and
//! three sentinels (real processes) through a coordinated failover and through the master's
//! death, with a publisher running throughout; and the clear errors of a wrong master name,
//! dead sentinels and a master nobody can reach.

use std::time::{Duration, Instant};

use herald_gateway::config::{GatewayConfig, NamespaceConfig, RedisMode};
use herald_testkit::{
    eventually, http_request, publish_counted, redis_config, Acked, Received, RedisSentinels,
    ServiceProcess, TestGateway, WsClient, DOWN_AFTER,
};
use serde_json::json;

const COUNT: u64 = 500;

fn config(url: &str) -> GatewayConfig {
    let mut config = redis_config(url);
    config.broker.redis.mode = RedisMode::Sentinel;
    config.namespaces.insert(
        "room".into(),
        NamespaceConfig {
            presence: true,
            ..Default::default()
        },
    );
    config
}

async fn gateway(sentinels: &RedisSentinels) -> TestGateway {
    let gw = TestGateway::start_with(config(&sentinels.url())).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    gw
}

/// Every acknowledged publication received once and in order, but those the failover lost:
/// Redis replicates asynchronously, so what the old master acknowledged after the replica's
/// promotion is not on the new master. Subscribers are told of such a loss with a gap notice
/// (the sequence starts a new epoch): never a silent one. Nothing twice, nothing out of order.
fn once_in_order_or_told(received: &Received, acked: &[Acked]) {
    let numbers: Vec<u64> = received.pushes.iter().map(|p| p.1).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order, each once: {numbers:?}"
    );
    if received.gaps.is_empty() {
        received.assert_each_once_in_order(acked);
        return;
    }
    let missing = acked.iter().filter(|a| !numbers.contains(&a.n)).count();
    assert!(
        missing <= acked.len() / 10,
        "{missing} of {} missing",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinated_failover_and_a_dead_master_lose_nothing_silently() {
    let mut sentinels = RedisSentinels::start().await;
    let (a, b) = (gateway(&sentinels).await, gateway(&sentinels).await);
    let url = sentinels.url();
    let presence_service = ServiceProcess::presence(&[
        ("HERALD__REDIS__MODE", "sentinel"),
        ("HERALD__REDIS__URL", url.as_str()),
    ])
    .await;
    let member_url = format!("{}?user=alice", b.ws_url());
    let mut member = WsClient::connect(&member_url, None).await.expect("connect");
    member.subscribe_ok(&["room:1"]).await;
    let (mut on_a, mut on_b) = (a.client(None).await, b.client(None).await);
    on_a.subscribe_ok(&["news"]).await;
    on_b.subscribe_ok(&["news"]).await;

    // 1. A coordinated failover (SENTINEL FAILOVER) under a publisher.
    let first = sentinels.master_port();
    let publishing = publish_counted(a.api_addr, "news", COUNT, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sentinels.failover(), "OK");
    // On +switch-master the nodes leave the old master at once, while it still calls itself
    // master (the sentinels turn it into a replica only later).
    let old = sentinels
        .servers
        .iter()
        .find(|s| s.port() == first)
        .expect("the old master");
    eventually(
        Duration::from_secs(5),
        "the nodes left the old master",
        || async {
            let clients = old.cli(&["CLIENT", "LIST"]);
            !clients.contains("name=herald-") && old.cli(&["ROLE"]).starts_with("master")
        },
    )
    .await;
    let acked = publishing.await.unwrap();
    assert_ne!(sentinels.master_port(), first, "the replica was promoted");
    for c in [&mut on_a, &mut on_b] {
        let received = Received::until(c, &acked).await;
        eprintln!(
            "coordinated failover: {} acknowledged, {} received, {} gap notices",
            acked.len(),
            received.pushes.len(),
            received.gaps.len()
        );
        once_in_order_or_told(&received, &acked);
    }

    // 2. The master dies (SIGKILL) under a publisher: publishing resumes on the new master
    // within the failover time plus 2 s.
    let master = sentinels.master_port();
    let publishing = publish_counted(a.api_addr, "news", COUNT, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    sentinels.master().kill();
    let killed = Instant::now();
    let mut promoted = None;
    while promoted.is_none() && killed.elapsed() < Duration::from_secs(30) {
        if sentinels.master_port() != master {
            promoted = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let promoted = promoted.expect("the sentinels promoted the replica");
    let resumed = loop {
        if a.publish("news", json!(0)).await.status == 200 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < promoted + Duration::from_secs(2),
            "publishing did not resume"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!(
        "master killed: the sentinels promoted the replica after {promoted:?} (down-after {DOWN_AFTER:?}); \
         the first publication was accepted again after {resumed:?}"
    );
    assert!(
        resumed < promoted + Duration::from_secs(2),
        "resumed after {resumed:?}"
    );
    let acked = publishing.await.unwrap();
    let acked: Vec<Acked> = acked.into_iter().filter(|a| a.n != 0).collect();
    for c in [&mut on_a, &mut on_b] {
        let mut received = Received::until(c, &acked).await;
        received.pushes.retain(|p| p.1 != 0);
        once_in_order_or_told(&received, &acked);
    }

    // Presence kept its member, for the gateways and the presence service.
    eventually(Duration::from_secs(10), "alice still present", || async {
        let users = |body: serde_json::Value| body["members"][0]["user"] == "alice";
        users(a.get("/v1/channels/room:1/presence").await.json())
            && users(
                presence_service
                    .get("/v1/channels/room:1/presence")
                    .await
                    .json(),
            )
    })
    .await;
    for gw in [&a, &b] {
        assert_eq!(gw.get("/readyz").await.status, 200);
    }
}

#[tokio::test]
async fn a_wrong_master_dead_sentinels_or_an_unreachable_master_leave_a_node_not_ready() {
    let mut sentinels = RedisSentinels::start().await;
    let url = sentinels.url();
    // A master name the sentinels do not know: said in the log, not ready, 503s.
    let wrong = url.replace("/mymaster", "/nosuchmaster");
    let gw = ServiceProcess::gateway(&[
        ("HERALD__BROKER__KIND", "redis"),
        ("HERALD__BROKER__REDIS__MODE", "sentinel"),
        ("HERALD__BROKER__REDIS__URL", wrong.as_str()),
    ])
    .await;
    eventually(Duration::from_secs(5), "the error in the log", || async {
        let log = gw.log_text();
        log.contains("knows no master named") && log.contains("nosuchmaster")
    })
    .await;
    assert_eq!(gw.get("/readyz").await.status, 503);
    let r = http_request(
        gw.api(),
        "POST",
        "/v1/publish",
        &[],
        br#"{"channel":"news","data":1}"#,
    )
    .await
    .expect("publish");
    assert_eq!(r.status, 503, "{}", r.text());

    // A master the sentinels name but nobody can reach.
    let reached = gateway(&sentinels).await;
    for server in &mut sentinels.servers {
        server.kill();
    }
    eventually(
        Duration::from_secs(10),
        "not ready without a master",
        || async { reached.get("/readyz").await.status == 503 },
    )
    .await;
    assert_eq!(reached.publish("news", json!(1)).await.status, 503);

    // Sentinels that are all down.
    sentinels.kill_sentinels();
    let alone = TestGateway::start_with(config(&url)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alone.get("/readyz").await.status, 503);

    // Nobody crashed: each still answers.
    assert_eq!(gw.get("/healthz").await.status, 200);
    for gw in [&reached, &alone] {
        assert_eq!(gw.get("/healthz").await.status, 200);
    }
}

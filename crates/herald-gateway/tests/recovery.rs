//! Recovery on subscribe: a client that comes back with the last position it saw receives
//! what it missed, in order, before anything newer, each publication once; or is told why
//! not, with where the channel stands. On one node, across nodes, through Redis, in JSON and
//! MessagePack.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_protocol::WireFormat;
use herald_testkit::{redis_config, test_config, RedisServer, TestGateway, WsClient};
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
    config.namespaces.insert("big".into(), ns(1000));
    config
}

async fn publish(gw: &TestGateway, channel: &str, values: std::ops::RangeInclusive<u64>) {
    for i in values {
        let r = gw.publish(channel, json!(i)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// Where `channel` stands, read as a client does: `history` with limit 0.
async fn position(c: &mut WsClient, channel: &str) -> (u64, String) {
    let reply = c
        .request("history", json!({"channel": channel, "limit": 0}))
        .await;
    let ok = &reply["ok"];
    (
        ok["offset"].as_u64().unwrap(),
        ok["epoch"].as_str().unwrap().to_owned(),
    )
}

fn recover(channel: &str, offset: u64, epoch: &str) -> Value {
    json!({"channels": [channel], "recover": {channel: {"offset": offset, "epoch": epoch}}})
}

/// A client sees 1 to 3, leaves; 4 and 5 are published; it comes back through `back` (maybe
/// another node) and recovers them before 6.
async fn a_client_recovers_what_it_missed(
    first: &TestGateway,
    back: &TestGateway,
    format: WireFormat,
) {
    let mut a = first.client(Some(format)).await;
    a.subscribe_ok(&["chat:1"]).await;
    publish(first, "chat:1", 1..=3).await;
    for i in 1..=3 {
        assert_eq!(a.next_push().await["offset"], i);
    }
    let (offset, epoch) = position(&mut a, "chat:1").await;
    assert_eq!(offset, 3);
    a.close().await;
    publish(first, "chat:1", 4..=5).await;

    let mut b = back.client(Some(format)).await;
    let reply = b.request("subscribe", recover("chat:1", 3, &epoch)).await;
    let outcome = &reply["ok"]["recovery"][0];
    assert_eq!(outcome["recovered"], true, "{reply}");
    assert_eq!(
        (outcome["offset"].as_u64(), outcome["epoch"].as_str()),
        (Some(5), Some(epoch.as_str()))
    );
    assert_eq!(reply["ok"]["subscribed"], json!(["chat:1"]));
    publish(first, "chat:1", 6..=6).await;
    for i in 4..=6 {
        let push = b.next_push().await;
        assert_eq!(
            (push["offset"].as_u64(), push["data"].as_u64()),
            (Some(i), Some(i))
        );
    }
    let nothing_more = b.next_within(Duration::from_millis(200)).await;
    assert!(nothing_more.is_err(), "no duplicate: {nothing_more:?}");
}

#[tokio::test]
async fn recovery_on_one_node_in_json_and_messagepack() {
    let gw = TestGateway::start_with(with_namespaces(test_config())).await;
    a_client_recovers_what_it_missed(&gw, &gw, WireFormat::Json).await;
    let gw2 = TestGateway::start_with(with_namespaces(test_config())).await;
    a_client_recovers_what_it_missed(&gw2, &gw2, WireFormat::MsgPack).await;
    gw.stop().await;
    gw2.stop().await;
}

#[tokio::test]
async fn recovery_across_nodes_through_redis() {
    let redis = RedisServer::start().await;
    let a = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    let b = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    a.wait_ready(Duration::from_secs(5)).await;
    b.wait_ready(Duration::from_secs(5)).await;
    a_client_recovers_what_it_missed(&a, &b, WireFormat::Json).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn what_cannot_be_recovered_is_said_with_the_current_position() {
    let gw = TestGateway::start_with(with_namespaces(test_config())).await;
    publish(&gw, "chat:1", 1..=6).await;
    publish(&gw, "quiet:1", 1..=2).await;
    let mut c = gw.client(None).await;
    let (_, epoch) = position(&mut c, "chat:1").await;
    let outcome = |reply: &Value| {
        let o = reply["ok"]["recovery"][0].clone();
        assert_eq!(o["recovered"], false, "{reply}");
        o
    };
    let other = c.request("subscribe", recover("chat:1", 5, "zz9")).await;
    let o = outcome(&other);
    assert!(o["reason"].as_str().unwrap().contains("epoch"), "{o}");
    assert_eq!(
        (o["offset"].as_u64(), o["epoch"].as_str()),
        (Some(6), Some(epoch.as_str()))
    );
    let too_old = c.request("subscribe", recover("chat:1", 1, &epoch)).await;
    assert!(outcome(&too_old)["reason"]
        .as_str()
        .unwrap()
        .contains("no longer kept"));
    let off = c.request("subscribe", recover("quiet:1", 1, &epoch)).await;
    assert!(outcome(&off)["reason"]
        .as_str()
        .unwrap()
        .contains("no history"));
    let elsewhere = c
        .request(
            "subscribe",
            json!({"channels": ["chat:2"], "recover": {"chat:1": {"offset": 1, "epoch": epoch}}}),
        )
        .await;
    assert!(outcome(&elsewhere)["reason"]
        .as_str()
        .unwrap()
        .contains("not among"));
    // Not recovered, still subscribed: what comes next arrives.
    publish(&gw, "chat:1", 7..=7).await;
    assert_eq!(c.next_push().await["offset"], 7);
    gw.stop().await;
}

/// Publishes `count` numbers into `channel` from `tasks` concurrent publishers.
fn publishers(
    api: std::net::SocketAddr,
    channel: &'static str,
    tasks: u64,
    count: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for i in 0..count {
                    let body = json!({"channel": channel, "data": i}).to_string();
                    let r = herald_testkit::http_request(
                        api,
                        "POST",
                        "/v1/publish",
                        &[],
                        body.as_bytes(),
                    )
                    .await
                    .unwrap();
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn publications_made_while_recovering_arrive_exactly_once_in_order() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    // Each round recovers a channel of its own while publishers run: history read and live
    // frames overlap, and what both carry is delivered once.
    for round in 0..5u64 {
        let channel: &'static str = Box::leak(format!("big:{round}").into_boxed_str());
        publish(&gw, channel, 1..=10).await;
        let mut c = gw.client(None).await;
        let (_, epoch) = position(&mut c, channel).await;
        let running = publishers(gw.api_addr, channel, 4, 50);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let reply = c.request("subscribe", recover(channel, 2, &epoch)).await;
        assert_eq!(reply["ok"]["recovery"][0]["recovered"], true, "{reply}");
        for p in running {
            p.await.unwrap();
        }
        let mut seen = Vec::new();
        while seen.last() != Some(&210) {
            seen.push(c.next_push().await["offset"].as_u64().unwrap());
        }
        let expected: Vec<u64> = (3..=210).collect();
        assert_eq!(seen, expected, "every publication after 2, once, in order");
        c.close().await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_recovery_storm_shares_its_history_reads() {
    const CLIENTS: usize = 1000;
    let redis = RedisServer::start().await;
    let mut config = redis_config(&redis.url());
    config.limits.max_connections = CLIENTS + 10;
    config.broker.redis.timeout = Duration::from_secs(10);
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(Duration::from_secs(5)).await;
    publish(&gw, "storm", 1..=1).await;
    // A client that stays: the channel is subscribed on the node throughout, as when the
    // others come back from a drain or a blip.
    let mut first = gw.client(None).await;
    first.subscribe_ok(&["storm"]).await;
    let (_, epoch) = position(&mut first, "storm").await;
    // They were away while 100 were published ([channels] keeps 100).
    publish(&gw, "storm", 2..=101).await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(gw.client(None).await);
    }
    let fcalls = || -> u64 {
        let stats = redis.cli(&["INFO", "commandstats"]);
        let line = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_fcall:"))
            .unwrap_or_default();
        line.split(['=', ','])
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = fcalls();
    let started = std::time::Instant::now();
    let recovering = clients.into_iter().map(|mut c| {
        let epoch = epoch.clone();
        tokio::spawn(async move {
            let reply = c.request("subscribe", recover("storm", 1, &epoch)).await;
            assert_eq!(reply["ok"]["recovery"][0]["recovered"], true, "{reply}");
            for offset in 2..=101 {
                assert_eq!(c.next_push().await["offset"], offset);
            }
            c
        })
    });
    let recovered = futures_util::future::join_all(recovering).await;
    let took = started.elapsed();
    assert!(recovered.iter().all(Result::is_ok));
    let reads = gw.metric("herald_history_reads_total").await;
    let served = fcalls() - before;
    eprintln!(
        "{CLIENTS} clients recovered 100 publications each in {took:?}: {reads} history reads, \
         {served} function calls served by Redis"
    );
    assert!(
        (1.0..50.0).contains(&reads),
        "{reads} reads for one channel"
    );
    assert!(
        served < 50,
        "Redis served {served} function calls for the storm"
    );
    gw.stop().await;
}

//! A real browser's `EventSource` (headless Chromium) through nginx configured as docker-compose
//! ships it and docs/sse.md says: publications arrive, the gateway the stream is on drains,
//! and the browser's own reconnection resumes on the other gateway with every publication
//! exactly once, in order.

use std::{net::SocketAddr, time::Duration};

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_testkit::{
    compose_nginx_conf, eventually, http_request, redis_config, Chromium, Nginx, PageServer,
    RedisServer, TestGateway,
};
use serde_json::{json, Value};

const COUNT: u64 = 150;

fn config(redis: &RedisServer) -> GatewayConfig {
    let mut c = redis_config(&redis.url());
    let feed = NamespaceConfig {
        history_size: 1000,
        history_ttl: Duration::from_secs(300),
        ..NamespaceConfig::default()
    };
    c.namespaces.insert("feed".into(), feed);
    c.shutdown.drain_window = Duration::from_millis(500);
    c.sse.retry = Duration::from_millis(200);
    c
}

async fn publish(api: SocketAddr, n: u64) -> bool {
    let body = json!({"channel": "feed:1", "data": n}).to_string();
    let headers = [("content-type", "application/json")];
    let r = http_request(api, "POST", "/v1/publish", &headers, body.as_bytes()).await;
    r.is_ok_and(|r| r.status == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_resumes_on_another_gateway_when_its_gateway_drains() {
    let redis = RedisServer::start().await;
    let a = TestGateway::start_with(config(&redis)).await;
    let b = TestGateway::start_with(config(&redis)).await;
    a.wait_ready(Duration::from_secs(10)).await;
    b.wait_ready(Duration::from_secs(10)).await;
    let nginx = Nginx::start(&[a.ws_addr, b.ws_addr], &[a.api_addr, b.api_addr]).await;
    let page = PageServer::start(include_str!("browser/sse.html").to_owned()).await;
    let stream = format!("http://{}/v1/sse?channel=feed:1", nginx.addr);
    let url = format!(
        "http://{}/?stream={}",
        page.addr,
        percent_encoding::utf8_percent_encode(&stream, percent_encoding::NON_ALPHANUMERIC)
    );
    let _browser = Chromium::open(&url);
    let report = |key: &'static str| page.report().map(|r| r[key].clone()).unwrap_or(Value::Null);
    eventually(
        Duration::from_secs(30),
        "the browser's stream open",
        || async { report("opens").as_u64() >= Some(1) },
    )
    .await;
    let on_a = a.metric("herald_connections").await == 1.0;
    let (home, other) = if on_a { (a, b) } else { (b, a) };
    assert_eq!(other.metric("herald_connections").await, 0.0);

    // A publisher on the other gateway throughout; the stream's gateway drains meanwhile.
    let api = other.api_addr;
    let publisher = tokio::spawn(async move {
        for n in 1..=COUNT {
            assert!(publish(api, n).await, "publication {n} accepted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    eventually(
        Duration::from_secs(10),
        "the first publications seen",
        || async { report("data").as_array().is_some_and(|d| d.len() >= 30) },
    )
    .await;
    home.stop().await;
    publisher.await.expect("the publisher");

    eventually(
        Duration::from_secs(30),
        "every publication in the browser",
        || async {
            report("data")
                .as_array()
                .is_some_and(|d| d.len() >= COUNT as usize)
        },
    )
    .await;
    let data: Vec<u64> = report("data")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(data, (1..=COUNT).collect::<Vec<_>>(), "each once, in order");
    let closes = report("closes");
    assert_eq!(closes[0]["code"], 4000, "the drain said so: {closes}");
    assert!(
        report("opens").as_u64() >= Some(2),
        "the browser reconnected"
    );
    assert_eq!(report("gaps"), json!([]));
    assert_eq!(
        other.metric("herald_connections").await,
        1.0,
        "now on the other gateway"
    );
    drop(nginx);
}

#[test]
fn the_docs_give_the_nginx_settings_that_compose_uses() {
    let conf = compose_nginx_conf();
    let start = conf
        .find("location /v1/sse {")
        .expect("compose's SSE location");
    let block: Vec<&str> = conf[start..]
        .lines()
        .map(str::trim)
        .take_while(|l| *l != "}")
        .collect();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sse.md"))
        .expect("docs/sse.md");
    let docs: Vec<&str> = docs.lines().map(str::trim).collect();
    let at = docs
        .iter()
        .position(|l| *l == block[0])
        .expect("docs/sse.md shows the location block");
    assert_eq!(&docs[at..at + block.len()], &block[..]);
}

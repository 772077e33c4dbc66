//! herald-client (`clients/js/src/herald.js`) in a real browser (headless Chromium), loaded as a
//! page loads it, against a gateway relaying through Redis: it connects, receives, and comes
//! through a restart of the gateway with every publication once, in order.

use std::{net::SocketAddr, time::Duration};

use herald_gateway::config::GatewayConfig;
use herald_testkit::{
    eventually, free_port, redis_config, Chromium, PageServer, RedisServer, TestGateway,
};
use serde_json::{json, Value};

const CLIENT: &str = include_str!("../../../clients/js/src/herald.js");
const MSGPACK: &str = include_str!("../../../clients/js/src/msgpack.js");

fn config(redis: &RedisServer, ws: u16, api: u16) -> GatewayConfig {
    let mut c = redis_config(&redis.url());
    c.listen.websocket = SocketAddr::from(([127, 0, 0, 1], ws));
    c.listen.api = SocketAddr::from(([127, 0, 0, 1], api));
    c.shutdown.drain_window = Duration::from_millis(200);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_receives_in_a_browser_and_comes_through_a_gateway_restart() {
    let redis = RedisServer::start().await;
    let (ws, api) = (free_port(), free_port());
    let gw = TestGateway::start_with(config(&redis, ws, api)).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    let page = PageServer::with_files(
        include_str!("browser/client.html").to_owned(),
        vec![
            ("/herald.js", "text/javascript", CLIENT.to_owned()),
            ("/msgpack.js", "text/javascript", MSGPACK.to_owned()),
        ],
    )
    .await;
    let _browser = Chromium::open(&format!("http://{}/?ws=ws://127.0.0.1:{ws}/ws", page.addr));
    let report = |key: &'static str| page.report().map(|r| r[key].clone()).unwrap_or(Value::Null);
    eventually(
        Duration::from_secs(30),
        "the page's subscription",
        || async { report("subscription") == "subscribed" },
    )
    .await;
    for n in 1..=10 {
        assert_eq!(gw.publish("feed", json!(n)).await.status, 200);
    }
    eventually(Duration::from_secs(10), "the first ten", || async {
        report("data").as_array().is_some_and(|d| d.len() == 10)
    })
    .await;

    // The gateway restarts; meanwhile a publication goes through another node.
    gw.stop().await;
    let other = TestGateway::start_with(redis_config(&redis.url())).await;
    other.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(other.publish("feed", json!(11)).await.status, 200);
    let gw = TestGateway::start_with(config(&redis, ws, api)).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    eventually(Duration::from_secs(20), "reconnected", || async {
        report("state") == "connected" && report("subscription") == "subscribed"
    })
    .await;
    for n in 12..=20 {
        assert_eq!(gw.publish("feed", json!(n)).await.status, 200);
    }
    eventually(Duration::from_secs(10), "all twenty", || async {
        report("data").as_array().is_some_and(|d| d.len() >= 20)
    })
    .await;
    let data: Vec<u64> = report("data")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(data, (1..=20).collect::<Vec<_>>(), "each once, in order");
    let states = report("states");
    assert!(
        states
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "disconnected:4000"),
        "closed by the drain, then back: {states}"
    );
    assert_eq!(report("recovered"), 1, "the eleventh came from history");
    assert_eq!(report("gaps"), 0);
}

/// docker-compose's gateways: `demo:` channels take client publications and keep presence.
fn demo_config(redis: &RedisServer) -> GatewayConfig {
    let mut c = redis_config(&redis.url());
    let demo = herald_gateway::config::NamespaceConfig {
        publish: true,
        presence: true,
        ..Default::default()
    };
    c.namespaces.insert("demo".into(), demo);
    c.shutdown.drain_window = Duration::from_millis(200);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_its_connection_and_what_it_recovered() {
    assert_eq!(
        include_str!("../../../deploy/demo/herald.js"),
        CLIENT,
        "deploy/demo/herald.js is a copy of clients/js/src/herald.js"
    );
    assert_eq!(
        include_str!("../../../deploy/demo/msgpack.js"),
        MSGPACK,
        "deploy/demo/msgpack.js is a copy of clients/js/src/msgpack.js"
    );
    let redis = RedisServer::start().await;
    let a = TestGateway::start_with(demo_config(&redis)).await;
    let b = TestGateway::start_with(demo_config(&redis)).await;
    a.wait_ready(Duration::from_secs(10)).await;
    b.wait_ready(Duration::from_secs(10)).await;
    let probe = [("probe.html", include_str!("browser/demo-probe.html"))];
    let nginx =
        herald_testkit::Nginx::serving(&[a.ws_addr, b.ws_addr], &[a.api_addr, b.api_addr], &probe)
            .await;
    let reports = PageServer::start(String::new()).await;
    let _browser = Chromium::open(&format!(
        "http://{}/probe.html?report=http://{}/report",
        nginx.addr, reports.addr
    ));
    let shown = |key: &'static str| {
        reports
            .report()
            .map(|r| r[key].clone())
            .unwrap_or(Value::Null)
    };
    let logged = |text: &'static str| {
        let log = reports
            .report()
            .map(|r| r["log"].clone())
            .unwrap_or(Value::Null);
        log.as_array().is_some_and(|l| {
            l.iter()
                .any(|line| line.as_str().is_some_and(|s| s.contains(text)))
        })
    };
    eventually(
        Duration::from_secs(30),
        "the demo connected, its user a member",
        || async {
            shown("state") == "connected"
                && shown("members")
                    .as_str()
                    .is_some_and(|m| m.starts_with("guest-"))
        },
    )
    .await;
    let say = |text: &str| json!({"channel": "demo:chat", "data": {"user": "curl", "text": text}});
    assert_eq!(
        a.post("/v1/publish", &[], say("one").to_string().as_bytes())
            .await
            .status,
        200
    );
    eventually(Duration::from_secs(10), "the publication shown", || async {
        logged("curl: one")
    })
    .await;

    let (home, other) = if a.metric("herald_connections").await == 1.0 {
        (a, b)
    } else {
        (b, a)
    };
    home.stop().await;
    eventually(
        Duration::from_secs(20),
        "back, through the other gateway",
        || async { shown("state") == "connected" && logged("disconnected (4000); reconnecting") },
    )
    .await;
    assert_eq!(
        other
            .post("/v1/publish", &[], say("two").to_string().as_bytes())
            .await
            .status,
        200
    );
    eventually(
        Duration::from_secs(10),
        "the next publication shown",
        || async { logged("curl: two") },
    )
    .await;
    assert_eq!(
        shown("recovered"),
        "1",
        "its subscription came back from its position"
    );
    assert_eq!(shown("missed"), "0");
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_demo_on_the_embedded_default() {
    let gw = TestGateway::start().await;
    let get = |path: &'static str| herald_testkit::http_request(gw.ws_addr, "GET", path, &[], b"");
    let r = get("/demo").await.expect("GET /demo");
    assert_eq!((r.status, r.header("location")), (301, Some("/demo/")));
    let r = get("/demo/").await.expect("GET /demo/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Herald demo chat"));
    let r = get("/demo/herald.js").await.expect("GET /demo/herald.js");
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.text(), CLIENT);

    // The page itself, in a browser: connected, its user a member, a publication shown.
    let browser = Chromium::debuggable(&format!("http://{}/demo/", gw.ws_addr));
    let text = |id: &'static str| {
        let browser = &browser;
        async move {
            let expression = format!("document.getElementById('{id}')?.innerText ?? ''");
            browser.evaluate(&expression).await.unwrap_or(Value::Null)
        }
    };
    eventually(Duration::from_secs(30), "the demo connected", || async {
        text("state").await == "connected"
            && text("members")
                .await
                .as_str()
                .is_some_and(|m| m.starts_with("guest-"))
    })
    .await;
    let say = json!({"channel": "demo:chat", "data": {"user": "curl", "text": "hello"}});
    assert_eq!(
        gw.post("/v1/publish", &[], say.to_string().as_bytes())
            .await
            .status,
        200
    );
    eventually(Duration::from_secs(10), "the publication shown", || async {
        text("log")
            .await
            .as_str()
            .is_some_and(|l| l.contains("curl: hello"))
    })
    .await;

    // Through Redis the demo is off unless asked for.
    let redis = RedisServer::start().await;
    let relayed = TestGateway::start_with(redis_config(&redis.url())).await;
    let r = herald_testkit::http_request(relayed.ws_addr, "GET", "/demo/", &[], b"").await;
    assert_eq!(r.expect("GET /demo/").status, 404);
}

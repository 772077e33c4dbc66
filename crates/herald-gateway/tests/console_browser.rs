//! The web console at `/console/` on the API listener, in headless Chromium: it shows a
//! connection a test client opens (its node, its channel, a presence member), its publish
//! reaches a subscriber, it watches a channel, and with `api.keys` it asks for one.

use std::time::Duration;

use herald_gateway::config::GatewayConfig;
use herald_testkit::{eventually, http_request, test_config, Chromium, TestGateway, WsClient};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The text of the page's element `id`.
async fn text(browser: &Chromium, id: &str) -> String {
    let expression = format!("document.getElementById('{id}')?.innerText ?? ''");
    match browser.evaluate(&expression).await {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Runs `script` in the page.
async fn run(browser: &Chromium, script: &str) {
    let expression = format!("(() => {{ {script}; return true; }})()");
    eventually(WAIT, "the script ran", || async {
        browser.evaluate(&expression).await == Some(Value::Bool(true))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_connections_and_channels_publishes_and_watches() {
    let gw = TestGateway::start().await;
    let get = |path: &'static str| http_request(gw.api_addr, "GET", path, &[], b"");
    let r = get("/console").await.expect("GET /console");
    assert_eq!((r.status, r.header("location")), (301, Some("/console/")));
    let r = get("/console/").await.expect("GET /console/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Herald console"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let settings = get("/console/settings.json")
        .await
        .expect("settings")
        .json();
    assert_eq!(
        settings,
        json!({"websocket_port": gw.ws_addr.port(), "tls": false})
    );
    let r = http_request(gw.api_addr, "POST", "/console/", &[], b"").await;
    assert_eq!(r.expect("POST").status, 405);

    let browser = Chromium::debuggable(&format!("http://{}/console/", gw.api_addr));
    eventually(WAIT, "the node listed, ready", || async {
        text(&browser, "nodes").await.contains("ready")
    })
    .await;

    // A connection the test opens shows: counted, its channel listed, its user present.
    let url = format!("{}?user=alice", gw.ws_url());
    let mut alice = WsClient::connect(&url, None).await.expect("connect");
    alice.subscribe_ok(&["demo:room"]).await;
    eventually(WAIT, "alice's connection and channel shown", || async {
        text(&browser, "total-connections").await == "1"
            && text(&browser, "channels").await.contains("demo:room\t1")
    })
    .await;
    run(
        &browser,
        "document.getElementById('presence-channel').value = 'demo:room'; \
         document.getElementById('presence-show').click()",
    )
    .await;
    eventually(WAIT, "alice in the presence list", || async {
        text(&browser, "presence-members").await.trim() == "alice"
    })
    .await;

    // A publish from the console reaches the subscriber.
    run(
        &browser,
        "document.getElementById('pub-channel').value = 'demo:room'; \
         document.getElementById('pub-event').value = 'note'; \
         document.getElementById('pub-data').value = '{\"from\": \"the console\"}'; \
         document.getElementById('pub-send').click()",
    )
    .await;
    // Past alice's own presence join (demo: channels are presence channels).
    let push = loop {
        let frame = alice.next_frame().await;
        if frame.get("push").is_some() {
            break frame["push"].clone();
        }
    };
    assert_eq!(push["data"], json!({"from": "the console"}));
    assert_eq!(push["event"], "note");
    eventually(WAIT, "the publish's result shown", || async {
        text(&browser, "pub-result")
            .await
            .starts_with("published: offset")
    })
    .await;

    // Watching a channel shows what is published to it.
    run(
        &browser,
        "document.getElementById('watch-channel').value = 'news'; \
         document.getElementById('watch-start').click()",
    )
    .await;
    eventually(WAIT, "watching news", || async {
        text(&browser, "watch-state").await == "watching news"
    })
    .await;
    assert_eq!(gw.publish("news", json!({"n": 7})).await.status, 200);
    eventually(WAIT, "the publication in the watch log", || async {
        text(&browser, "watch-log").await.contains("{\"n\":7}")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_keys_the_console_asks_for_one_and_without_the_setting_it_is_gone() {
    let mut config: GatewayConfig = test_config();
    config.api.keys = vec!["console-secret".into()];
    let gw = TestGateway::start_with(config).await;
    let browser = Chromium::debuggable(&format!("http://{}/console/", gw.api_addr));
    eventually(WAIT, "the key asked for", || async {
        browser
            .evaluate("document.getElementById('key-needed')?.hidden === false")
            .await
            == Some(Value::Bool(true))
            && text(&browser, "nodes").await.lines().count() <= 1
    })
    .await;
    run(
        &browser,
        "document.getElementById('key').value = 'console-secret'; \
         document.getElementById('key-form').requestSubmit()",
    )
    .await;
    eventually(WAIT, "the node listed with the key", || async {
        text(&browser, "nodes").await.contains("ready")
    })
    .await;

    let mut config = test_config();
    config.console.enabled = false;
    let off = TestGateway::start_with(config).await;
    let r = http_request(off.api_addr, "GET", "/console/", &[], b"").await;
    assert_eq!(r.expect("GET /console/").status, 404);
}

//! The real pusher-js client and the official Pusher server SDK (npm `pusher`), in Node,
//! against two gateways through a real redis-server: the client on node B, the server SDK
//! publishing through node A, and a native Herald client on the same channel.
//! `tests/pusher-sdk/sdk.mjs` runs the steps; `scripts/test` installs its packages (`npm ci`).

use std::{path::Path, process::Command};

use herald_gateway::config::{GatewayConfig, PusherApp};
use herald_testkit::{redis_config, RedisServer, TestGateway, WAIT};
use serde_json::json;

fn with_app(mut config: GatewayConfig) -> GatewayConfig {
    config.pusher.apps = vec![PusherApp::new("1", "sdk-key", "sdk-secret")];
    config
}

#[tokio::test]
async fn pusher_js_and_the_pusher_server_sdk_work_unchanged_across_nodes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pusher-sdk");
    assert!(
        dir.join("node_modules/pusher-js").exists() && dir.join("node_modules/pusher").exists(),
        "the SDKs are not installed: run `npm ci --prefix {}` (scripts/test does)",
        dir.display()
    );
    let redis = RedisServer::start().await;
    let a = TestGateway::start_with(with_app(redis_config(&redis.url()))).await;
    let b = TestGateway::start_with(with_app(redis_config(&redis.url()))).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }
    let mut native = b.client(None).await;
    native.subscribe_ok(&["news"]).await;

    let mut cmd = Command::new("node");
    cmd.arg("sdk.mjs")
        .current_dir(&dir)
        .env("HERALD_WS_PORT", b.ws_addr.port().to_string())
        .env("HERALD_API_PORT", a.api_addr.port().to_string())
        .env("PUSHER_APP_ID", "1")
        .env("PUSHER_KEY", "sdk-key")
        .env("PUSHER_SECRET", "sdk-secret");
    // On the blocking pool: the gateways keep running on the test's runtime meanwhile.
    let node = tokio::task::spawn_blocking(move || cmd.output());
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), node)
        .await
        .expect("the SDK steps finish within a minute")
        .expect("join")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all Pusher SDK steps passed"), "{stdout}");

    // The native client on the same channel got what the server SDK published, as JSON text.
    assert_eq!(
        native.next_push().await,
        json!({"channel": "news", "data": "{\"hello\":\"world\"}", "offset": 1, "event": "greeting"})
    );
    assert_eq!(native.next_push().await["event"], "shipped");
    assert_eq!(native.next_push().await["event"], "batched");
    assert_eq!(
        native.next_push().await,
        json!({"channel": "news", "data": "plain text", "offset": 4, "event": "many"})
    );
    assert_eq!(
        b.metric("herald_publications_total{path=\"client\"}").await
            + a.metric("herald_publications_total{path=\"client\"}").await,
        1.0,
        "the one client event"
    );
}

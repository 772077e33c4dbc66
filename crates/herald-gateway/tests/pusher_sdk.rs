//! The real pusher-js client and the official Pusher server SDK (npm `pusher`), in Node,
//! against two gateways through a real redis-server: the client on node B, the server SDK
//! publishing through node A, and a native Herald client on the same channel. The nodes'
//! webhooks go to the script, which checks them with the server SDK.
//! `tests/pusher-sdk/sdk.mjs` runs the steps; `scripts/test` installs its packages (`npm ci`).
//! `tests/pusher-sdk/blip.mjs` keeps a pusher-js client connected while Redis restarts.

use std::{path::Path, process::Command};

use herald_gateway::config::{GatewayConfig, PusherApp, WebhookConfig};
use herald_testkit::{redis_config, RedisServer, TestGateway, WAIT};
use serde_json::json;

/// The app, its webhooks going to `hooks` (retried until the script listens there).
fn with_app(mut config: GatewayConfig, hooks: u16) -> GatewayConfig {
    let webhook = WebhookConfig {
        url: format!("http://127.0.0.1:{hooks}/pusher/webhooks"),
        event_types: [
            "channel_occupied",
            "channel_vacated",
            "member_added",
            "member_removed",
            "client_event",
        ]
        .map(String::from)
        .to_vec(),
        channels: Vec::new(),
    };
    config.pusher.apps = vec![PusherApp {
        webhooks: vec![webhook],
        client_events: true,
        ..PusherApp::new("1", "sdk-key", "sdk-secret")
    }];
    config.pusher.webhook_retry = std::time::Duration::from_millis(100);
    config.pusher.webhook_attempts = 100;
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
    let hooks = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let a = TestGateway::start_with(with_app(redis_config(&redis.url()), hooks)).await;
    let b = TestGateway::start_with(with_app(redis_config(&redis.url()), hooks)).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }
    let mut native = b.client(None).await;
    native.subscribe_ok(&["news"]).await;
    let mut eavesdropper = b.client(None).await;
    eavesdropper
        .subscribe_ok(&["private-encrypted-vault"])
        .await;

    let mut cmd = Command::new("node");
    cmd.arg("sdk.mjs")
        .current_dir(&dir)
        .env("HERALD_WS_PORT", b.ws_addr.port().to_string())
        .env("HERALD_API_PORT", a.api_addr.port().to_string())
        .env("PUSHER_APP_ID", "1")
        .env("PUSHER_KEY", "sdk-key")
        .env("PUSHER_SECRET", "sdk-secret")
        .env(
            "PUSHER_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("WEBHOOK_PORT", hooks.to_string());
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
    // The encrypted channel's publication went through Herald as ciphertext only.
    let sealed = eavesdropper.next_push().await;
    let sealed: serde_json::Value =
        serde_json::from_str(sealed["data"].as_str().expect("a string")).expect("JSON");
    assert!(
        sealed["ciphertext"].is_string() && sealed["nonce"].is_string(),
        "{sealed}"
    );
    let fields: Vec<&String> = sealed.as_object().expect("an object").keys().collect();
    assert_eq!(fields, ["ciphertext", "nonce"], "nothing in the clear");
    assert_eq!(
        b.metric("herald_publications_total{path=\"client\"}").await
            + a.metric("herald_publications_total{path=\"client\"}").await,
        1.0,
        "the one client event"
    );
}

#[tokio::test]
async fn pusher_js_receives_every_event_once_across_a_redis_restart() {
    use std::io::{BufRead, Write};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pusher-sdk");
    assert!(
        dir.join("node_modules/pusher-js").exists(),
        "pusher-js is not installed: run `npm ci --prefix {}` (scripts/test does)",
        dir.display()
    );
    // With persistence: what Redis acknowledged survives the restart, history included.
    let mut redis =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let app = |mut config: GatewayConfig| {
        config.pusher.apps = vec![PusherApp::new("1", "sdk-key", "sdk-secret")];
        config
    };
    let a = TestGateway::start_with(app(redis_config(&redis.url()))).await;
    let b = TestGateway::start_with(app(redis_config(&redis.url()))).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }
    let mut node = Command::new("node")
        .arg("blip.mjs")
        .current_dir(&dir)
        .env("HERALD_WS_PORT", b.ws_addr.port().to_string())
        .env("PUSHER_KEY", "sdk-key")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    let stdout = node.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(next_line(&mut lines).await, "subscribed");
    let publishing = herald_testkit::publish_counted(
        a.api_addr,
        "ticks",
        300,
        std::time::Duration::from_millis(3),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    redis.restart().await;
    let acked = publishing.await.unwrap();
    let mut stdin = node.stdin.take().expect("stdin");
    writeln!(stdin, "{}", acked.last().unwrap().n).expect("write to node");
    let line = next_line(&mut lines).await;
    let received: Vec<u64> = serde_json::from_str(
        line.strip_prefix("received ")
            .unwrap_or_else(|| panic!("{line}")),
    )
    .expect("a JSON array");
    let _ = node.wait();
    let mut unique = received.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), received.len(), "an event received twice");
    let wanted: Vec<u64> = acked.iter().map(|p| p.n).collect();
    let ours: Vec<u64> = received
        .iter()
        .copied()
        .filter(|n| wanted.contains(n))
        .collect();
    assert_eq!(ours, wanted, "every acknowledged event, once, in order");
    assert!(b.metric("herald_broker_reconnects_total").await >= 1.0);
}

/// The next line the script printed, within 70 s.
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(70), lines.recv());
    wait.await
        .expect("a line from node")
        .expect("node's output")
}

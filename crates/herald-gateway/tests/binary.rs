//! The `herald-gateway` binary as a newcomer runs it.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use herald_testkit::{eventually, http_request, WsClient, WAIT};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_herald-gateway");

fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD__")) {
        cmd.env_remove(k);
    }
    cmd
}

#[test]
fn check_config_accepts_good_and_refuses_bad_configuration() {
    let ok = gateway().arg("--check-config").output().unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));

    let bad = gateway()
        .arg("--check-config")
        .env("HERALD__LISTEN__API", "nowhere")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("api"), "{stderr}");

    // A level the filter would take for a target (and then log nothing) stops startup.
    let quiet = gateway()
        .arg("--check-config")
        .env("HERALD__LOG__LEVEL", "verbose")
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        stderr.contains("log.level") && stderr.contains("HERALD__LOG__LEVEL"),
        "{stderr}"
    );

    let missing = gateway()
        .args(["--check-config", "--config", "/nonexistent/herald.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// `cargo run --release -p herald-gateway` with no configuration: WebSocket on 8080 at `/ws`,
/// API on 9090; a subscriber receives what curl publishes; SIGTERM drains and exits.
#[tokio::test]
async fn runs_on_the_default_ports_with_no_configuration() {
    let mut child = gateway()
        .env("HERALD__SHUTDOWN__DRAIN_WINDOW", "200ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = "127.0.0.1:9090".parse().unwrap();
    eventually(WAIT, "the API answers /readyz", || async {
        http_request(api, "GET", "/readyz", &[], b"")
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    let mut client = WsClient::connect("ws://127.0.0.1:8080/ws", None)
        .await
        .unwrap();
    client.subscribe_ok(&["news"]).await;
    let published = http_request(
        api,
        "POST",
        "/v1/publish",
        &[],
        br#"{"channel":"news","data":{"x":1}}"#,
    )
    .await
    .unwrap();
    assert_eq!(published.status, 200);
    assert_eq!(
        client.next_push().await,
        json!({"channel": "news", "data": {"x": 1}, "offset": 1})
    );

    // `--probe`, the health check of images without a shell: the same configuration, so the
    // same API port (asked on loopback, since it listens on 0.0.0.0).
    let probe = |path: &str| gateway().args(["--probe", path]).output().unwrap();
    assert_eq!(probe("/readyz").status.code(), Some(0));
    let missing = probe("/nowhere");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    let elsewhere = gateway()
        .args(["--probe", "/readyz"])
        .env("HERALD__LISTEN__API", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(1), "nothing listens there");
    let bad = gateway()
        .args(["--probe", "/readyz"])
        .env("HERALD__LISTEN__API", "nowhere")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad configuration");

    let started = Instant::now();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(client.expect_close().await, 4000);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(25), "no exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

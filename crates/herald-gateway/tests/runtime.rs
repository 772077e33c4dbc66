//! The runtime the real binary picks: tokio's current-thread runtime when the process may use
//! one CPU, the multi-threaded one otherwise; on one CPU it serves as ever.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use herald_testkit::{eventually, free_port, http_request, WsClient, WAIT};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_herald-gateway");

/// The gateway on the CPUs in `cpus` (a `taskset` list); its `starting` log line, and it.
async fn start_on(cpus: &str) -> (String, Node) {
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ws = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = Command::new("taskset");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD__")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .args(["-c", cpus, BIN])
        .env("RUST_LOG", "info")
        .env("HERALD__LOG__FORMAT", "json")
        .env("HERALD__LISTEN__API", api.to_string())
        .env("HERALD__LISTEN__WEBSOCKET", ws.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("taskset runs the gateway");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"starting\"") {
                let _ = tx.send(line);
            }
        }
    });
    let node = Node { child, api, ws };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a starting line");
    eventually(WAIT, "the node is ready", || async {
        http_request(api, "GET", "/readyz", &[], b"")
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    (line, node)
}

struct Node {
    child: Child,
    api: SocketAddr,
    ws: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn one_cpu_runs_the_current_thread_runtime_and_serves() {
    let (line, node) = start_on("0").await;
    assert!(line.contains("\"runtime\":\"current-thread\""), "{line}");
    assert!(line.contains("\"cpus\":1"), "{line}");
    let mut client = WsClient::connect(&format!("ws://{}/ws", node.ws), None)
        .await
        .unwrap();
    client.subscribe_ok(&["news"]).await;
    let body = json!({"channel": "news", "data": "on one CPU"}).to_string();
    let r = http_request(node.api, "POST", "/v1/publish", &[], body.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(client.next_push().await["data"], json!("on one CPU"));

    let (line, _node) = start_on("0,1").await;
    assert!(line.contains("\"runtime\":\"multi-thread\""), "{line}");
    assert!(line.contains("\"cpus\":2"), "{line}");
}

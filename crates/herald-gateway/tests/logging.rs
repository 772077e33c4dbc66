//! Logging never blocks or breaks the node: the real binary with its stderr on a pipe whose
//! reader is gone, or never reads.

use std::{
    net::SocketAddr,
    process::{Child, ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

use herald_testkit::{eventually, free_port, http_request, RawClient, WsClient, WAIT};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_herald-gateway");

struct Node {
    child: Child,
    api: SocketAddr,
    ws: SocketAddr,
}

/// Starts the gateway logging at `level` with its stderr on a pipe; returns the pipe's read end.
async fn start(level: &str) -> (Node, ChildStderr) {
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ws = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD__")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .env("RUST_LOG", level)
        .env("HERALD__LISTEN__API", api.to_string())
        .env("HERALD__LISTEN__WEBSOCKET", ws.to_string())
        .env("HERALD__SHUTDOWN__DRAIN_WINDOW", "200ms")
        .env("HERALD__SHUTDOWN__GRACE_PERIOD", "3s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    eventually(WAIT, "the node is ready", || async {
        http_request(api, "GET", "/readyz", &[], b"")
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    (Node { child, api, ws }, stderr)
}

/// A test that fails midway leaves no node running.
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    async fn dropped(&self, reason: &str) -> f64 {
        let page = http_request(self.api, "GET", "/metrics", &[], b"")
            .await
            .unwrap();
        page.metric(&format!(
            "herald_log_lines_dropped_total{{reason=\"{reason}\"}}"
        ))
        .expect("the metric")
    }

    /// A subscriber gets what the API publishes, many times over (each step logs).
    async fn serves(&self, rounds: usize) {
        let mut client = WsClient::connect(&format!("ws://{}/ws", self.ws), None)
            .await
            .unwrap();
        client.subscribe_ok(&["news"]).await;
        for i in 0..rounds {
            let body = json!({"channel": "news", "data": i}).to_string();
            let r = http_request(self.api, "POST", "/v1/publish", &[], body.as_bytes())
                .await
                .unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(client.next_push().await["data"], json!(i));
        }
    }

    /// SIGTERM, then a clean exit within the grace period.
    async fn terminates(&mut self) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                panic!("no exit within 5 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{status}");
    }
}

/// `herald-gateway 2>&1 | head -2`: the reader reads a little, then exits.
#[tokio::test]
async fn sigterm_drains_after_the_log_reader_is_gone() {
    let (mut node, stderr) = start("debug").await;
    drop(stderr);
    node.serves(20).await;
    // The connection's end is logged at debug, and that line cannot be written.
    eventually(WAIT, "a failed log write is counted", || async {
        node.dropped("write_failed").await > 0.0
    })
    .await;
    node.serves(20).await;
    node.terminates().await;
}

/// A reader that never reads: the pipe fills, and the node serves and drains all the same.
#[tokio::test]
async fn a_full_log_pipe_never_stalls_the_node() {
    let (mut node, _stderr) = start("debug").await;
    // Each connection's end is a line at debug: 64 KiB of pipe, then the queue, fill up.
    for _ in 0..2000 {
        let client = RawClient::connect(node.ws, "/ws", None).await.unwrap();
        drop(client);
        if node.dropped("queue_full").await > 0.0 {
            break;
        }
    }
    assert!(node.dropped("queue_full").await > 0.0);
    node.serves(20).await;
    node.terminates().await;
}

/// Logs written to a file (or a collector's pipe) are plain text: no ANSI colour codes.
#[tokio::test]
async fn logs_off_a_terminal_carry_no_colour_codes() {
    let node = herald_testkit::ServiceProcess::gateway(&[("RUST_LOG", "debug")]).await;
    let page = node.get("/readyz").await;
    assert_eq!(page.status, 200);
    let log = node.log_text();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log:?}");
}

/// The node's first lines when it runs on a terminal (a pseudo-terminal made by `script`),
/// with `NO_COLOR` set to `no_color` when given.
fn first_lines_on_a_terminal(no_color: Option<&str>) -> String {
    use std::io::Read;
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ws = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", BIN, "/dev/null"])
        .env("HERALD__LISTEN__API", api.to_string())
        .env("HERALD__LISTEN__WEBSOCKET", ws.to_string())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd.spawn().expect("script (util-linux)");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = out.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&seen).contains("gateway listening") {
                break;
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The terminal goes away with `script`: the node gets SIGHUP.
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap()
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    let coloured = first_lines_on_a_terminal(None);
    assert!(coloured.contains("gateway listening"), "{coloured:?}");
    assert!(
        coloured.contains("\u{1b}["),
        "colour on a terminal: {coloured:?}"
    );
    let plain = first_lines_on_a_terminal(Some("1"));
    assert!(plain.contains("gateway listening"), "{plain:?}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR: {plain:?}");
}

/// `log.format = "json"`: one JSON object per line, for log collectors.
#[tokio::test]
async fn the_json_format_writes_one_object_per_line() {
    let node = herald_testkit::ServiceProcess::gateway(&[("HERALD__LOG__FORMAT", "json")]).await;
    assert_eq!(node.get("/readyz").await.status, 200);
    let log = node.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "gateway listening" && l["level"] == "INFO"),
        "{log}"
    );
}

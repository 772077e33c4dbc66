//! `deploy/local-cluster.sh`: three gateways and the presence service on a real Redis
//! Cluster, one publish/subscribe round trip across nodes (the chart's `helm test` script),
//! and a clean stop in both of its modes.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use herald_testkit::workspace_binary;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> Command {
    let bin = workspace_binary("herald-gateway");
    let mut cmd = Command::new(repo().join("deploy/local-cluster.sh"));
    cmd.env("HERALD_BIN", bin.parent().expect("the binaries' directory"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD__")) {
        cmd.env_remove(k);
    }
    cmd
}

/// The pids from the script's `pids:` line.
fn pids(output: &str) -> Vec<u32> {
    let line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("pids: "))
        .expect("a pids line");
    line.split(',').map(|p| p.parse().expect("a pid")).collect()
}

fn all_gone(pids: &[u32]) -> bool {
    pids.iter()
        .all(|p| !Path::new(&format!("/proc/{p}")).exists())
}

#[test]
fn three_gateways_on_a_redis_cluster_carry_a_round_trip_across_nodes() {
    let out = script()
        .args(["--gateways", "3", "--redis", "cluster", "--", "python3"])
        .arg(repo().join("helm/herald/files/roundtrip.py"))
        .output()
        .expect("run deploy/local-cluster.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 gateway(s), Redis cluster"), "{stdout}");
    assert!(
        stdout.contains("presence service: http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("round trip OK"), "{stdout}");
    let pids = pids(&stdout);
    assert_eq!(
        pids.len(),
        3 + 1 + 3,
        "3 gateways, the presence service, 3 masters"
    );
    assert!(all_gone(&pids), "everything stopped: {pids:?}");
}

#[test]
fn waits_for_a_signal_then_stops_everything() {
    let mut child = script()
        .args(["--gateways", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start deploy/local-cluster.sh");
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Ctrl-C stops everything") {
            break;
        }
    }
    let pids = pids(&seen);
    assert_eq!(pids.len(), 2 + 1 + 1, "{seen}");
    assert!(pids
        .iter()
        .all(|p| Path::new(&format!("/proc/{p}")).exists()));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the script did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(all_gone(&pids), "everything stopped: {pids:?}");
}

#[test]
fn a_bad_herald_bin_is_named() {
    let out = script()
        .env("HERALD_BIN", "/nonexistent/bin")
        .args(["--", "true"])
        .output()
        .expect("run deploy/local-cluster.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("binary not found: /nonexistent/bin/herald-gateway"),
        "{stderr}"
    );
}

#[test]
fn the_ports_start_at_a_base_port_and_a_failure_keeps_the_logs() {
    let base = {
        // Ten ports below the kernel's ephemeral range (32768 and up), where no other test's
        // sockets are bound; spread by a free port's number.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let p = l.local_addr().expect("addr").port();
        20_000 + p % 10_000
    };
    let out = script()
        .args(["--gateways", "1", "--base-port", &base.to_string(), "--"])
        .args(["sh", "-c", "echo \"ws=$HERALD_WS_URL\"; curl -fs -o /dev/null -d '{\"channel\":\"demo:chat\",\"data\":1}' \"$HERALD_API_URL/v1/publish\" && echo demo-ok; exit 3"])
        .output()
        .expect("run deploy/local-cluster.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's status: {stdout}\n{stderr}"
    );
    // Redis takes the base port; the gateway's WebSocket the next one.
    assert!(
        stdout.contains(&format!("ws=ws://127.0.0.1:{}/ws", base + 1)),
        "{stdout}"
    );
    assert!(
        stdout.contains("demo-ok"),
        "the demo's namespace takes publications: {stdout}"
    );
    let kept = stderr
        .lines()
        .find_map(|l| l.split("logs are kept in ").nth(1))
        .unwrap_or_else(|| panic!("the logs' directory named: {stderr}"));
    let dir = Path::new(kept.trim());
    assert!(dir.join("gateway-1.log").exists(), "{}", dir.display());
    std::fs::remove_dir_all(dir).expect("remove the kept logs");
}

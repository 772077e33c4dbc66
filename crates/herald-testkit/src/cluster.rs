//! A real Redis Cluster: masters and replicas as redis-server processes, created with
//! `redis-cli --cluster create`.

use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use crate::RedisServer;

/// A Redis Cluster on loopback. Every process is killed when dropped.
pub struct RedisCluster {
    /// The servers, masters first (as created; failovers change who is master).
    pub servers: Vec<RedisServer>,
}

/// A port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = l.local_addr().expect("addr").port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits for `cluster_state:ok`.
    /// A short node timeout (1 s) makes failovers quick.
    ///
    /// # Panics
    /// When the cluster cannot be formed.
    pub async fn start(masters: usize, replicas: usize) -> Self {
        let mut servers = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            let port = cluster_port();
            let conf = format!("nodes-{port}.conf");
            let server = RedisServer::start_on(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "1000",
                    // A fresh test cluster may not have synced long enough for the default
                    // factor to allow a failover.
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
            .await;
            servers.push(server);
        }
        let addrs: Vec<String> = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { servers };
        cluster.wait_ok().await;
        cluster
    }

    /// Waits until every live node reports `cluster_state:ok` and agrees on the masters.
    ///
    /// # Panics
    /// After 20 s.
    pub async fn wait_ok(&self) {
        let started = Instant::now();
        loop {
            let ok = self
                .servers
                .iter()
                .filter(|s| s.is_running())
                .all(|s| s.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "cluster not ok"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Seed URLs of every node, comma-separated.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the server that is master for `key`'s slot now.
    ///
    /// # Panics
    /// When no live master serves it.
    pub fn master_of(&self, key: &str) -> usize {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no live master serves {key}"))
    }

    /// Waits until a live master other than `old` serves `key` (a failover completed), and the
    /// cluster is ok; returns its index.
    ///
    /// # Panics
    /// After 20 s.
    pub async fn wait_failover(&self, key: &str, old: usize) -> usize {
        let started = Instant::now();
        loop {
            if let Some(i) = self.try_master_of(key).filter(|&i| i != old) {
                self.wait_ok().await;
                return i;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The index of a live replica of server `master`.
    ///
    /// # Panics
    /// When it has none.
    pub fn replica_of(&self, master: usize) -> usize {
        let port = self.servers[master].port().to_string();
        self.servers
            .iter()
            .position(|s| {
                let role = s.cli(&["ROLE"]);
                let mut lines = role.lines();
                s.is_running()
                    && lines.next() == Some("slave")
                    && lines.nth(1) == Some(port.as_str())
            })
            .unwrap_or_else(|| panic!("no replica of server {master}"))
    }

    /// Waits until the replica `replica` has applied everything its master wrote.
    ///
    /// # Panics
    /// After 10 s.
    pub async fn wait_replicated(&self, replica: usize) {
        let offset_of =
            |role: String, at: usize| -> Option<u64> { role.lines().nth(at)?.parse().ok() };
        let started = Instant::now();
        loop {
            let role = self.servers[replica].cli(&["ROLE"]);
            let master_port: u16 = role
                .lines()
                .nth(2)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let master = self.servers.iter().find(|s| s.port() == master_port);
            let theirs = master.and_then(|m| offset_of(m.cli(&["ROLE"]), 1));
            if theirs.is_some() && theirs == offset_of(role, 4) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "replica behind"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn try_master_of(&self, key: &str) -> Option<usize> {
        let any = self.servers.iter().find(|s| s.is_running())?;
        let slot: u16 = any.cli(&["CLUSTER", "KEYSLOT", key]).parse().ok()?;
        self.servers.iter().position(|s| {
            s.is_running()
                && s.cli(&["ROLE"]).starts_with("master")
                && s.cli(&["CLUSTER", "NODES"])
                    .lines()
                    .find(|l| l.contains("myself"))
                    .is_some_and(|me| serves(me, slot))
        })
    }

    /// Moves the slot of `key` (with its keys) from its master to master `to`, the way
    /// `redis-cli --cluster reshard` does for each slot: IMPORTING/MIGRATING, MIGRATE, then
    /// SETSLOT NODE on every master.
    ///
    /// # Panics
    /// When a step fails.
    pub fn migrate_slot_of(&self, key: &str, to: usize) {
        let from = self.master_of(key);
        let src = &self.servers[from];
        let dst = &self.servers[to];
        let slot = src.cli(&["CLUSTER", "KEYSLOT", key]);
        let (src_id, dst_id) = (src.cli(&["CLUSTER", "MYID"]), dst.cli(&["CLUSTER", "MYID"]));
        assert_eq!(
            dst.cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]),
            "OK"
        );
        assert_eq!(
            src.cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]),
            "OK"
        );
        let keys = src.cli(&["CLUSTER", "GETKEYSINSLOT", &slot, "1000"]);
        for k in keys.lines().filter(|k| !k.is_empty()) {
            let port = dst.port().to_string();
            let moved = src.cli(&["MIGRATE", "127.0.0.1", &port, k, "0", "5000"]);
            assert_eq!(moved, "OK", "MIGRATE {k}");
        }
        for server in self.servers.iter().filter(|s| s.is_running()) {
            if server.cli(&["ROLE"]).starts_with("master") {
                assert_eq!(
                    server.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &dst_id]),
                    "OK"
                );
            }
        }
    }

    /// Runs redis-cli in cluster mode (`-c`) against the first live node.
    ///
    /// # Panics
    /// When no node is alive.
    pub fn cli(&self, args: &[&str]) -> String {
        let any = self
            .servers
            .iter()
            .find(|s| s.is_running())
            .expect("a live node");
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        any.cli(&all)
    }
}

/// Whether a `CLUSTER NODES` line serves `slot`.
fn serves(line: &str, slot: u16) -> bool {
    line.split_whitespace().skip(8).any(|range| {
        let (start, end) = range.split_once('-').unwrap_or((range, range));
        match (start.parse::<u16>(), end.parse::<u16>()) {
            (Ok(s), Ok(e)) => (s..=e).contains(&slot),
            _ => false,
        }
    })
}

//! A real Redis Sentinel deployment: a master, a replica and three sentinels (redis-server in
//! sentinel mode), on loopback, with short timeouts so that failovers are quick.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, RedisServer};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";
/// How long the sentinels wait before they call an unanswering master down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// One sentinel process; killed when dropped.
struct Sentinel {
    port: u16,
    child: Option<Child>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A master, a replica and three sentinels watching them as [`MASTER_NAME`].
pub struct RedisSentinels {
    /// The servers: the first master, then its replica (failovers swap their roles).
    pub servers: Vec<RedisServer>,
    sentinels: Vec<Sentinel>,
    dir: PathBuf,
}

impl RedisSentinels {
    /// Starts the servers and the sentinels, and waits until every sentinel knows the
    /// replica and the other sentinels.
    ///
    /// # Panics
    /// When a process does not start or the sentinels do not agree in time.
    pub async fn start() -> Self {
        // Without the diskless sync's 5 s delay, the replica is in sync at once.
        let quick = ["--repl-diskless-sync-delay", "0"];
        let master = RedisServer::start_with(&quick).await;
        let port = master.port().to_string();
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &port, quick[0], quick[1]]).await;
        let dir = std::env::temp_dir().join(format!(
            "herald-sentinels-{}-{}",
            std::process::id(),
            master.port()
        ));
        std::fs::create_dir_all(&dir).expect("sentinel dir");
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let sentinel_port = free_port();
            let conf = dir.join(format!("sentinel-{sentinel_port}.conf"));
            let text = format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {}\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir.display(),
                DOWN_AFTER.as_millis()
            );
            std::fs::write(&conf, text).expect("sentinel config");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run redis-server --sentinel ({e})"));
            sentinels.push(Sentinel {
                port: sentinel_port,
                child: Some(child),
            });
        }
        let deployment = Self {
            servers: vec![master, replica],
            sentinels,
            dir,
        };
        let started = Instant::now();
        loop {
            let synced = deployment.servers[0]
                .cli(&["INFO", "replication"])
                .contains("state=online");
            let ready = synced
                && deployment.sentinels.iter().all(|s| {
                    let replicas =
                        deployment.sentinel_cli(s.port, &["SENTINEL", "replicas", MASTER_NAME]);
                    let peers =
                        deployment.sentinel_cli(s.port, &["SENTINEL", "sentinels", MASTER_NAME]);
                    replicas.contains("slave") && peers.matches("name").count() >= 2
                });
            if ready {
                return deployment;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the sentinels did not learn the deployment in time"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn sentinel_cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `redis+sentinel://` URL of the three sentinels and the master's name.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The port of the server the sentinels call master now.
    pub fn master_port(&self) -> u16 {
        let reply = self.sentinel_cli(
            self.sentinels[0].port,
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        );
        reply
            .lines()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("the sentinels name a master")
    }

    /// The server the sentinels call master now.
    pub fn master(&mut self) -> &mut RedisServer {
        let port = self.master_port();
        self.servers
            .iter_mut()
            .find(|s| s.port() == port)
            .expect("the master is one of the servers")
    }

    /// Asks the sentinels for a failover (`SENTINEL FAILOVER`).
    pub fn failover(&self) -> String {
        self.sentinel_cli(
            self.sentinels[0].port,
            &["SENTINEL", "FAILOVER", MASTER_NAME],
        )
    }

    /// Kills every sentinel.
    pub fn kill_sentinels(&mut self) {
        self.sentinels.clear();
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        self.sentinels.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

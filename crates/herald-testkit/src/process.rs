//! Herald's own binaries as child processes: gateways and presence services that a test can
//! kill with SIGKILL, stop with SIGTERM, or start again.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{http::http_request, redis::free_port, HttpResponse};

/// A running `herald-gateway` or `herald-presence` process, on free loopback ports. Killed
/// (SIGKILL) when dropped. Its standard error goes to [`ServiceProcess::log_file`].
pub struct ServiceProcess {
    binary: &'static str,
    env: Vec<(String, String)>,
    args: Vec<String>,
    api: SocketAddr,
    websocket: Option<SocketAddr>,
    log: PathBuf,
    child: Option<Child>,
}

/// The path of a binary of this workspace, next to the test executable's directory.
///
/// # Panics
/// When it has not been built. `cargo test --workspace` builds every binary of the workspace
/// before running tests; with `-p`, build it first (`cargo build -p herald-gateway`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`, or `cargo build -p {name}` first",
        path.display()
    );
    path
}

impl ServiceProcess {
    /// Starts `herald-gateway` with `env` (`HERALD__...` pairs) over a configuration that
    /// listens on free loopback ports. Returns once `/healthz` answers.
    ///
    /// # Panics
    /// When the binary is missing or does not start.
    pub async fn gateway(env: &[(&str, &str)]) -> Self {
        Self::gateway_with_config("", env).await
    }

    /// [`ServiceProcess::gateway`] with a TOML configuration file holding `toml` (for what
    /// environment variables cannot say, such as `[[auth.keys]]`).
    ///
    /// # Panics
    /// As [`ServiceProcess::gateway`].
    pub async fn gateway_with_config(toml: &str, env: &[(&str, &str)]) -> Self {
        Self::first_start(|| {
            let websocket = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut p = Self::new("herald-gateway", env, Some(websocket));
            p.env
                .push(("HERALD__LISTEN__WEBSOCKET".into(), websocket.to_string()));
            if !toml.is_empty() {
                let file = p.log.with_extension("toml");
                std::fs::write(&file, toml).expect("a configuration file");
                p.args = vec!["--config".into(), file.display().to_string()];
            }
            p
        })
        .await
    }

    /// Starts the process `make` describes. A free port can be taken by another test between
    /// choosing it and the process binding it: then it starts again on other ports.
    async fn first_start(make: impl Fn() -> Self) -> Self {
        for _ in 0..4 {
            let mut p = make();
            match p.try_launch().await {
                Ok(()) => return p,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("{} did not start; log: {log}", p.binary),
            }
        }
        let mut p = make();
        p.launch().await;
        p
    }

    /// Starts `herald-presence` with `env` on a free loopback port. Returns once `/healthz`
    /// answers.
    ///
    /// # Panics
    /// As [`ServiceProcess::gateway`].
    pub async fn presence(env: &[(&str, &str)]) -> Self {
        Self::first_start(|| Self::new("herald-presence", env, None)).await
    }

    fn new(binary: &'static str, env: &[(&str, &str)], websocket: Option<SocketAddr>) -> Self {
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::env::temp_dir().join(format!(
            "{binary}-{}-{}.log",
            std::process::id(),
            api.port()
        ));
        let mut all: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("HERALD__LISTEN__API".into(), api.to_string()));
        Self {
            binary,
            env: all,
            args: Vec::new(),
            api,
            websocket,
            log,
            child: None,
        }
    }

    async fn launch(&mut self) {
        if let Err(log) = self.try_launch().await {
            panic!("{} did not start; log: {log}", self.binary);
        }
    }

    /// Starts the process and waits for `/healthz`; the log when it exits or does not answer
    /// within 10 s.
    async fn try_launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file");
        let mut command = Command::new(workspace_binary(self.binary));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD__")) {
            command.env_remove(k);
        }
        if !self.env.iter().any(|(k, _)| k == "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if http_request(self.api, "GET", "/healthz", &[], b"")
                .await
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}: {}", self.log_text()));
            }
            if started.elapsed() >= Duration::from_secs(10) {
                return Err(format!("no answer within 10 s: {}", self.log_text()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The HTTP API's address.
    pub fn api(&self) -> SocketAddr {
        self.api
    }

    /// `ws://127.0.0.1:PORT/ws` of a gateway.
    ///
    /// # Panics
    /// For a presence service.
    pub fn ws_url(&self) -> String {
        let addr = self.websocket.expect("a gateway");
        format!("ws://{addr}/ws")
    }

    /// The WebSocket listener's address of a gateway.
    ///
    /// # Panics
    /// For a presence service.
    pub fn ws_addr(&self) -> SocketAddr {
        self.websocket.expect("a gateway")
    }

    /// A metric's value from `/metrics` (`None` when there is no such sample).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        self.get("/metrics").await.metric(name)
    }

    /// `GET path` on the HTTP API.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn get(&self, path: &str) -> HttpResponse {
        http_request(self.api, "GET", path, &[], b"")
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.binary))
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file's path.
    pub fn log_file(&self) -> &std::path::Path {
        &self.log
    }

    /// Kills the process with SIGKILL (no goodbye) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `within` for a clean exit.
    ///
    /// # Panics
    /// When the process does not exit in time or exits with a failure.
    pub async fn terminate(&mut self, within: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(started.elapsed() < within, "{} did not exit", self.binary);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{} exited with {status}", self.binary);
    }

    /// Starts the process again with the same ports and environment.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

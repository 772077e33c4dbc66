//! nginx (Debian's, installed by `scripts/test`) in front of gateways, with the configuration
//! docker-compose ships (`deploy/compose/nginx.conf`), pointed at loopback addresses.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::free_port;

/// A running nginx; stopped when dropped.
pub struct Nginx {
    /// Where it serves what `deploy/compose/nginx.conf` serves on :8080.
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

/// The repository's `deploy/compose/nginx.conf`.
pub fn compose_nginx_conf() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/compose/nginx.conf");
    std::fs::read_to_string(&path).expect("deploy/compose/nginx.conf")
}

impl Nginx {
    /// Starts nginx with docker-compose's configuration, its WebSocket upstream being
    /// `gateways` (their WebSocket listeners) and its HTTP API upstream `apis`.
    ///
    /// # Panics
    /// When nginx is missing or does not start.
    pub async fn start(gateways: &[SocketAddr], apis: &[SocketAddr]) -> Self {
        Self::serving(gateways, apis, &[]).await
    }

    /// [`Nginx::start`], serving the demo page (`deploy/demo`, as compose does) and `extra`
    /// files (name, content) beside it.
    ///
    /// # Panics
    /// As [`Nginx::start`].
    pub async fn serving(
        gateways: &[SocketAddr],
        apis: &[SocketAddr],
        extra: &[(&str, &str)],
    ) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "herald-nginx-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a directory for nginx");
        let port = free_port();
        let api_port = free_port();
        let servers = |addrs: &[SocketAddr], tail: &str| {
            addrs
                .iter()
                .map(|a| format!("    server {a}{tail};\n"))
                .collect::<String>()
        };
        let mut conf = String::new();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n");
        if root.unwrap_or(false) {
            conf.push_str("user root root;\n");
        }
        conf.push_str(&format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n",
            d = dir.display()
        ));
        let temp = format!(
            "  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n",
            d = dir.display()
        );
        let mut in_ws = false;
        let mut in_api = false;
        for line in compose_nginx_conf().lines() {
            let t = line.trim();
            if t.starts_with("worker_connections") {
                conf.push_str("  worker_connections 1024;\n");
                continue;
            }
            if t == "http {" {
                conf.push_str(line);
                conf.push('\n');
                conf.push_str(&temp);
                continue;
            }
            if t.starts_with("upstream herald_ws") {
                in_ws = true;
            } else if t.starts_with("upstream herald_api") {
                in_api = true;
            }
            if t.starts_with("server ") && t.contains(':') && (in_ws || in_api) {
                // The compose gateways become the given ones, once per block.
                if t.contains("gateway-1") {
                    let (addrs, tail) = match in_ws {
                        true => (gateways, " max_fails=1 fail_timeout=5s"),
                        false => (apis, ""),
                    };
                    conf.push_str(&servers(addrs, tail));
                }
                continue;
            }
            if t == "}" {
                in_ws = false;
                in_api = false;
            }
            let line = line
                .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
                .replace("listen 9090;", &format!("listen 127.0.0.1:{api_port};"))
                .replace("/usr/share/nginx/html", &format!("{}", dir.display()));
            conf.push_str(&line);
            conf.push('\n');
        }
        let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo");
        for entry in std::fs::read_dir(&demo).expect("deploy/demo") {
            let entry = entry.expect("a demo file");
            std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy the demo");
        }
        for (name, content) in extra {
            std::fs::write(dir.join(name), content).expect("write a served file");
        }
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (installed by scripts/test)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { addr, child, dir }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

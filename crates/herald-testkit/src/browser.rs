//! A real browser: Debian's Chromium, headless (installed by `scripts/test`), on a page that
//! a small HTTP server of the test serves; the page reports what it saw by POSTing JSON to
//! `/report` on that server.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Serves a page at `/` (and files beside it) and keeps the last report the page posted.
pub struct PageServer {
    /// Where it listens.
    pub addr: SocketAddr,
    last: Arc<Mutex<Option<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// Serves `html` at `/`.
    pub async fn start(html: String) -> Self {
        Self::with_files(html, Vec::new()).await
    }

    /// Serves `html` at `/`, and each of `files` (path, content type, body) at its path.
    pub async fn with_files(
        html: String,
        files: Vec<(&'static str, &'static str, String)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let last = Arc::new(Mutex::new(None));
        let mut served = vec![("/", "text/html; charset=utf-8", html)];
        served.extend(files);
        let served = Arc::new(served);
        let keep = last.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (served, keep) = (served.clone(), keep.clone());
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let path = head.split(' ').nth(1).unwrap_or("/");
                    let path = path.split('?').next().unwrap_or("/");
                    let file = served.iter().find(|(p, _, _)| *p == path);
                    let response = if head.starts_with("POST /report") {
                        if let Ok(report) = serde_json::from_slice(&body) {
                            *keep.lock().unwrap() = Some(report);
                        }
                        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_owned()
                    } else if let Some((_, kind, text)) = file {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { addr, last, task }
    }

    /// The page's last report.
    pub fn report(&self) -> Option<serde_json::Value> {
        self.last.lock().unwrap().clone()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Headless Chromium on a page; killed when dropped.
pub struct Chromium {
    child: Child,
    profile: PathBuf,
    debug_port: Option<u16>,
}

impl Chromium {
    /// Opens `url`.
    ///
    /// # Panics
    /// When Chromium is missing.
    pub fn open(url: &str) -> Self {
        Self::start(url, None)
    }

    /// Opens `url` with the DevTools protocol on a free port, so that the test can read the
    /// page ([`Chromium::evaluate`]).
    ///
    /// # Panics
    /// When Chromium is missing.
    pub fn debuggable(url: &str) -> Self {
        Self::start(url, Some(crate::free_port()))
    }

    /// Evaluates `expression` in the page and returns its value; `None` while the page or
    /// the protocol is not there yet.
    pub async fn evaluate(&self, expression: &str) -> Option<serde_json::Value> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let port = self.debug_port?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let within = std::time::Duration::from_secs(3);
        // DevTools' HTTP server keeps the connection open: the answer is read by its length.
        let (_, list) = tokio::time::timeout(within, async {
            let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
            socket
                .write_all(b"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .ok()?;
            read_request(&mut socket).await
        })
        .await
        .ok()??;
        let targets: serde_json::Value = serde_json::from_slice(&list).ok()?;
        let page = targets.as_array()?.iter().find(|t| t["type"] == "page")?;
        // By address: the URL it gives may name `localhost`, which can resolve elsewhere.
        let url = format!("ws://{addr}/devtools/page/{}", page["id"].as_str()?);
        tokio::time::timeout(within, async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
            let call = serde_json::json!({"id": 1, "method": "Runtime.evaluate",
                "params": {"expression": expression, "returnByValue": true}});
            ws.send(Message::text(call.to_string())).await.ok()?;
            while let Some(Ok(message)) = ws.next().await {
                let Ok(text) = message.into_text() else {
                    continue;
                };
                let reply: serde_json::Value = serde_json::from_str(&text).ok()?;
                if reply["id"] == 1 {
                    return Some(reply["result"]["result"]["value"].clone());
                }
            }
            None
        })
        .await
        .ok()?
    }

    fn start(url: &str, debug_port: Option<u16>) -> Self {
        let profile = std::env::temp_dir().join(format!(
            "herald-chromium-{}-{}",
            std::process::id(),
            crate::free_port()
        ));
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(debug_port.map(|p| format!("--remote-debugging-port={p}")))
            .args(debug_port.map(|_| "--remote-allow-origins=*"))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium (installed by scripts/test)");
        Self {
            child,
            profile,
            debug_port,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

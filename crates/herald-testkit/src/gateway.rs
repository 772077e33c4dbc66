//! A gateway running in-process on free loopback ports.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use herald_gateway::{config::GatewayConfig, GatewayError, Listeners};
use herald_protocol::WireFormat;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{http_request, HttpResponse, WsClient};

/// A configuration for tests: loopback, port 0, a short drain.
pub fn test_config() -> GatewayConfig {
    let mut c = GatewayConfig::default();
    c.listen.websocket = SocketAddr::from(([127, 0, 0, 1], 0));
    c.listen.api = SocketAddr::from(([127, 0, 0, 1], 0));
    c.shutdown.drain_window = Duration::from_millis(300);
    c.shutdown.grace_period = Duration::from_secs(3);
    c.websocket.close_timeout = Duration::from_millis(500);
    c.hub.shards = 2;
    c
}

/// [`test_config`] relaying through the standalone Redis at `url`.
pub fn redis_config(url: &str) -> GatewayConfig {
    let mut c = test_config();
    c.broker.kind = herald_gateway::config::BrokerKind::Redis;
    c.broker.redis.url = url.to_owned();
    c.broker.redis.timeout = Duration::from_millis(500);
    c
}

/// [`test_config`] relaying through the Redis Cluster `cluster` (sharded pub/sub).
pub fn redis_cluster_config(cluster: &crate::RedisCluster) -> GatewayConfig {
    let mut c = redis_config(&cluster.urls());
    c.broker.redis.mode = herald_gateway::config::RedisMode::Cluster;
    c
}

/// A running gateway. Stopped (drained) by [`TestGateway::stop`], or cancelled when dropped.
pub struct TestGateway {
    /// The WebSocket listener's address.
    pub ws_addr: SocketAddr,
    /// The HTTP API's address.
    pub api_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), GatewayError>>>,
}

impl TestGateway {
    /// Starts a gateway with [`test_config`].
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    /// Starts a gateway with `config` (its listen addresses should use port 0).
    pub async fn start_with(config: GatewayConfig) -> Self {
        Self::spawn(config, None).await
    }

    /// Starts a gateway on a shared in-memory bus, to form a cluster with others on it.
    pub async fn start_on_bus(config: GatewayConfig, bus: &herald_broker::MemoryBus) -> Self {
        Self::spawn(config, Some(bus.clone())).await
    }

    async fn spawn(config: GatewayConfig, bus: Option<herald_broker::MemoryBus>) -> Self {
        let listeners = Listeners::bind(&config).await.expect("bind loopback");
        let ws_addr = listeners.websocket_addr();
        let api_addr = listeners.api_addr();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            match bus {
                Some(bus) => herald_gateway::run_on_bus(config, listeners, &bus, token).await,
                None => herald_gateway::run(config, listeners, token).await,
            }
        });
        Self {
            ws_addr,
            api_addr,
            shutdown,
            task: Some(task),
        }
    }

    /// The `ws://` URL of the WebSocket endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.ws_addr)
    }

    /// Connects a client speaking `format` (JSON when `None`: no subprotocol offered).
    pub async fn client(&self, format: Option<WireFormat>) -> WsClient {
        WsClient::connect(&self.ws_url(), format)
            .await
            .expect("connect")
    }

    /// `POST /v1/publish` with `{"channel":..,"data":..}`.
    pub async fn publish(&self, channel: &str, data: serde_json::Value) -> HttpResponse {
        let body = serde_json::json!({"channel": channel, "data": data}).to_string();
        self.post("/v1/publish", &[], body.as_bytes()).await
    }

    /// A POST to the API.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        http_request(self.api_addr, "POST", path, headers, body)
            .await
            .expect("api request")
    }

    /// A GET from the API.
    pub async fn get(&self, path: &str) -> HttpResponse {
        http_request(self.api_addr, "GET", path, &[], b"")
            .await
            .expect("api request")
    }

    /// Waits until `/readyz` answers 200 (the broker is up), at most `within`.
    ///
    /// # Panics
    /// When it does not within `within`.
    pub async fn wait_ready(&self, within: Duration) {
        crate::eventually(within, "the gateway is ready", || async {
            self.get("/readyz").await.status == 200
        })
        .await;
    }

    /// A metric's value from `/metrics`.
    ///
    /// # Panics
    /// When there is no such sample.
    pub async fn metric(&self, name: &str) -> f64 {
        let page = self.get("/metrics").await;
        page.metric(name)
            .unwrap_or_else(|| panic!("no metric {name} in:\n{}", page.text()))
    }

    /// Starts the drain (as SIGTERM would) without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Drains the gateway and waits for it to exit; returns how long that took.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("gateway task").expect("gateway run");
        }
        started.elapsed()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

//! Dev-only test kit: real Herald gateways in-process on free loopback ports, Herald's
//! binaries as child processes, real redis-server processes, WebSocket test clients, a small HTTP client, and eventually-asserts.
//!
//! Tests use real sockets end to end: [`TestGateway`] runs the same `herald_gateway::run` as
//! the binary, [`WsClient`] is an independent WebSocket implementation (tokio-tungstenite), and
//! [`RawClient`] sends hand-made frames for the cases a well-behaved client never produces.

mod browser;
mod cluster;
mod counted;
mod eventually;
mod gateway;
mod http;
mod nginx;
mod otlp;
mod process;
mod raw;
mod redis;
mod sentinel;
mod sockets;
mod sse_client;
mod webhook;
mod ws_client;

pub use browser::{Chromium, PageServer};
pub use cluster::RedisCluster;
pub use counted::{publish_counted, Acked, Received};
pub use eventually::eventually;
pub use gateway::{redis_cluster_config, redis_config, test_config, TestGateway};
pub use http::{head_request, http_request, HttpResponse};
pub use nginx::{compose_nginx_conf, Nginx};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use process::{workspace_binary, ServiceProcess};
pub use raw::{RawClient, RawFrame};
pub use redis::{free_port, make_certificates, redis_broker, RedisServer};
pub use sentinel::{RedisSentinels, DOWN_AFTER, MASTER_NAME};
pub use sockets::tcp_states_on_port;
pub use sse_client::{SseClient, SseEvent, SseOpen};
pub use webhook::{ReceivedWebhook, WebhookReceiver};
pub use ws_client::{Incoming, WsClient};

/// How long a test waits for anything that should happen promptly.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

//! Slow consumers against the real binary: a client that stops reading, or reads a trickle, is
//! evicted, and within `websocket.close_timeout` its connection is gone on the server, kernel
//! buffers and all.

use std::time::{Duration, Instant};

use herald_testkit::{eventually, tcp_states_on_port, RawClient, ServiceProcess, WAIT};
use serde_json::json;

const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

async fn gateway() -> ServiceProcess {
    ServiceProcess::gateway(&[("HERALD__WEBSOCKET__CLOSE_TIMEOUT", "1s")]).await
}

/// Connects a client with a 4 KiB receive buffer, subscribed to `news`.
async fn subscriber(gw: &ServiceProcess) -> RawClient {
    let mut client = RawClient::connect_with_receive_buffer(gw.ws_addr(), "/ws", 4096)
        .await
        .unwrap();
    let request = json!({"id": 1, "subscribe": {"channels": ["news"]}}).to_string();
    client
        .send_raw(&RawClient::frame(true, 0x1, request.as_bytes()))
        .await
        .unwrap();
    let (opcode, reply) = client.next_frame().await.unwrap();
    assert_eq!(opcode, 0x1);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["ok"]["subscribed"], json!(["news"]), "{reply}");
    client
}

/// Publishes 16 KB publications until the node evicts a subscriber (800 at most); returns
/// when it did.
async fn publish_until_evicted(gw: &ServiceProcess) -> Instant {
    let body = json!({"channel": "news", "data": "x".repeat(16_000)}).to_string();
    for i in 1..=800 {
        let r = herald_testkit::http_request(gw.api(), "POST", "/v1/publish", &[], body.as_bytes())
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        if i % 10 == 0 && gw.metric("herald_slow_consumer_evictions_total").await == Some(1.0) {
            return Instant::now();
        }
    }
    panic!("800 publications of 16 KB did not evict the client");
}

/// What a user checks after an eviction: the connection is closed and counted, and the server
/// holds no socket for it (no ESTABLISHED one with megabytes unsent, no FIN-WAIT either).
async fn assert_gone_within_close_timeout(gw: &ServiceProcess, evicted: Instant) {
    let port = gw.ws_addr().port();
    eventually(WAIT, "the evicted connection is closed", || async {
        gw.metric("herald_connections").await == Some(0.0)
    })
    .await;
    let took = evicted.elapsed();
    assert!(
        took <= CLOSE_TIMEOUT + Duration::from_millis(1500),
        "closed {took:?} after the eviction"
    );
    assert_eq!(
        gw.metric("herald_connections_closed_total{reason=\"slow_consumer\"}")
            .await,
        Some(1.0)
    );
    eventually(Duration::from_secs(1), "no server socket left", || async {
        tcp_states_on_port(port).is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_after_eviction() {
    let gw = gateway().await;
    let _stalled = subscriber(&gw).await;
    let evicted = publish_until_evicted(&gw).await;
    assert_gone_within_close_timeout(&gw, evicted).await;
}

#[tokio::test]
async fn a_client_that_reads_a_trickle_is_disconnected_after_eviction() {
    let gw = gateway().await;
    let mut slow = subscriber(&gw).await;
    // Reads 512 bytes every 20 ms (25 KB/s) until the server resets the connection.
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            match slow.read_some(512, Duration::from_millis(20)).await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return true,
            }
        }
        false
    });
    let evicted = publish_until_evicted(&gw).await;
    assert_gone_within_close_timeout(&gw, evicted).await;
    assert!(reader.await.unwrap(), "the client saw its connection end");
}

//! Event streams refused before they start (each with its status and a JSON body), the
//! limits they count against, a slow reader evicted while others keep receiving, and streams
//! over TLS.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, KeyConfig, NamespaceConfig, SubscribePolicy};
use herald_testkit::{make_certificates, test_config, SseClient, TestGateway};
use jsonwebtoken::{encode, get_current_timestamp as now, EncodingKey, Header};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const SECRET: &str = "an HS256 secret of at least 32 bytes!";
const WAIT: Duration = Duration::from_secs(5);

fn token(claims: serde_json::Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    encode(&Header::default(), &claims, &key).unwrap()
}

/// Tokens required; `private:` channels by the token's `channels` claim.
fn guarded() -> GatewayConfig {
    let mut c = test_config();
    c.auth.anonymous = false;
    c.auth.keys = vec![KeyConfig::hs256(SECRET)];
    let private = NamespaceConfig {
        subscribe: SubscribePolicy::Token,
        ..NamespaceConfig::default()
    };
    c.namespaces.insert("private".into(), private);
    c.websocket.allowed_origins = vec!["https://app.example".into()];
    c.limits.max_subscriptions = 2;
    c
}

async fn refused(gw: &TestGateway, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, body) = SseClient::open(gw.ws_addr, target, headers).await.refused();
    let code = body["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    (status, code)
}

#[tokio::test]
async fn requests_are_refused_with_a_status_and_a_json_body() {
    let gw = TestGateway::start_with(guarded()).await;
    let alice = token(json!({"sub": "alice", "exp": now() + 600, "channels": ["private:alice"]}));
    let bearer = format!("Bearer {alice}");
    let auth = [("Authorization", bearer.as_str())];

    let (status, message) = refused(&gw, "/v1/sse?channel=news", &[]).await;
    assert_eq!(status, 401, "{message}");
    let (status, _) = refused(&gw, "/v1/sse?channel=news&token=not.a.jwt", &[]).await;
    assert_eq!(status, 401);
    let (status, message) = refused(&gw, "/v1/sse", &auth).await;
    assert_eq!(status, 400, "no channel: {message}");
    let (status, _) = refused(&gw, "/v1/sse?channel=bad%20name", &auth).await;
    assert_eq!(status, 422);
    let (status, message) = refused(&gw, "/v1/sse?channel=private:bob", &auth).await;
    assert_eq!(status, 403, "not granted: {message}");
    let (status, message) = refused(&gw, "/v1/sse?channel=a&channel=b&channel=c", &auth).await;
    assert_eq!(status, 429, "over limits.max_subscriptions: {message}");
    let (status, message) = refused(
        &gw,
        "/v1/sse?channel=a",
        &[auth[0], ("Last-Event-ID", "x:y:z")],
    )
    .await;
    assert_eq!(status, 400, "a bad position: {message}");
    let (status, _) = refused(
        &gw,
        "/v1/sse?channel=a",
        &[auth[0], ("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(status, 403);
    let r = herald_testkit::http_request(gw.ws_addr, "POST", "/v1/sse?channel=a", &auth, b"")
        .await
        .expect("POST /v1/sse");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], 101, "{}", r.text());

    // The token in the query, a granted private channel, an allowed origin: a stream, with
    // CORS headers for the browser's origin.
    let target = format!("/v1/sse?channel=private:alice&token={alice}");
    let origin = [("Origin", "https://app.example")];
    let mut s = SseClient::open(gw.ws_addr, &target, &origin).await.stream();
    assert_eq!(
        s.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(s.next(WAIT).await.is_some());
    gw.publish("private:alice", json!("hi")).await;
    assert_eq!(s.next_event(WAIT).await.unwrap().json(), json!("hi"));
}

#[tokio::test]
async fn streams_count_against_the_connection_limit_and_expire_with_their_token() {
    let mut config = test_config();
    config.limits.max_connections = 1;
    config.auth.keys = vec![KeyConfig::hs256(SECRET)];
    config.auth.leeway = Duration::ZERO;
    let gw = TestGateway::start_with(config).await;
    let short = token(json!({"sub": "carol", "exp": now() + 2}));
    let mut first = SseClient::open(gw.ws_addr, &format!("/v1/sse?channel=a&token={short}"), &[])
        .await
        .stream();
    assert!(first.next(WAIT).await.is_some());
    let (status, body) = SseClient::open(gw.ws_addr, "/v1/sse?channel=a", &[])
        .await
        .refused();
    assert_eq!(status, 503, "{body}");
    // At its token's expiry the stream ends, telling the client not to come back as it was.
    let close = first
        .next_event(Duration::from_secs(6))
        .await
        .expect("a close event");
    assert_eq!(close.event, "close");
    assert_eq!(close.json()["code"], 4500);
    assert_eq!(close.json()["reconnect"], false);
    assert!(first.closed_within(WAIT).await);
    // Its slot is free again.
    herald_testkit::eventually(WAIT, "the slot given back", || async {
        matches!(
            SseClient::open(gw.ws_addr, "/v1/sse?channel=a", &[]).await,
            herald_testkit::SseOpen::Stream(_)
        )
    })
    .await;
}

#[tokio::test]
async fn a_slow_reader_is_evicted_while_others_keep_receiving() {
    let mut config = test_config();
    config.websocket.outbound_queue_bytes = 256 * 1024;
    config.api.max_data_size = 64 * 1024;
    let gw = TestGateway::start_with(config).await;
    // The slow reader sends its request and never reads.
    let mut slow = tokio::net::TcpStream::connect(gw.ws_addr).await.unwrap();
    slow.write_all(b"GET /v1/sse?channel=big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut fast = SseClient::open(gw.ws_addr, "/v1/sse?channel=big", &[])
        .await
        .stream();
    assert!(fast.next(WAIT).await.is_some());
    let blob = "x".repeat(60 * 1024);
    let mut received = 0;
    for _ in 0..200 {
        gw.publish("big", json!(blob)).await;
        while let Some(e) = fast.next_event(Duration::from_millis(1)).await {
            assert_eq!(e.json().as_str().map(str::len), Some(blob.len()));
            received += 1;
        }
        if gw
            .metric("herald_connections_closed_total{reason=\"slow_consumer\"}")
            .await
            >= 1.0
        {
            break;
        }
    }
    assert!(
        gw.metric("herald_connections_closed_total{reason=\"slow_consumer\"}")
            .await
            >= 1.0,
        "the slow reader was evicted"
    );
    while received < 200 {
        match fast.next_event(Duration::from_secs(2)).await {
            Some(_) => received += 1,
            None => break,
        }
    }
    let published = gw.metric("herald_publications_total{path=\"http\"}").await as usize;
    assert_eq!(
        received, published,
        "the other stream got every publication"
    );
    // The slow reader's socket is closed on the server.
    herald_testkit::eventually(WAIT, "the slow reader's connection closed", || async {
        gw.metric("herald_connections").await == 1.0
    })
    .await;
}

#[tokio::test]
async fn streams_are_served_over_tls_like_websockets() {
    let dir = std::env::temp_dir().join(format!("herald-sse-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let mut config = test_config();
    config.websocket.tls_cert_file = Some(dir.join("server.crt"));
    config.websocket.tls_key_file = Some(dir.join("server.key"));
    let gw = TestGateway::start_with(config).await;
    let url = format!("https://{}/v1/sse?channel=secure", gw.ws_addr);
    let publish = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        gw.publish("secure", json!({"over": "tls"})).await;
    };
    let curl = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-N", "-s", "--max-time", "3", "--cacert"])
            .arg(dir.join("ca.crt"))
            .arg(&url)
            .output()
            .expect("curl")
    });
    let ((), out) = tokio::join!(publish, curl);
    let text = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
    assert!(text.contains("data: {\"over\":\"tls\"}"), "{text}");
}

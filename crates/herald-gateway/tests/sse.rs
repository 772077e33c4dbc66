//! Server-Sent Events (`GET /v1/sse`): publications as events, the event id as the stream's
//! position, recovery from `Last-Event-ID` (or `?since=`), gap events, keep-alives, the
//! drain, and curl; on the embedded broker and through Redis.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NamespaceConfig};
use herald_testkit::{redis_config, test_config, RedisServer, SseClient, SseEvent, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

/// `chat:` keeps 3 publications, `quiet:` none.
fn with_namespaces(mut config: GatewayConfig) -> GatewayConfig {
    let ns = |history_size| NamespaceConfig {
        history_size,
        history_ttl: Duration::from_secs(60),
        ..NamespaceConfig::default()
    };
    config.namespaces.insert("chat".into(), ns(3));
    config.namespaces.insert("quiet".into(), ns(0));
    config
}

async fn open(gw: &TestGateway, target: &str, headers: &[(&str, &str)]) -> SseClient {
    SseClient::open(gw.ws_addr, target, headers).await.stream()
}

async fn publish(gw: &TestGateway, channel: &str, data: serde_json::Value) -> serde_json::Value {
    let r = gw.publish(channel, data).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The events with data, until none comes for a while.
async fn drain_events(s: &mut SseClient) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while let Some(e) = s.next_event(Duration::from_millis(300)).await {
        out.push(e);
    }
    out
}

async fn stream_then_resume(gw: &TestGateway) {
    let mut s = open(gw, "/v1/sse?channel=chat:a&channel=quiet:b", &[]).await;
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    assert_eq!(s.header("transfer-encoding"), Some("chunked"));
    // The stream's start: where each channel stands (chat:a has no publication yet; quiet:b
    // keeps no history, so its entry stays empty).
    let start = s.next(WAIT).await.expect("the starting position");
    assert_eq!((start.data.as_deref(), start.id.as_str()), (None, "0,"));
    assert_eq!(s.retry, Some(1000));

    let first = publish(gw, "chat:a", json!({"n": 1})).await;
    let epoch = first["epoch"].as_str().expect("an epoch").to_owned();
    let e = s.next_event(WAIT).await.expect("the publication");
    assert_eq!(e.event, "message");
    assert_eq!(e.json(), json!({"n": 1}));
    assert_eq!(e.id, format!("{epoch}:1,"));
    // A named event on the channel without history: its event name, the id unchanged.
    let r = gw
        .post(
            "/v1/publish",
            &[("content-type", "application/json")],
            json!({"channel": "quiet:b", "event": "price", "data": [1, 2]})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = s.next_event(WAIT).await.expect("the named event");
    assert_eq!((e.event.as_str(), e.json()), ("price", json!([1, 2])));
    assert_eq!(e.id, format!("{epoch}:1,"));
    let last_id = e.id.clone();
    drop(s);

    // Missed while away: 2 and 3; resumed with the browser's header, then live.
    publish(gw, "chat:a", json!({"n": 2})).await;
    publish(gw, "chat:a", json!({"n": 3})).await;
    let mut s = open(
        gw,
        "/v1/sse?channel=chat:a&channel=quiet:b",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    publish(gw, "chat:a", json!({"n": 4})).await;
    let got = drain_events(&mut s).await;
    let ns: Vec<_> = got.iter().map(|e| e.json()["n"].clone()).collect();
    assert_eq!(ns, [json!(2), json!(3), json!(4)], "each once, in order");
    assert_eq!(got.last().unwrap().id, format!("{epoch}:4,"));

    // `?since=` for clients that set no headers; 3 kept: from 1 on, 2 is gone.
    for _ in 0..3 {
        publish(gw, "chat:a", json!({"n": "more"})).await;
    }
    let mut s = open(
        gw,
        &format!("/v1/sse?channel=chat:a&channel=quiet:b&since={epoch}:1,"),
        &[],
    )
    .await;
    let gap = s.next_event(WAIT).await.expect("a gap event");
    assert_eq!(gap.event, "gap");
    assert_eq!(gap.json()["channel"], "chat:a");
    assert_eq!(gap.json()["missing"], json!({"from": 2, "to": 4}));
    let rest: Vec<_> = drain_events(&mut s)
        .await
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(rest, [5, 6, 7].map(|o| format!("{epoch}:{o},")));

    // Another epoch: a gap event naming the channel's, then the stream goes on from now.
    let mut s = open(
        gw,
        "/v1/sse?channel=chat:a&channel=quiet:b",
        &[("Last-Event-ID", "other1:3,")],
    )
    .await;
    let gap = s.next_event(WAIT).await.expect("a gap event");
    assert_eq!(
        (gap.event.as_str(), gap.json()["epoch"].as_str()),
        ("gap", Some(epoch.as_str()))
    );
    let at = s.next(WAIT).await.expect("the position it goes on from");
    assert_eq!(at.id, format!("{epoch}:7,"));
    publish(gw, "chat:a", json!({"n": 8})).await;
    assert_eq!(s.next_event(WAIT).await.unwrap().id, format!("{epoch}:8,"));
}

#[tokio::test]
async fn a_stream_gets_publications_as_events_and_resumes_from_its_last_event_id() {
    let gw = TestGateway::start_with(with_namespaces(test_config())).await;
    stream_then_resume(&gw).await;
}

#[tokio::test]
async fn a_stream_resumes_through_redis() {
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(with_namespaces(redis_config(&redis.url()))).await;
    gw.wait_ready(WAIT).await;
    stream_then_resume(&gw).await;
}

#[tokio::test]
async fn idle_streams_get_keep_alives_and_the_drain_ends_them_with_a_close_event() {
    let mut config = test_config();
    config.sse.keepalive_interval = Duration::from_millis(100);
    config.shutdown.drain_window = Duration::from_millis(200);
    let gw = TestGateway::start_with(config).await;
    let mut s = open(&gw, "/v1/sse?channel=news", &[]).await;
    assert!(s.next(WAIT).await.is_some(), "the starting position");
    assert!(s.next(Duration::from_millis(450)).await.is_none());
    assert!(s.comments >= 2, "keep-alive comments: {}", s.comments);

    gw.begin_shutdown();
    let close = s.next_event(WAIT).await.expect("a close event");
    assert_eq!(close.event, "close");
    assert_eq!(close.json()["code"], 4000);
    assert_eq!(close.json()["reconnect"], true);
    assert!(s.next(WAIT).await.is_none());
    assert!(s.ended, "the response's last chunk");
    assert!(
        s.closed_within(WAIT).await,
        "the server closed the connection"
    );
}

#[tokio::test]
async fn curl_streams_the_events_as_they_come() {
    let gw = TestGateway::start().await;
    let url = format!("http://{}/v1/sse?channel=news", gw.ws_addr);
    let mut curl = std::process::Command::new("curl")
        .args(["-N", "-s", "--max-time", "10", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl (installed by scripts/test)");
    let mut out = curl.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let text = || seen.lock().unwrap().clone();
    let mut published = 0;
    for _ in 0..100 {
        if text().contains("data: {\"n\":2}") {
            break;
        }
        if text().contains("id: ") && published < 2 {
            published += 1;
            publish(&gw, "news", json!({"n": published})).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = curl.kill();
    let _ = curl.wait();
    reader.join().unwrap();
    let text = text();
    assert!(text.contains("event: message\ndata: {\"n\":1}\n"), "{text}");
    assert!(text.contains("data: {\"n\":2}"), "{text}");
}

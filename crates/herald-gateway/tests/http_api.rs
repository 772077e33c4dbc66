//! The HTTP API's statuses and bodies.

use herald_testkit::{test_config, TestGateway};
use serde_json::json;

#[tokio::test]
async fn publish_errors_have_the_documented_statuses() {
    let mut config = test_config();
    config.api.max_data_size = 100;
    config.api.max_body_size = 1000;
    let gw = TestGateway::start_with(config).await;

    let bad_json = gw.post("/v1/publish", &[], b"{\"channel\":").await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["error"]["code"], json!(101));
    let missing = gw.post("/v1/publish", &[], br#"{"channel":"news"}"#).await;
    assert_eq!(missing.status, 400, "{}", missing.text());

    let bad_channel = gw.publish("no spaces", json!(1)).await;
    assert_eq!(bad_channel.status, 422);
    assert_eq!(bad_channel.json()["error"]["code"], json!(102));
    let unknown_ns = gw.publish("ghost:room", json!(1)).await;
    assert_eq!(unknown_ns.status, 422);
    assert_eq!(unknown_ns.json()["error"]["code"], json!(103));

    let big_data = gw.publish("news", json!("x".repeat(200))).await;
    assert_eq!(big_data.status, 413);
    assert_eq!(big_data.json()["error"]["code"], json!(106));
    let big_body = gw.post("/v1/publish", &[], &vec![b' '; 2000]).await;
    assert_eq!(big_body.status, 413);

    assert_eq!(gw.get("/v1/publish").await.status, 405);
    assert_eq!(gw.get("/nothing").await.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let mut config = test_config();
    config.api.keys = vec!["k-one".into(), "k-two".into()];
    let gw = TestGateway::start_with(config).await;
    let body = br#"{"channel":"news","data":1}"#;
    let none = gw.post("/v1/publish", &[], body).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(none.json()["error"]["code"], json!(107));
    let wrong = gw
        .post("/v1/publish", &[("Authorization", "Bearer k-three")], body)
        .await;
    assert_eq!(wrong.status, 401);
    let right = gw
        .post("/v1/publish", &[("Authorization", "Bearer k-two")], body)
        .await;
    assert_eq!(right.status, 200, "{}", right.text());
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(gw.get("/healthz").await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn batches_publish_in_order_or_not_at_all() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let batch = json!({"messages": [
        {"channel": "news", "data": 1},
        {"channel": "news", "data": 2},
        {"channel": "news", "data": 3},
    ]});
    let r = gw
        .post("/v1/publish/batch", &[], batch.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    let offsets: Vec<_> = results.iter().map(|r| r["offset"].clone()).collect();
    assert_eq!(offsets, [json!(1), json!(2), json!(3)]);
    for n in 1..=3 {
        assert_eq!(c.next_push().await["data"], json!(n));
    }

    let bad = json!({"messages": [
        {"channel": "news", "data": "never"},
        {"channel": "bad name", "data": 2},
    ]});
    let r = gw
        .post("/v1/publish/batch", &[], bad.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 422);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("messages[1]"));
    gw.publish("news", json!("marker")).await;
    let next = c.next_push().await;
    assert_eq!(
        (next["data"].clone(), next["offset"].clone()),
        (json!("marker"), json!(4)),
        "nothing of the refused batch was published"
    );
    gw.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let gw = TestGateway::start().await;
    let health = gw.get("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    assert_eq!(gw.get("/readyz").await.status, 200);
    let metrics = gw.get("/metrics").await;
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    gw.publish("news", json!(1)).await;
    c.next_push().await;
    assert_eq!(gw.metric("herald_connections").await, 1.0);
    assert_eq!(
        gw.metric("herald_publications_total{path=\"http\"}").await,
        1.0
    );
    assert_eq!(gw.metric("herald_deliveries_total").await, 1.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_publish_may_name_its_event() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let body = json!({"channel": "news", "data": "hi", "event": "greeting"});
    let reply = gw
        .post("/v1/publish", &[], body.to_string().as_bytes())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        c.next_push().await,
        json!({"channel": "news", "data": "hi", "offset": 1, "event": "greeting"})
    );
    let batch = json!({"messages": [{"channel": "news", "data": 1, "event": "one"}, {"channel": "news", "data": 2}]});
    let reply = gw
        .post("/v1/publish/batch", &[], batch.to_string().as_bytes())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(c.next_push().await["event"], "one");
    assert_eq!(c.next_push().await.get("event"), None);
}

/// The publication's id has one name on both APIs, `message_id`; `id` stays as an alias.
#[tokio::test]
async fn the_message_id_has_the_same_name_over_http_and_websocket() {
    let mut config = test_config();
    config.channels.publish = true;
    let gw = TestGateway::start_with(config).await;
    let over_http = gw.publish("news", json!(1)).await.json();
    let id = over_http["message_id"]
        .as_str()
        .expect("message_id")
        .to_owned();
    assert_eq!(over_http["id"], json!(id), "the alias");
    assert_eq!(over_http["offset"], json!(1));
    let batch = gw
        .post(
            "/v1/publish/batch",
            &[],
            br#"{"messages":[{"channel":"news","data":2}]}"#,
        )
        .await
        .json();
    assert!(batch["results"][0]["message_id"].is_string(), "{batch}");

    let mut client = gw.client(None).await;
    let over_ws = client
        .request("publish", json!({"channel": "news", "data": 3}))
        .await;
    assert!(over_ws["ok"]["message_id"].is_string(), "{over_ws}");
    assert_eq!(over_ws["ok"]["offset"], json!(3));
    gw.stop().await;
}

/// `HEAD` on the probes answers as `GET` without a body, as load balancers and `curl -I`
/// expect; other methods get 405.
#[tokio::test]
async fn head_on_the_probes_answers_without_a_body() {
    let gw = TestGateway::start().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let text = herald_testkit::head_request(gw.api_addr, path).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
        assert!(text.ends_with("\r\n\r\n"), "{path}: no body: {text}");
        assert_eq!(gw.post(path, &[], b"").await.status, 405, "{path}");
    }
    gw.stop().await;
}

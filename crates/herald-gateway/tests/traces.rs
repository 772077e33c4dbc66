//! OpenTelemetry traces end to end: spans exported with OTLP over real HTTP to an in-process
//! receiver, the trace context riding in the envelope from one node to another through a real
//! redis-server.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, NodeName};
use herald_protocol::NodeId;
use herald_testkit::{
    eventually, redis_config, test_config, OtlpReceiver, ReceivedSpan, RedisServer, TestGateway,
    WAIT,
};
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn traced(
    mut config: GatewayConfig,
    receiver: &OtlpReceiver,
    ratio: f64,
) -> (GatewayConfig, String) {
    let node = NodeId::random();
    config.node.id = Some(NodeName::parse(&node.to_string()).unwrap());
    config.telemetry.otlp_endpoint = Some(receiver.endpoint.clone());
    config.telemetry.sample_ratio = ratio;
    config.telemetry.export_interval = Duration::from_millis(100);
    config.channels.publish = true;
    (config, node.to_string())
}

async fn ready(gw: &TestGateway) {
    gw.wait_ready(WAIT).await;
}

/// Waits for a span named `name` in trace `trace_id`, and returns it.
async fn span(receiver: &OtlpReceiver, name: &str, trace_id: &str) -> ReceivedSpan {
    let found = || {
        receiver
            .spans()
            .into_iter()
            .find(|s| s.name == name && s.trace_id == trace_id)
    };
    eventually(WAIT, name, || async { found().is_some() }).await;
    found().expect("span")
}

#[tokio::test]
async fn an_http_publish_with_a_traceparent_has_spans_on_both_nodes_under_one_trace() {
    let receiver = OtlpReceiver::start().await;
    let redis = RedisServer::start().await;
    // Ratio 0: only what the caller's traceparent samples is traced.
    let (config_a, node_a) = traced(redis_config(&redis.url()), &receiver, 0.0);
    let (config_b, node_b) = traced(redis_config(&redis.url()), &receiver, 0.0);
    let a = TestGateway::start_with(config_a).await;
    let b = TestGateway::start_with(config_b).await;
    ready(&a).await;
    ready(&b).await;
    let mut on_b = b.client(None).await;
    on_b.subscribe_ok(&["news"]).await;

    // Not sampled: no traceparent at ratio 0, and a traceparent whose sampled flag is off.
    assert_eq!(a.publish("news", json!(1)).await.status, 200);
    let unsampled = format!("00-{TRACE_ID}-{PARENT_ID}-00");
    let body = br#"{"channel":"news","data":2}"#;
    let reply = a
        .post("/v1/publish", &[("traceparent", &unsampled)], body)
        .await;
    assert_eq!(reply.status, 200);
    // Sampled by the caller.
    let sampled = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let body = br#"{"channel":"news","data":3}"#;
    let reply = a
        .post("/v1/publish", &[("traceparent", &sampled)], body)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let offset = reply.json()["offset"].clone();
    for n in 1..=3 {
        assert_eq!(on_b.next_push().await["data"], json!(n));
    }

    let publish = span(&receiver, "herald.publish", TRACE_ID).await;
    assert_eq!(
        publish.parent_span_id, PARENT_ID,
        "a child of the caller's span"
    );
    assert_eq!(publish.instance, node_a);
    assert_eq!(publish.attribute("herald.publish.path"), Some("http"));
    assert_eq!(
        publish.attribute("messaging.destination.name"),
        Some("news")
    );
    assert_eq!(
        publish.attribute("herald.offset"),
        Some(&*offset.to_string())
    );

    let deliver = span(&receiver, "herald.deliver", TRACE_ID).await;
    assert_eq!(
        deliver.parent_span_id, publish.span_id,
        "under node A's publish"
    );
    assert_eq!(deliver.instance, node_b);
    assert_eq!(deliver.attribute("herald.deliveries"), Some("1"));
    assert_eq!(
        deliver.attribute("messaging.message.id"),
        publish.attribute("messaging.message.id")
    );
    assert!(deliver.attribute("herald.broker_delay_us").is_some());

    // The unsampled publications, which ended before these, left no spans at all.
    let spans = receiver.spans();
    assert!(
        spans.iter().all(|s| s.trace_id == TRACE_ID),
        "only the sampled publish is traced: {spans:#?}"
    );
    assert_eq!(spans.len(), 2, "{spans:#?}");
}

#[tokio::test]
async fn client_publishes_start_traces_and_a_bad_traceparent_starts_a_new_one() {
    let receiver = OtlpReceiver::start().await;
    let (config, node) = traced(test_config(), &receiver, 1.0);
    let gw = TestGateway::start_with(config).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;

    let ok = c
        .request(
            "publish",
            json!({"channel": "news", "data": "from a client"}),
        )
        .await;
    assert!(ok.get("ok").is_some(), "{ok}");
    c.next_push().await;
    let bad = "00-not-a-trace-context-01";
    let body = br#"{"channel":"news","data":"bad traceparent"}"#;
    let reply = gw.post("/v1/publish", &[("traceparent", bad)], body).await;
    assert_eq!(
        reply.status, 200,
        "a bad traceparent never costs the publication"
    );
    c.next_push().await;

    let publishes = || {
        receiver
            .spans()
            .into_iter()
            .filter(|s| s.name == "herald.publish")
            .collect::<Vec<_>>()
    };
    eventually(WAIT, "two publish spans", || async {
        publishes().len() == 2
    })
    .await;
    for path in ["client", "http"] {
        let publish = publishes()
            .into_iter()
            .find(|s| s.attribute("herald.publish.path") == Some(path))
            .expect(path);
        assert_eq!(
            publish.parent_span_id, "",
            "{path}: the root of a new trace"
        );
        assert_eq!(publish.instance, node);
        let deliver = span(&receiver, "herald.deliver", &publish.trace_id).await;
        assert_eq!(deliver.parent_span_id, publish.span_id, "{path}");
        assert_eq!(deliver.attribute("herald.deliveries"), Some("1"));
    }
}

#[tokio::test]
async fn an_endpoint_with_the_path_works_and_a_refusing_collector_is_counted() {
    // The URL many collectors' docs show, path included.
    let receiver = OtlpReceiver::start().await;
    let (mut config, _) = traced(test_config(), &receiver, 1.0);
    config.telemetry.otlp_endpoint = Some(format!("{}/v1/traces", receiver.endpoint));
    let gw = TestGateway::start_with(config).await;
    assert_eq!(gw.publish("news", json!(1)).await.status, 200);
    eventually(WAIT, "the span arrived", || async {
        receiver.spans().iter().any(|s| s.name == "herald.publish")
    })
    .await;
    assert_eq!(gw.metric("herald_trace_exports_failed_total").await, 0.0);

    // A collector that answers 404: every lost batch is counted.
    let (mut config, _) = traced(test_config(), &receiver, 1.0);
    config.telemetry.otlp_endpoint = Some(format!("{}/elsewhere", receiver.endpoint));
    let lost = TestGateway::start_with(config).await;
    let before = receiver.spans().len();
    assert_eq!(lost.publish("news", json!(1)).await.status, 200);
    eventually(WAIT, "the failed export counted", || async {
        lost.metric("herald_trace_exports_failed_total").await >= 1.0
    })
    .await;
    assert_eq!(receiver.spans().len(), before, "nothing arrived");
}

#[test]
fn bad_telemetry_settings_are_refused() {
    for (key, value) in [
        ("telemetry.sample_ratio", "1.5"),
        ("telemetry.otlp_endpoint", "\"collector:4318\""),
        ("telemetry.otlp_endpoint", "\"https://collector:4318\""),
        ("telemetry.export_interval", "\"0s\""),
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let toml = format!("[{section}]\n{name} = {value}\n");
        let dir = std::env::temp_dir().join(format!("herald-telemetry-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("herald.toml");
        std::fs::write(&path, toml).unwrap();
        let err = GatewayConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains(key), "{key} = {value}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

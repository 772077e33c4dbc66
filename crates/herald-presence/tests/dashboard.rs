//! deploy/grafana/herald-dashboard.json parses and asks only for metrics that a gateway and a
//! presence service really serve.

use std::collections::BTreeSet;

use herald_testkit::{test_config, RedisServer, ServiceProcess, TestGateway};

fn names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `herald_...` identifier in a PromQL expression, histogram suffixes removed.
fn referenced(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("herald_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.push(base.to_owned());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn the_dashboard_uses_only_metrics_that_exist() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/herald-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");

    let gw = TestGateway::start_with(test_config()).await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let presence = ServiceProcess::presence(&[("HERALD__REDIS__URL", url.as_str())]).await;
    let mut served = names(&gw.get("/metrics").await.text());
    served.extend(names(&presence.get("/metrics").await.text()));
    assert!(
        served.contains("herald_connections_closed_total"),
        "{served:?}"
    );

    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let names = referenced(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            for name in names {
                assert!(served.contains(&name), "{name} (in {expr:?}) is not served");
                used.insert(name);
            }
        }
    }
    assert!(used.len() >= 20, "{used:?}");
    gw.stop().await;
}

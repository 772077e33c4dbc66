//! The server API beside publishing: `GET /v1/channels` (cluster-wide, a page at a time, with
//! counts) and `POST /v1/broadcast` (one publication to many channels), on two gateways over
//! a real redis-server.

use std::time::Duration;

use herald_testkit::{eventually, redis_config, RedisServer, TestGateway, WsClient};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

async fn two_gateways(redis: &RedisServer) -> (TestGateway, TestGateway) {
    // A presence namespace: the nodes keep the cluster's table in Redis, where counts add up.
    let mut config = redis_config(&redis.url());
    let room = herald_gateway::config::NamespaceConfig {
        presence: true,
        ..Default::default()
    };
    config.namespaces.insert("room".into(), room);
    config.namespaces.insert(
        "chat".into(),
        herald_gateway::config::NamespaceConfig::default(),
    );
    let a = TestGateway::start_with(config.clone()).await;
    let b = TestGateway::start_with(config).await;
    a.wait_ready(WAIT).await;
    b.wait_ready(WAIT).await;
    (a, b)
}

fn listed(body: &Value) -> Vec<(String, u64)> {
    body["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| {
            let name = c["channel"].as_str().expect("a name").to_owned();
            let count = c["subscriptions"].as_u64();
            (name, count.unwrap_or_else(|| panic!("a count: {body}")))
        })
        .collect()
}

#[tokio::test]
async fn channels_lists_the_cluster_s_channels_with_their_counts_a_page_at_a_time() {
    let redis = RedisServer::start().await;
    let (a, b) = two_gateways(&redis).await;
    let mut clients: Vec<WsClient> = Vec::new();
    for (gw, channel) in [
        (&a, "chat:a"),
        (&a, "chat:a"),
        (&b, "chat:a"),
        (&b, "chat:b"),
        (&a, "news"),
    ] {
        let mut c = gw.client(None).await;
        c.subscribe_ok(&[channel]).await;
        clients.push(c);
    }
    let all = vec![
        ("chat:a".into(), 3),
        ("chat:b".into(), 1),
        ("news".into(), 1),
    ];
    eventually(
        WAIT,
        "every channel with its cluster-wide count",
        || async {
            let r = b.get("/v1/channels").await;
            r.status == 200 && listed(&r.json()) == all && r.json()["next_cursor"].is_null()
        },
    )
    .await;
    let chat = a.get("/v1/channels?prefix=chat%3A").await.json();
    assert_eq!(listed(&chat), all[..2]);
    let first = a.get("/v1/channels?limit=2").await.json();
    assert_eq!(listed(&first), all[..2]);
    assert_eq!(first["next_cursor"], "chat:b");
    let rest = a.get("/v1/channels?limit=2&cursor=chat%3Ab").await.json();
    assert_eq!(listed(&rest), all[2..]);
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=5000", "sort=name"] {
        let r = a.get(&format!("/v1/channels?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], 101);
    }
    let r = a.post("/v1/channels", &[], b"").await;
    assert_eq!(r.status, 405);
    // Gone when its last subscriber leaves.
    clients.truncate(1);
    eventually(WAIT, "only chat:a left", || async {
        listed(&a.get("/v1/channels").await.json()) == [("chat:a".to_owned(), 1)]
    })
    .await;
}

#[tokio::test]
async fn broadcast_publishes_once_to_each_channel() {
    let redis = RedisServer::start().await;
    let (a, b) = two_gateways(&redis).await;
    let mut on_a = a.client(None).await;
    on_a.subscribe_ok(&["chat:a", "news"]).await;
    let mut on_b = b.client(None).await;
    on_b.subscribe_ok(&["chat:b"]).await;
    let body = json!({"channels": ["chat:a", "news", "chat:b", "chat:a"], "data": {"x": 1}, "event": "note"});
    let r = a
        .post("/v1/broadcast", &[], body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().expect("results").clone();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chat:a", "news", "chat:b"], "each channel once");
    assert!(results
        .iter()
        .all(|r| r["offset"] == 1 && r["epoch"].is_string()));
    let mut got = Vec::new();
    for _ in 0..2 {
        let push = on_a.next_push().await;
        got.push(push["channel"].as_str().unwrap().to_owned());
        assert_eq!(push["data"], json!({"x": 1}));
        assert_eq!(push["event"], "note");
    }
    got.sort();
    assert_eq!(got, ["chat:a", "news"]);
    assert_eq!(on_b.next_push().await["channel"], "chat:b");

    // Bad input publishes nothing.
    let bad = json!({"channels": ["news", "bad name"], "data": 2});
    let r = a
        .post("/v1/broadcast", &[], bad.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("channels[1]"));
    let none = json!({"channels": [], "data": 2});
    assert_eq!(
        a.post("/v1/broadcast", &[], none.to_string().as_bytes())
            .await
            .status,
        400
    );
    let many: Vec<String> = (0..1001).map(|i| format!("c{i}")).collect();
    let many = json!({"channels": many, "data": 2});
    assert_eq!(
        a.post("/v1/broadcast", &[], many.to_string().as_bytes())
            .await
            .status,
        400
    );
    assert_eq!(a.get("/v1/broadcast").await.status, 405);
    let history = a.get("/v1/history?channel=news").await.json();
    assert_eq!(
        history["offset"], 1,
        "nothing more was published: {history}"
    );
}

#[tokio::test]
async fn counts_are_given_only_where_they_are_the_cluster_s() {
    // On the embedded broker the node is the whole cluster.
    let one = TestGateway::start().await;
    let mut c = one.client(None).await;
    c.subscribe_ok(&["news"]).await;
    eventually(WAIT, "news counted", || async {
        listed(&one.get("/v1/channels").await.json()) == [("news".to_owned(), 1)]
    })
    .await;
    // Through Redis without a presence table, each node knows only its own: no counts.
    let redis = RedisServer::start().await;
    let gw = TestGateway::start_with(redis_config(&redis.url())).await;
    gw.wait_ready(WAIT).await;
    let mut c = gw.client(None).await;
    c.subscribe_ok(&["news"]).await;
    let body = gw.get("/v1/channels").await.json();
    assert_eq!(body["channels"], json!([{"channel": "news"}]), "{body}");
}

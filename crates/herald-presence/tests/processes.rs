//! Presence with real processes: `herald-gateway` and `herald-presence` binaries over a real
//! redis-server, killed with SIGKILL, restarted, and run as several replicas.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use herald_broker_redis::{Endpoint, RedisOptions, RedisPresence};
use herald_protocol::{ChannelName, NodeId};
use herald_testkit::{
    eventually, Incoming, RedisCluster, RedisServer, ServiceProcess, WsClient, WAIT,
};
use serde_json::{json, Value};

/// Short timings for the tests that are not about the defaults.
const FAST: &[(&str, &str)] = &[
    ("HERALD__PRESENCE__LEASE", "1s"),
    ("HERALD__PRESENCE__HEARTBEAT_INTERVAL", "250ms"),
];

async fn gateway(redis: &RedisServer, extra: &[(&str, &str)]) -> ServiceProcess {
    let url = redis.url();
    let mut env = vec![
        ("HERALD__BROKER__KIND", "redis"),
        ("HERALD__BROKER__REDIS__URL", url.as_str()),
        ("HERALD__NAMESPACES__ROOM__PRESENCE", "true"),
        ("HERALD__SHUTDOWN__DRAIN_WINDOW", "100ms"),
    ];
    env.extend_from_slice(extra);
    let gw = ServiceProcess::gateway(&env).await;
    eventually(WAIT, "the gateway is ready", || async {
        gw.get("/readyz").await.status == 200
    })
    .await;
    gw
}

async fn presence(redis: &RedisServer, interval: &str) -> ServiceProcess {
    let url = redis.url();
    let service = ServiceProcess::presence(&[
        ("HERALD__REDIS__URL", url.as_str()),
        ("HERALD__EXPIRY__INTERVAL", interval),
    ])
    .await;
    eventually(WAIT, "the presence service is ready", || async {
        service.get("/readyz").await.status == 200
    })
    .await;
    service
}

async fn member(gw: &ServiceProcess, user: &str, channels: &[&str]) -> WsClient {
    let mut c = WsClient::connect(&format!("{}?user={user}", gw.ws_url()), None)
        .await
        .expect("connect");
    c.subscribe_ok(channels).await;
    c
}

/// Reads presence notices until `until` returns true of everything seen, or `within` passes.
/// Returns every notice, as ("join" | "leave", user).
async fn notices_until(
    c: &mut WsClient,
    within: Duration,
    until: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while !until(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_within(left).await {
            Ok(Incoming::Frame(v)) => seen.push(notice(&v)),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("{e}; seen so far: {seen:?}"),
        }
    }
    seen
}

fn notice(v: &Value) -> (String, String) {
    for kind in ["join", "leave"] {
        if let Some(user) = v[kind]["user"].as_str() {
            return (kind.to_string(), user.to_string());
        }
    }
    panic!("not a presence notice: {v}");
}

fn count(seen: &[(String, String)], kind: &str, user: &str) -> usize {
    seen.iter().filter(|(k, u)| k == kind && u == user).count()
}

async fn assert_quiet(c: &mut WsClient, wait: Duration) {
    match c.next_within(wait).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

fn users(body: &Value) -> Vec<String> {
    body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["user"].as_str().expect("user").to_string())
        .collect()
}

async fn metric(p: &ServiceProcess, name: &str) -> f64 {
    let text = p.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The default timings (lease 10 s, heartbeat 2 s, expiry every 1 s): a gateway killed with
/// SIGKILL; every member that was only there leaves once, on every other node, within 15 s.
#[tokio::test]
async fn kill_9_of_a_gateway_gives_one_leave_per_lost_member_within_the_bound() {
    let redis = RedisServer::start().await;
    let _service = presence(&redis, "1s").await;
    let a = gateway(&redis, &[]).await;
    let mut b = gateway(&redis, &[]).await;
    let c = gateway(&redis, &[]).await;

    let mut on_a = member(&a, "w1", &["room:1"]).await;
    let mut on_c = member(&c, "w2", &["room:1"]).await;
    let _alice = member(&b, "alice", &["room:1"]).await;
    let _bob = member(&b, "bob", &["room:1"]).await;
    // Carol is on the doomed node and on A: she stays.
    let _carol_b = member(&b, "carol", &["room:1"]).await;
    let _carol_a = member(&a, "carol", &["room:1"]).await;
    let joined = |s: &[(String, String)]| {
        ["w2", "alice", "bob", "carol"]
            .iter()
            .all(|u| count(s, "join", u) == 1)
    };
    notices_until(&mut on_a, WAIT, joined).await;
    notices_until(&mut on_c, WAIT, |s| {
        ["alice", "bob", "carol"]
            .iter()
            .all(|u| count(s, "join", u) == 1)
    })
    .await;

    b.kill();
    let killed = Instant::now();
    let left = |s: &[(String, String)]| count(s, "leave", "alice") + count(s, "leave", "bob") == 2;
    let seen_a = notices_until(&mut on_a, Duration::from_secs(20), left).await;
    let at_a = killed.elapsed();
    let seen_c = notices_until(&mut on_c, Duration::from_secs(20), left).await;
    let at_c = killed.elapsed();
    eprintln!("kill -9 to the last leave: {at_a:?} on A, {at_c:?} on C");
    assert!(at_c <= Duration::from_secs(15), "took {at_c:?}");
    for seen in [&seen_a, &seen_c] {
        assert_eq!(seen.len(), 2, "only the two leaves: {seen:?}");
    }
    // Nothing more: no second leave, and carol stays.
    assert_quiet(&mut on_a, Duration::from_millis(2500)).await;
    assert_quiet(&mut on_c, Duration::from_millis(100)).await;
    for node in [&a, &c] {
        let members = node.get("/v1/channels/room:1/presence").await.json();
        assert_eq!(users(&members), ["carol", "w1", "w2"]);
    }
}

/// Two presence replicas expire side by side: each lost member leaves once, and between them
/// the replicas removed the dead node once.
#[tokio::test]
async fn two_presence_replicas_give_no_duplicate_events() {
    let redis = RedisServer::start().await;
    let one = presence(&redis, "20ms").await;
    let two = presence(&redis, "20ms").await;
    let a = gateway(&redis, FAST).await;
    let mut b = gateway(&redis, FAST).await;

    let mut watcher = member(&a, "w", &["room:1"]).await;
    let mut lost = Vec::new();
    for i in 0..40 {
        let channels: &[&str] = if i < 10 {
            &["room:1", "room:2"]
        } else {
            &["room:1"]
        };
        lost.push(member(&b, &format!("u{i:02}"), channels).await);
    }
    notices_until(&mut watcher, WAIT, |s| s.len() == 41).await;
    let before_nodes = metric(&one, "herald_presence_nodes_expired_total").await
        + metric(&two, "herald_presence_nodes_expired_total").await;

    b.kill();
    let seen = notices_until(&mut watcher, Duration::from_secs(10), |s| s.len() == 40).await;
    let mut per_user = BTreeMap::new();
    for (kind, user) in &seen {
        assert_eq!(kind, "leave");
        *per_user.entry(user.clone()).or_insert(0) += 1;
    }
    assert_eq!(per_user.len(), 40, "{seen:?}");
    assert!(per_user.values().all(|&n| n == 1));
    assert_quiet(&mut watcher, Duration::from_millis(500)).await;

    let nodes = metric(&one, "herald_presence_nodes_expired_total").await
        + metric(&two, "herald_presence_nodes_expired_total").await;
    let leaves = metric(&one, "herald_presence_expired_leaves_total").await
        + metric(&two, "herald_presence_expired_leaves_total").await;
    assert_eq!(nodes - before_nodes, 1.0);
    assert_eq!(leaves, 50.0, "40 in room:1 and 10 in room:2");
    assert!(metric(&one, "herald_presence_expiry_runs_total").await > 1.0);
    assert!(metric(&two, "herald_presence_expiry_runs_total").await > 1.0);
    drop(lost);
}

/// The presence service killed: pub/sub and joins and leaves go on (gateways write the table
/// themselves); only the expiry of dead nodes waits, and it catches up when the service returns.
#[tokio::test]
async fn presence_service_restart_loses_nothing() {
    let redis = RedisServer::start().await;
    let mut service = presence(&redis, "50ms").await;
    let a = gateway(&redis, FAST).await;
    let mut b = gateway(&redis, FAST).await;
    let mut watcher = member(&a, "w", &["room:1", "news"]).await;
    notices_until(&mut watcher, WAIT, |s| s.len() == 1).await;

    service.kill();
    assert!(service.log_text().contains("presence service running"));

    // Publishing still works, across nodes.
    let published = herald_testkit::http_request(
        b.api(),
        "POST",
        "/v1/publish",
        &[],
        br#"{"channel":"news","data":"still here"}"#,
    )
    .await
    .unwrap();
    assert_eq!(published.status, 200, "{}", published.text());
    assert_eq!(watcher.next_push().await["data"], "still here");
    // Joins and leaves still flow.
    let dave = member(&b, "dave", &["room:1"]).await;
    let erin = member(&b, "erin", &["room:1"]).await;
    notices_until(&mut watcher, WAIT, |s| s.len() == 2).await;
    erin.close().await;
    let seen = notices_until(&mut watcher, WAIT, |s| s.len() == 1).await;
    assert_eq!(seen, [("leave".to_string(), "erin".to_string())]);

    // A node dies while no service runs: its member stays until the service is back.
    b.kill();
    assert_quiet(&mut watcher, Duration::from_millis(2000)).await;
    let members = a.get("/v1/channels/room:1/presence").await.json();
    assert_eq!(users(&members), ["dave", "w"]);

    service.restart().await;
    let seen = notices_until(&mut watcher, WAIT, |s| !s.is_empty()).await;
    assert_eq!(seen, [("leave".to_string(), "dave".to_string())]);
    assert_quiet(&mut watcher, Duration::from_millis(500)).await;
    let members = service.get("/v1/channels/room:1/presence").await.json();
    assert_eq!(users(&members), ["w"]);
    drop(dave);
}

/// Redis itself restarted empty: every gateway notices that the table forgot it and reports
/// its members again, so the table is whole again.
#[tokio::test]
async fn after_a_redis_restart_every_gateway_reports_its_members_again() {
    let mut redis = RedisServer::start().await;
    let service = presence(&redis, "50ms").await;
    let a = gateway(&redis, FAST).await;
    let b = gateway(&redis, FAST).await;
    let _x = member(&a, "x", &["room:1"]).await;
    let _y = member(&b, "y", &["room:1"]).await;
    let _z = member(&b, "z", &["room:1", "room:2"]).await;

    redis.restart().await;
    assert_eq!(redis.cli(&["EXISTS", "herald:{presence}:nodes"]), "0");
    eventually(
        Duration::from_secs(10),
        "the table is whole again",
        || async {
            let r = service.get("/v1/channels/room:1/presence").await;
            r.status == 200 && users(&r.json()) == ["x", "y", "z"]
        },
    )
    .await;
    let r = service
        .get("/v1/channels/room:2/presence/stats")
        .await
        .json();
    assert_eq!(r, json!({"channel": "room:2", "count": 1}));
    // The gateways' own account of it: calls on the dead connection failed, the table had
    // forgotten them, and they reported again.
    for gw in [&a, &b] {
        assert!(metric(gw, "herald_presence_failures_total").await >= 1.0);
        assert!(metric(gw, "herald_presence_resyncs_total").await >= 1.0);
        assert!(metric(gw, "herald_presence_reports_total").await >= 1.0);
    }
}

/// A channel of 10,000 members (plus one real connection) is listed completely, in order, by
/// a gateway's HTTP API, its WebSocket and the presence service; when their node goes, each
/// of the 10,000 leaves once.
#[tokio::test]
async fn a_member_list_of_ten_thousand_is_served_correctly() {
    const N: usize = 10_000;
    let redis = RedisServer::start().await;
    let service = presence(&redis, "1s").await;
    let a = gateway(&redis, &[]).await;

    // A node reporting 10,000 members through the same functions the gateways call.
    let options = RedisOptions::new(
        vec![Endpoint::parse(&redis.url()).unwrap()],
        "herald:",
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    let table = RedisPresence::new(&options, herald_broker_redis::TableMode::Standalone);
    let node = NodeId::random();
    assert!(!table
        .heartbeat(node, Duration::from_secs(60))
        .await
        .unwrap());
    let channel = ChannelName::parse("room:big").unwrap();
    for i in 0..N {
        let info = format!(r#"{{"n":{i}}}"#);
        table
            .join(node, &channel, &format!("u{i:05}"), info.as_bytes())
            .await
            .unwrap();
    }
    let mut watcher = member(&a, "w", &["room:big"]).await;
    notices_until(&mut watcher, WAIT, |s| s.len() == 1).await;

    let check = |body: &Value| {
        let members = body["members"].as_array().expect("members");
        assert_eq!(members.len(), N + 1);
        for (i, m) in members.iter().take(N).enumerate() {
            assert_eq!(m, &json!({"user": format!("u{i:05}"), "info": {"n": i}}));
        }
        assert_eq!(members[N], json!({"user": "w", "info": null}));
    };
    check(&a.get("/v1/channels/room:big/presence").await.json());
    check(&service.get("/v1/channels/room:big/presence").await.json());
    check(
        &watcher
            .request("presence", json!({"channel": "room:big"}))
            .await["ok"],
    );
    let stats = json!({"channel": "room:big", "count": N + 1});
    assert_eq!(
        service
            .get("/v1/channels/room:big/presence/stats")
            .await
            .json(),
        stats
    );
    assert_eq!(
        a.get("/v1/channels/room:big/presence/stats").await.json(),
        stats
    );

    assert_eq!(table.node_gone(node).await.unwrap(), N as u64);
    let seen = notices_until(&mut watcher, Duration::from_secs(20), |s| s.len() == N).await;
    let mut left: Vec<&str> = seen
        .iter()
        .map(|(kind, user)| {
            assert_eq!(kind, "leave");
            user.as_str()
        })
        .collect();
    left.sort_unstable();
    left.dedup();
    assert_eq!(left.len(), N);
    assert_quiet(&mut watcher, Duration::from_millis(300)).await;
}

/// The service's own API: bad channel names, API keys, unknown routes and methods.
#[tokio::test]
async fn the_service_refuses_bad_requests_clearly() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let service = ServiceProcess::presence(&[
        ("HERALD__REDIS__URL", url.as_str()),
        ("HERALD__API__KEYS", "k1"),
    ])
    .await;
    let api = service.api();
    let get = |path: &'static str, auth: Option<&'static str>| async move {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        herald_testkit::http_request(api, "GET", path, &headers, b"")
            .await
            .unwrap()
    };
    assert_eq!(get("/v1/channels/room:1/presence", None).await.status, 401);
    assert_eq!(
        get("/v1/channels/room:1/presence", Some("Bearer nope"))
            .await
            .status,
        401
    );
    let ok = get("/v1/channels/room:1/presence", Some("Bearer k1")).await;
    assert_eq!(ok.json(), json!({"channel": "room:1", "members": []}));
    let bad = get("/v1/channels/bad%20name/presence", Some("Bearer k1")).await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert_eq!(bad.json()["error"]["code"], 102);
    assert_eq!(get("/v1/nothing", None).await.status, 404);
    let post = herald_testkit::http_request(api, "POST", "/v1/channels/a/presence", &[], b"")
        .await
        .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(get("/healthz", None).await.status, 200);
    // HEAD answers as GET, without the body.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let text = herald_testkit::head_request(api, path).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
        assert!(text.ends_with("\r\n\r\n"), "{path}: no body: {text}");
    }

    // Redis gone: not ready, and queries fail with 503 instead of hanging.
    drop(redis);
    eventually(WAIT, "not ready without Redis", || async {
        get("/readyz", None).await.status == 503
    })
    .await;
    let down = get("/v1/channels/room:1/presence/stats", Some("Bearer k1")).await;
    assert_eq!(down.status, 503, "{}", down.text());
}

#[test]
fn check_config_names_the_bad_key() {
    let bin = herald_testkit::workspace_binary("herald-presence");
    let ok = std::process::Command::new(&bin)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(ok.status.success());
    let bad = std::process::Command::new(&bin)
        .arg("--check-config")
        .env("HERALD__EXPIRY__INTERVAL", "0s")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expiry.interval"));
}

/// The same on a Redis Cluster (3 masters): gateways and the presence service in cluster
/// mode, a gateway killed with SIGKILL, its members leaving once each on the other node.
#[tokio::test]
async fn on_a_redis_cluster_a_killed_gateway_s_members_leave_once() {
    let cluster = RedisCluster::start(3, 0).await;
    let urls = cluster.urls();
    let service = ServiceProcess::presence(&[
        ("HERALD__REDIS__MODE", "cluster"),
        ("HERALD__REDIS__URL", urls.as_str()),
        ("HERALD__EXPIRY__INTERVAL", "200ms"),
    ])
    .await;
    eventually(WAIT, "the presence service is ready", || async {
        service.get("/readyz").await.status == 200
    })
    .await;
    let env = [
        ("HERALD__BROKER__KIND", "redis"),
        ("HERALD__BROKER__REDIS__MODE", "cluster"),
        ("HERALD__BROKER__REDIS__URL", urls.as_str()),
        ("HERALD__NAMESPACES__ROOM__PRESENCE", "true"),
        ("HERALD__SHUTDOWN__DRAIN_WINDOW", "100ms"),
        FAST[0],
        FAST[1],
    ];
    let a = ServiceProcess::gateway(&env).await;
    let mut b = ServiceProcess::gateway(&env).await;
    for gw in [&a, &b] {
        eventually(WAIT, "the gateway is ready", || async {
            gw.get("/readyz").await.status == 200
        })
        .await;
    }
    let mut watcher = member(&a, "w", &["room:1"]).await;
    let _alice = member(&b, "alice", &["room:1"]).await;
    let _bob = member(&b, "bob", &["room:7"]).await;
    let _bob_here = member(&b, "bob", &["room:1"]).await;
    notices_until(&mut watcher, WAIT, |s| {
        ["w", "alice", "bob"]
            .iter()
            .all(|u| count(s, "join", u) == 1)
    })
    .await;

    b.kill();
    let killed = Instant::now();
    let seen = notices_until(&mut watcher, Duration::from_secs(10), |s| {
        count(s, "leave", "alice") + count(s, "leave", "bob") == 2
    })
    .await;
    eprintln!("cluster: kill -9 to the last leave: {:?}", killed.elapsed());
    assert_eq!(seen.len(), 2, "only the two leaves: {seen:?}");
    assert_quiet(&mut watcher, Duration::from_millis(800)).await;
    let members = a.get("/v1/channels/room:1/presence").await.json();
    assert_eq!(users(&members), ["w"]);
    let served = service
        .get("/v1/channels/room:7/presence/stats")
        .await
        .json();
    assert_eq!(served["count"], 0, "the service reads the same table");
    assert!(metric(&service, "herald_presence_nodes_expired_total").await >= 1.0);
}

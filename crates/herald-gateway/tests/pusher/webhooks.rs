//! Pusher webhooks received by a test HTTP server: occupancy, members and client events once
//! each across two nodes, signed; retries with backoff and giving up; events a crashed node
//! had taken delivered by another, with its members and channels leaving once; bad settings.

use std::time::Duration;

use herald_gateway::config::{GatewayConfig, PusherApp, WebhookConfig};
use herald_pusher::signature;
use herald_testkit::{
    eventually, redis_config, test_config, RedisServer, ServiceProcess, TestGateway,
    WebhookReceiver, WAIT,
};
use serde_json::{json, Value};

use super::{join_presence, join_presence_at, pusher_client, ID, KEY, SECRET};

fn hook(url: &str, kinds: &[&str]) -> WebhookConfig {
    WebhookConfig {
        url: url.to_owned(),
        event_types: kinds.iter().map(|k| (*k).to_owned()).collect(),
        channels: Vec::new(),
    }
}

const ALL: &[&str] = &[
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
];

/// The app with `hooks`, retrying quickly.
fn with_hooks(mut config: GatewayConfig, hooks: Vec<WebhookConfig>) -> GatewayConfig {
    config.pusher.apps = vec![PusherApp {
        webhooks: hooks,
        client_events: true,
        ..PusherApp::new(ID, KEY, SECRET)
    }];
    config.pusher.webhook_retry = Duration::from_millis(100);
    config
}

/// Every request `receiver` got is signed for the app, as JSON.
fn assert_signed(receiver: &WebhookReceiver) {
    for r in receiver.requests() {
        assert_eq!(r.key, KEY);
        assert_eq!(r.content_type, "application/json");
        assert!(
            signature::verify(SECRET, &r.body, &r.signature),
            "bad signature on {}",
            r.body
        );
    }
}

fn member(name: &str, user: &str) -> Value {
    json!({"name": name, "channel": "presence-room", "user_id": user})
}

/// How many delivered events equal `event`.
fn times(receiver: &WebhookReceiver, event: &Value) -> usize {
    receiver.delivered().iter().filter(|e| *e == event).count()
}

#[tokio::test]
async fn occupancy_members_and_client_events_are_delivered_once_across_nodes() {
    let redis = RedisServer::start().await;
    let all = WebhookReceiver::start().await;
    let clients_only = WebhookReceiver::start().await;
    let hooks = || {
        vec![
            hook(&all.url, ALL),
            hook(&clients_only.url, &["client_event"]),
        ]
    };
    let a = TestGateway::start_with(with_hooks(redis_config(&redis.url()), hooks())).await;
    let b = TestGateway::start_with(with_hooks(redis_config(&redis.url()), hooks())).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }

    let (ann, _) = join_presence(&a, "presence-room", "ann").await;
    let (mut bob, _) = join_presence(&b, "presence-room", "bob").await;
    let occupied = json!({"name": "channel_occupied", "channel": "presence-room"});
    eventually(WAIT, "occupied, and both members added", || async {
        times(&all, &occupied) == 1
            && times(&all, &member("member_added", "ann")) == 1
            && times(&all, &member("member_added", "bob")) == 1
    })
    .await;

    // A client event: to the hooks that want it, with its sender and (on a presence
    // channel) the sender's user id.
    bob.send(&json!({"event": "client-typing", "channel": "presence-room", "data": {"on": true}}))
        .await;
    eventually(WAIT, "the client event", || async {
        clients_only.delivered().len() == 1 && all.delivered_named("client_event", None).len() == 1
    })
    .await;
    let event = &clients_only.delivered()[0];
    assert_eq!(event["name"], "client_event");
    assert_eq!(event["channel"], "presence-room");
    assert_eq!(event["event"], "client-typing");
    assert_eq!(event["user_id"], "bob");
    assert_eq!(
        serde_json::from_str::<Value>(event["data"].as_str().unwrap()).unwrap(),
        json!({"on": true})
    );
    assert!(
        herald_pusher::SocketId::parse(event["socket_id"].as_str().unwrap()).is_some(),
        "{event}"
    );

    // Leaving: bob from node B, then ann, the last, from node A.
    drop(bob);
    eventually(WAIT, "bob removed", || async {
        times(&all, &member("member_removed", "bob")) == 1
    })
    .await;
    drop(ann);
    let vacated = json!({"name": "channel_vacated", "channel": "presence-room"});
    eventually(WAIT, "ann removed and the channel vacated", || async {
        times(&all, &member("member_removed", "ann")) == 1 && times(&all, &vacated) == 1
    })
    .await;

    // Two nodes deliver, yet every event came once, signed, and only where it was wanted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(all.delivered().len(), 7, "{:#?}", all.delivered());
    assert_eq!(clients_only.delivered().len(), 1);
    assert_signed(&all);
    assert_signed(&clients_only);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_growing_waits_then_given_up() {
    let receiver = WebhookReceiver::start().await;
    let mut config = with_hooks(test_config(), vec![hook(&receiver.url, ALL)]);
    config.pusher.webhook_attempts = 3;
    let gw = TestGateway::start_with(config).await;

    // Two failures, then the third attempt is taken.
    receiver.fail_next(2);
    let (mut c, _) = pusher_client(&gw, KEY).await;
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    assert_eq!(
        c.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let occupied = json!({"name": "channel_occupied", "channel": "news"});
    eventually(WAIT, "occupied, at the third attempt", || async {
        times(&receiver, &occupied) == 1
    })
    .await;
    let tries = receiver.requests();
    assert_eq!(tries.len(), 3);
    assert_eq!(
        tries.iter().map(|r| r.accepted).collect::<Vec<_>>(),
        [false, false, true]
    );
    // The same request each time, the wait doubling from `webhook_retry` (100 ms).
    assert!(tries.iter().all(|r| r.body == tries[0].body));
    assert!(tries[1].at - tries[0].at >= Duration::from_millis(100));
    assert!(tries[2].at - tries[1].at >= Duration::from_millis(200));

    // A receiver that stays down: three attempts, then the event is given up and counted.
    receiver.set_down(true);
    c.send(&json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}))
        .await;
    eventually(WAIT, "given up after three attempts", || async {
        gw.metric("herald_webhook_events_total{outcome=\"given_up\"}")
            .await
            == 1.0
    })
    .await;
    assert_eq!(receiver.requests().len(), 6);
    assert_eq!(
        gw.metric("herald_webhook_events_total{outcome=\"retried\"}")
            .await,
        4.0
    );
    assert_eq!(
        gw.metric("herald_webhook_events_total{outcome=\"delivered\"}")
            .await,
        1.0
    );
    assert_signed(&receiver);
}

/// A gateway process whose webhooks go to `url`, with a short lease.
async fn hooked_process(redis: &RedisServer, url: &str) -> ServiceProcess {
    let toml = format!(
        "[broker]\nkind = \"redis\"\n[broker.redis]\nurl = \"{}\"\n\
         [presence]\nlease = \"1s\"\nheartbeat_interval = \"250ms\"\n\
         [pusher]\nwebhook_retry = \"100ms\"\nwebhook_attempts = 1000\n\
         [[pusher.apps]]\nid = \"{ID}\"\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n\
         [[pusher.apps.webhooks]]\nurl = \"{url}\"\n",
        redis.url()
    );
    let gw = ServiceProcess::gateway_with_config(&toml, &[]).await;
    eventually(WAIT, "the gateway is ready", || async {
        gw.get("/readyz").await.status == 200
    })
    .await;
    gw
}

#[tokio::test]
async fn events_a_crashed_node_had_taken_are_delivered_by_another_and_its_members_leave_once() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let _service = ServiceProcess::presence(&[
        ("HERALD__REDIS__URL", url.as_str()),
        ("HERALD__EXPIRY__INTERVAL", "250ms"),
    ])
    .await;
    let receiver = WebhookReceiver::start().await;
    receiver.set_down(true);

    // Node A takes the events of ann's join, and cannot deliver them.
    let mut a = hooked_process(&redis, &receiver.url).await;
    let addr = a.ws_url();
    let addr = addr
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let (_ann, _) = join_presence_at(&addr, "presence-room", "ann").await;
    eventually(WAIT, "node A tries to deliver", || async {
        receiver.requests().len() >= 2
    })
    .await;
    // A's subscription count is in the table, and counts while A lives.
    let table = {
        use herald_broker_redis::{Endpoint, RedisOptions, RedisPresence, TableMode};
        let endpoints = Endpoint::parse_list(&url).unwrap();
        let options =
            RedisOptions::new(endpoints, "herald:", Duration::from_secs(2), None).unwrap();
        RedisPresence::new(&options, TableMode::Standalone)
    };
    let room = [herald_protocol::ChannelName::parse("presence-room").unwrap()];
    eventually(WAIT, "A's subscription counted", || async {
        table.subscriptions(&room).await.unwrap() == [1]
    })
    .await;

    // A dies with the events taken; B takes them over, and A's lease running out removes
    // ann and vacates the channel, once each.
    a.kill();
    receiver.set_down(false);
    let mut config = with_hooks(redis_config(&url), vec![hook(&receiver.url, ALL)]);
    config.pusher.webhook_claim_after = Duration::from_secs(1);
    config.presence.lease = Duration::from_secs(1);
    config.presence.heartbeat_interval = Duration::from_millis(250);
    let b = TestGateway::start_with(config).await;
    b.wait_ready(WAIT).await;
    let occupied = json!({"name": "channel_occupied", "channel": "presence-room"});
    let vacated = json!({"name": "channel_vacated", "channel": "presence-room"});
    eventually(
        Duration::from_secs(20),
        "every event of ann's stay",
        || async {
            times(&receiver, &occupied) == 1
                && times(&receiver, &member("member_added", "ann")) == 1
                && times(&receiver, &member("member_removed", "ann")) == 1
                && times(&receiver, &vacated) == 1
        },
    )
    .await;
    // Its lease ran out: its subscriptions count no more.
    assert_eq!(table.subscriptions(&room).await.unwrap(), [0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.delivered().len(), 4, "{:#?}", receiver.delivered());
    assert_signed(&receiver);
}

#[test]
fn bad_webhook_settings_are_refused() {
    let check = |hooks: Vec<WebhookConfig>, edit: fn(&mut GatewayConfig)| {
        let mut config = with_hooks(test_config(), hooks);
        edit(&mut config);
        config.validate().err().map(|e| e.to_string())
    };
    let ok = || vec![hook("https://hooks.example.com/pusher", ALL)];
    assert_eq!(check(ok(), |_| {}), None);
    for (hooks, text) in [
        (
            vec![hook("ftp://example.com/x", ALL)],
            "not an http:// or https:// URL",
        ),
        (vec![hook("http://", ALL)], "not an http:// or https:// URL"),
        (
            vec![hook("http://example.com/", &["channel_existence"])],
            "unknown event type",
        ),
        (vec![hook("http://example.com/", &[])], "must not be empty"),
    ] {
        let error = check(hooks, |_| {}).expect("refused");
        assert!(error.contains(text), "{error}");
    }
    let error = check(ok(), |c| c.pusher.webhook_attempts = 0).expect("refused");
    assert!(error.contains("pusher.webhook_attempts"), "{error}");
    let error = check(ok(), |c| {
        c.pusher.webhook_claim_after = Duration::from_millis(10)
    })
    .expect("refused");
    assert!(error.contains("webhook_claim_after"), "{error}");
}

#[tokio::test]
async fn on_a_redis_cluster_each_event_is_delivered_once() {
    let cluster = herald_testkit::RedisCluster::start(3, 0).await;
    let receiver = WebhookReceiver::start().await;
    let config = || {
        with_hooks(
            herald_testkit::redis_cluster_config(&cluster),
            vec![hook(&receiver.url, ALL)],
        )
    };
    let a = TestGateway::start_with(config()).await;
    let b = TestGateway::start_with(config()).await;
    for gw in [&a, &b] {
        gw.wait_ready(Duration::from_secs(10)).await;
    }
    let (ann, _) = join_presence(&a, "presence-room", "ann").await;
    let (mut bob, _) = join_presence(&b, "presence-room", "bob").await;
    bob.send(&json!({"event": "client-hi", "channel": "presence-room", "data": "x"}))
        .await;
    eventually(
        WAIT,
        "occupied, both added, and the client event",
        || async { receiver.delivered().len() == 4 },
    )
    .await;
    drop((ann, bob));
    eventually(WAIT, "both removed and the channel vacated", || async {
        receiver.delivered().len() == 7
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names: Vec<Value> = receiver
        .delivered()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    for (name, n) in [
        ("channel_occupied", 1),
        ("member_added", 2),
        ("client_event", 1),
        ("member_removed", 2),
        ("channel_vacated", 1),
    ] {
        assert_eq!(names.iter().filter(|x| **x == name).count(), n, "{names:?}");
    }
    assert_signed(&receiver);
}

#[tokio::test]
async fn the_queue_forgets_consumers_of_gone_nodes_that_hold_nothing() {
    use herald_broker_redis::{Endpoint, RedisOptions, RedisPresence, TableMode};
    let redis = RedisServer::start().await;
    let endpoints = Endpoint::parse_list(&redis.url()).unwrap();
    let options = RedisOptions::new(endpoints, "herald:", Duration::from_secs(2), None).unwrap();
    let link = RedisPresence::new(&options, TableMode::Standalone);
    let node = herald_protocol::NodeId::random();
    link.heartbeat_with(node, Duration::from_secs(10), true)
        .await
        .unwrap();
    let group = "herald-webhooks:42:http://hooks.example/";
    link.webhook_group(group).await.unwrap();
    for channel in ["a", "b"] {
        let event = format!(r#"{{"name":"channel_occupied","channel":"{channel}"}}"#);
        link.webhook_add(&event).await.unwrap();
    }
    // "held" takes an event and keeps it; "gone" took one, delivered it, and went away.
    let block = Duration::from_millis(10);
    let taken = link.webhook_read(group, "held", 1, block).await.unwrap();
    assert_eq!(taken.len(), 1);
    let delivered = link.webhook_read(group, "gone", 1, block).await.unwrap();
    assert_eq!(delivered.len(), 1);
    link.webhook_ack(group, &[delivered[0].id.clone()])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let long = Duration::from_secs(3600);
    assert_eq!(
        link.webhook_forget_consumers(group, "me", long)
            .await
            .unwrap(),
        0
    );
    let short = Duration::from_millis(10);
    assert_eq!(
        link.webhook_forget_consumers(group, "me", short)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        link.webhook_forget_consumers(group, "me", short)
            .await
            .unwrap(),
        0
    );
    // What "held" holds is still its own, and can be acknowledged.
    let ids = vec![taken[0].id.clone()];
    link.webhook_ack(group, &ids).await.unwrap();
    assert!(link
        .webhook_claim(group, "me", Duration::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_holds_back_only_itself() {
    let redis = RedisServer::start().await;
    let (down, up) = (
        WebhookReceiver::start().await,
        WebhookReceiver::start().await,
    );
    down.set_down(true);
    let mut config = with_hooks(
        redis_config(&redis.url()),
        vec![hook(&down.url, ALL), hook(&up.url, ALL)],
    );
    config.pusher.webhook_attempts = 1000;
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(WAIT).await;
    // Two batches at least: occupied, then (after it was delivered) vacated.
    let (mut c, _) = pusher_client(&gw, KEY).await;
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    c.next_frame().await;
    let occupied = json!({"name": "channel_occupied", "channel": "news"});
    eventually(WAIT, "occupied, on the webhook that answers", || async {
        times(&up, &occupied) == 1
    })
    .await;
    drop(c);
    let vacated = json!({"name": "channel_vacated", "channel": "news"});
    eventually(WAIT, "vacated too, while the other still fails", || async {
        times(&up, &vacated) == 1
    })
    .await;
    assert!(!down.requests().is_empty(), "the failing one was tried");
    assert!(down.delivered().is_empty());
    // Once it answers, it gets everything, in its own time.
    down.set_down(false);
    eventually(Duration::from_secs(10), "the other catches up", || async {
        times(&down, &occupied) == 1 && times(&down, &vacated) == 1
    })
    .await;
    assert_signed(&up);
    assert_signed(&down);
}

#[tokio::test]
async fn events_being_retried_are_not_taken_over_by_another_node() {
    let redis = RedisServer::start().await;
    let receiver = WebhookReceiver::start().await;
    receiver.set_down(true);
    let config = || {
        let mut c = with_hooks(redis_config(&redis.url()), vec![hook(&receiver.url, ALL)]);
        c.pusher.webhook_claim_after = Duration::from_secs(1);
        c.pusher.webhook_attempts = 1000;
        c
    };
    let a = TestGateway::start_with(config()).await;
    let b = TestGateway::start_with(config()).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }
    let (mut c, _) = pusher_client(&a, KEY).await;
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    c.next_frame().await;
    // Retried for 3 s, with waits (up to 1.6 s) longer than `webhook_claim_after`: the node
    // retrying keeps the event, so the other never sends it too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    receiver.set_down(false);
    let occupied = json!({"name": "channel_occupied", "channel": "news"});
    eventually(Duration::from_secs(10), "delivered", || async {
        times(&receiver, &occupied) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        times(&receiver, &occupied),
        1,
        "{:#?}",
        receiver.delivered()
    );
    let retried = a
        .metric("herald_webhook_events_total{outcome=\"retried\"}")
        .await
        + b.metric("herald_webhook_events_total{outcome=\"retried\"}")
            .await;
    let tries = receiver.requests().len() as f64;
    assert_eq!(retried + 1.0, tries, "one node tried, and retried, alone");
}

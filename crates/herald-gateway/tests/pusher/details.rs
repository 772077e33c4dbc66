//! Pusher details apps rely on: client events switched per app and naming their sender on
//! presence channels, channel queries that never contradict themselves, webhooks filtered by
//! channel, and what a node logs of its apps and failed deliveries.

use std::time::{Duration, Instant};

use herald_gateway::config::{GatewayConfig, PusherApp, WebhookConfig};
use herald_testkit::{
    eventually, test_config, RedisServer, ServiceProcess, TestGateway, WebhookReceiver, WAIT,
};
use serde_json::json;

use super::{
    assert_quiet, join_presence, join_private, signed_get, subscriber, two_nodes, ID, KEY, SECRET,
};

#[tokio::test]
async fn client_events_are_refused_unless_the_app_enables_them() {
    let mut config = test_config();
    config.pusher.apps = vec![PusherApp::new(ID, KEY, SECRET)];
    let gw = TestGateway::start_with(config).await;
    let (mut ann, _) = join_private(&gw, "private-chat").await;
    let (mut bob, _) = join_private(&gw, "private-chat").await;
    ann.send(&json!({"event": "client-typing", "channel": "private-chat", "data": {}}))
        .await;
    let refused = ann.next_frame().await;
    assert_eq!(refused["event"], "pusher:error", "{refused}");
    assert!(
        refused["data"]["message"]
            .as_str()
            .unwrap()
            .contains("client_events"),
        "{refused}"
    );
    assert_quiet(&mut bob).await;
    gw.stop().await;
}

#[tokio::test]
async fn client_events_on_presence_channels_name_their_sender_across_nodes() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (mut ann, _) = join_presence(&a, "presence-room", "ann").await;
    let (mut bob, _) = join_presence(&b, "presence-room", "bob").await;
    assert_eq!(
        ann.next_frame().await["event"],
        "pusher_internal:member_added"
    );
    ann.send(&json!({"event": "client-typing", "channel": "presence-room", "data": {"x": 1}}))
        .await;
    // pusher-js hands `user_id` to the app as `metadata.user_id`.
    assert_eq!(
        bob.next_frame().await,
        json!({"event": "client-typing", "channel": "presence-room", "data": "{\"x\":1}",
               "user_id": "ann"})
    );
    bob.send(&json!({"event": "client-typing", "channel": "presence-room", "data": 2}))
        .await;
    assert_eq!(ann.next_frame().await["user_id"], "bob");
}

/// `GET /apps/{id}/channels/news?info=subscription_count` on `gw`: `(occupied, count)`, after
/// checking that the answer agrees with itself and with the channel list.
async fn news(gw: &TestGateway) -> (bool, u64) {
    let one = signed_get(gw, "channels/news", "info=subscription_count")
        .await
        .json();
    let occupied = one["occupied"].as_bool().unwrap();
    let count = one["subscription_count"].as_u64().unwrap();
    assert_eq!(occupied, count > 0, "one answer contradicts itself: {one}");
    let list = signed_get(gw, "channels", "info=subscription_count")
        .await
        .json();
    if let Some(listed) = list["channels"]["news"].as_object() {
        assert!(listed["subscription_count"].as_u64() > Some(0), "{list}");
    }
    (occupied, count)
}

/// Polls [`news`] until it says `want` subscriptions; returns how long that took.
async fn until_counted(gw: &TestGateway, want: u64) -> Duration {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if news(gw).await.1 == want {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never counted {want}: {:?}", news(gw).await);
}

#[tokio::test]
async fn channel_queries_never_contradict_themselves_and_counts_follow_promptly() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let on_a = subscriber(&a, "news").await;
    let on_b = subscriber(&b, "news").await;
    let took = until_counted(&a, 2).await;
    assert!(took < Duration::from_secs(1), "counted after {took:?}");
    drop((on_a, on_b));
    let took = until_counted(&a, 0).await;
    assert!(took < Duration::from_secs(1), "uncounted after {took:?}");
    assert_eq!(news(&b).await, (false, 0));
}

fn hook(url: &str, kinds: &[&str], channels: &[&str]) -> WebhookConfig {
    WebhookConfig {
        url: url.to_owned(),
        event_types: kinds.iter().map(|k| (*k).to_owned()).collect(),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_webhook_hears_only_of_the_channels_its_filter_names() {
    let receiver = WebhookReceiver::start().await;
    let mut config: GatewayConfig = test_config();
    config.pusher.apps = vec![PusherApp {
        webhooks: vec![hook(
            &receiver.url,
            &["channel_occupied"],
            &["private-orders-*", "news"],
        )],
        ..PusherApp::new(ID, KEY, SECRET)
    }];
    let gw = TestGateway::start_with(config).await;
    let _other = join_private(&gw, "private-chat").await;
    let _orders = join_private(&gw, "private-orders-7").await;
    let _news = subscriber(&gw, "news").await;
    eventually(WAIT, "the matching channels' events", || async {
        receiver.delivered().len() >= 2
    })
    .await;
    let mut channels: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|e| e["channel"].as_str().unwrap().to_owned())
        .collect();
    channels.sort();
    assert_eq!(channels, ["news", "private-orders-7"]);
    gw.stop().await;

    // A pattern no channel could match is refused at startup.
    let mut config = test_config();
    config.pusher.apps = vec![PusherApp {
        webhooks: vec![hook(&receiver.url, &["channel_occupied"], &["bad channel"])],
        ..PusherApp::new(ID, KEY, SECRET)
    }];
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("channels") && e.contains("bad channel"), "{e}");
}

/// The binary names its apps and webhooks at startup, never a secret, and warns of each
/// failed delivery with the status (at most once per 10 s per webhook).
#[tokio::test]
async fn the_log_names_apps_and_webhooks_and_warns_of_failed_deliveries() {
    let receiver = WebhookReceiver::start().await;
    receiver.set_down(true);
    let toml = format!(
        "[pusher]\nwebhook_retry = \"100ms\"\n\n[[pusher.apps]]\nid = \"{ID}\"\nkey = \"{KEY}\"\n\
         secret = \"{SECRET}-hidden\"\n\n[[pusher.apps.webhooks]]\nurl = \"{}\"\n\
         event_types = [\"channel_occupied\"]\n",
        receiver.url
    );
    let gw = ServiceProcess::gateway_with_config(&toml, &[]).await;
    let log = gw.log_text();
    assert!(
        log.contains("pusher app") && log.contains(&format!("app_id={ID}")),
        "{log}"
    );
    assert!(log.contains(&format!("key={KEY}")), "{log}");
    assert!(
        log.contains("pusher webhook") && log.contains(&receiver.url),
        "{log}"
    );
    let url = format!("ws://{}/app/{KEY}?protocol=7", gw.ws_addr());
    let mut client = herald_testkit::WsClient::connect(&url, None).await.unwrap();
    client.next_frame().await;
    client
        .send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    eventually(WAIT, "a warning of the failed delivery", || async {
        gw.log_text().contains("webhooks: delivery failed")
    })
    .await;
    let log = gw.log_text();
    let warning = log
        .lines()
        .find(|l| l.contains("webhooks: delivery failed"))
        .unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("answered 500"),
        "{warning}"
    );
    // Retries every 100 ms, warned of once per 10 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warnings = gw.log_text().matches("webhooks: delivery failed").count();
    assert_eq!(warnings, 1, "{}", gw.log_text());
    assert!(!gw.log_text().contains("-hidden"), "a secret in the log");
}

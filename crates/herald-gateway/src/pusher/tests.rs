//! The Pusher session against a fake node: messages in, frames and hub commands out.

use bytes::Bytes;
use herald_protocol::{close, ConnId, NodeId, WireFormat};
use herald_pusher::{codes, signature, webhook::EventKind};
use serde_json::{json, Value};

use super::{close_code, open, Opening, Session};
use crate::{
    config::{GatewayConfig, PusherApp},
    peer::{
        fake::{peer, sent, sent_json, Call, FakeEnv},
        Close, Peer,
    },
};

const KEY: &str = "key";
const SECRET: &str = "secret";

fn config(client_events: bool) -> GatewayConfig {
    let mut config = GatewayConfig::default();
    let mut app = PusherApp::new("1", KEY, SECRET);
    app.client_events = client_events;
    app.client_event_rate = Some(1);
    config.pusher.apps = vec![app];
    config
}

fn session(env: &FakeEnv) -> Box<Session> {
    use crate::peer::Env;
    match open(
        &env.config().pusher,
        NodeId::random(),
        ConnId(1),
        KEY,
        Some("protocol=7"),
    ) {
        Opening::Established(s) => s,
        Opening::Refused { message, .. } => panic!("{message}"),
    }
}

async fn send(s: &mut Session, env: &FakeEnv, p: &mut Peer, message: Value) -> Option<Close> {
    s.on_text(env, p, Bytes::from(message.to_string())).await
}

fn subscribe(channel: &str, auth: Option<String>, channel_data: Option<&str>) -> Value {
    json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": channel_data}})
}

fn auth(s: &Session, channel: &str, channel_data: Option<&str>) -> String {
    signature::channel_auth(KEY, SECRET, &s.socket_id.to_string(), channel, channel_data)
}

/// The frames queued for `p`, waiting (a bounded while) for an answer that needs a read.
async fn frames_after_read(p: &Peer, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..200 {
        got.extend(sent_json(p));
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    got
}

#[tokio::test]
async fn pings_are_answered_and_binary_frames_refused() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    send(
        &mut s,
        &env,
        &mut p,
        json!({"event": "pusher:ping", "data": {}}),
    )
    .await;
    s.on_binary(&p);
    let frames = sent_json(&p);
    assert_eq!(frames[0]["event"], "pusher:pong");
    assert_eq!(frames[1]["event"], "pusher:error");
    let bad = s.on_text(&env, &mut p, Bytes::from_static(b"{")).await;
    assert_eq!(bad, None);
    assert_eq!(sent_json(&p)[0]["event"], "pusher:error");
    assert_eq!(env.metrics.bad_requests.get(), 1);
}

#[tokio::test]
async fn public_channels_subscribe_and_private_ones_need_a_valid_signature() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    send(&mut s, &env, &mut p, subscribe("news", None, None)).await;
    send(&mut s, &env, &mut p, subscribe("private-a", None, None)).await;
    send(
        &mut s,
        &env,
        &mut p,
        subscribe("private-a", Some(format!("{KEY}:00")), None),
    )
    .await;
    let good = auth(&s, "private-a", None);
    send(
        &mut s,
        &env,
        &mut p,
        subscribe("private-a", Some(good), None),
    )
    .await;
    assert_eq!(
        env.calls(),
        [
            Call::Subscribe("news".into()),
            Call::Subscribe("private-a".into())
        ]
    );
    let frames = sent_json(&p);
    let events: Vec<(&str, &str)> = frames
        .iter()
        .map(|f| {
            (
                f["event"].as_str().unwrap(),
                f["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("pusher_internal:subscription_succeeded", "news"),
            ("pusher:subscription_error", "private-a"),
            ("pusher:subscription_error", "private-a"),
            ("pusher_internal:subscription_succeeded", "private-a"),
        ]
    );
    let data = &frames[1]["data"];
    assert_eq!(
        (data["type"].as_str(), data["status"].as_u64()),
        (Some("AuthError"), Some(401))
    );
    assert_eq!(env.metrics.families.auth_failures.get("signature"), 2);
}

#[tokio::test]
async fn a_presence_subscription_enters_the_member_and_answers_with_the_members() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    let data = r#"{"user_id":"ann","user_info":{"n":1}}"#;
    let good = auth(&s, "presence-r", Some(data));
    send(
        &mut s,
        &env,
        &mut p,
        subscribe("presence-r", Some(good), Some(data)),
    )
    .await;
    assert_eq!(env.calls(), [Call::Subscribe("presence-r".into())]);
    assert_eq!(env.members_here("presence-r", "ann"), [p.id]);
    let frames = frames_after_read(&p, 1).await;
    assert_eq!(frames[0]["event"], "pusher_internal:subscription_succeeded");
    let members: Value = serde_json::from_str(frames[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(members["presence"]["ids"], json!(["ann"]));
    send(
        &mut s,
        &env,
        &mut p,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-r"}}),
    )
    .await;
    assert_eq!(
        env.calls(),
        [Call::Unsubscribe("presence-r".into(), Some("ann".into()))]
    );
}

#[tokio::test]
async fn a_cache_channel_without_a_last_event_answers_with_a_cache_miss() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    send(&mut s, &env, &mut p, subscribe("cache-x", None, None)).await;
    let frames = frames_after_read(&p, 2).await;
    assert_eq!(frames[0]["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(frames[1]["event"], "pusher:cache_miss");
}

#[tokio::test]
async fn client_events_are_refused_until_enabled_subscribed_and_within_the_rate() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    let event = json!({"event": "client-x", "channel": "private-a", "data": {"k": 1}});
    send(&mut s, &env, &mut p, event.clone()).await;
    assert_eq!(sent_json(&p)[0]["event"], "pusher:error");

    let mut env = FakeEnv::new(config(true));
    env.wanted = vec![EventKind::ClientEvent];
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    send(&mut s, &env, &mut p, event.clone()).await;
    assert_eq!(sent_json(&p)[0]["event"], "pusher:error", "not subscribed");
    let good = auth(&s, "private-a", None);
    send(
        &mut s,
        &env,
        &mut p,
        subscribe("private-a", Some(good), None),
    )
    .await;
    sent(&p);
    env.calls();
    send(&mut s, &env, &mut p, event.clone()).await;
    send(&mut s, &env, &mut p, event).await;
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        matches!(&calls[0], Call::Publish { channel, event: Some(e), excluded: true, user: None, .. }
        if channel == "private-a" && e == "client-x")
    );
    assert_eq!(env.webhooks.lock().unwrap().len(), 1);
    // The second is over the app's rate of 1 a second.
    let frames = sent_json(&p);
    assert_eq!(frames[0]["event"], "pusher:error");
    let data = &frames[0]["data"];
    assert_eq!(data["code"], codes::CLIENT_EVENT_RATE_LIMIT);
}

#[tokio::test]
async fn a_signin_subscribes_the_users_channel_and_a_bad_one_closes_with_4009() {
    let env = FakeEnv::new(config(false));
    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    // A user's channel is for that user's connections only.
    send(
        &mut s,
        &env,
        &mut p,
        subscribe("#server-to-user-ann", None, None),
    )
    .await;
    assert_eq!(sent_json(&p)[0]["data"]["status"], 403);

    let user_data = r#"{"id":"ann"}"#;
    let text = signature::signin_text(&s.socket_id.to_string(), user_data);
    let good = format!("{KEY}:{}", signature::sign(SECRET, &text));
    let signin = |auth: &str| json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}});
    assert_eq!(send(&mut s, &env, &mut p, signin(&good)).await, None);
    assert_eq!(env.calls(), [Call::Subscribe("pusher-user:616e6e".into())]);
    assert_eq!(sent_json(&p)[0]["event"], "pusher:signin_success");

    let (mut s, mut p) = (session(&env), peer(WireFormat::Pusher));
    let closed = send(&mut s, &env, &mut p, signin(&good)).await;
    assert!(
        matches!(closed, Some(Close::Wire { code, .. }) if code == codes::UNAUTHORIZED),
        "another socket's signature: {closed:?}"
    );
    assert_eq!(sent_json(&p)[0]["data"]["code"], codes::UNAUTHORIZED);
    assert!(env.calls().is_empty());
}

#[test]
fn herald_close_codes_become_ones_pusher_js_reconnects_on() {
    for native in [close::SHUTDOWN, close::SLOW_CONSUMER, close::IDLE_TIMEOUT] {
        assert!(codes::reconnects(close_code(native)), "{native}");
    }
    assert_eq!(close_code(close::NORMAL), close::NORMAL);
}

//! The native session against a fake node: requests in, replies and hub commands out.

use bytes::Bytes;
use herald_protocol::{ErrorCode, WireFormat};
use serde_json::{json, Value};

use super::Session;
use crate::{
    auth::{Identity, Standing},
    config::{GatewayConfig, NamespaceConfig},
    peer::Env,
    peer::{
        fake::{peer, replied, sent, sent_json, Call, FakeEnv},
        Peer,
    },
};

fn config() -> GatewayConfig {
    let mut config = GatewayConfig::default();
    let ns = |publish, presence| NamespaceConfig {
        publish,
        presence,
        ..NamespaceConfig::default()
    };
    config.namespaces.insert("chat".into(), ns(true, false));
    config.namespaces.insert("room".into(), ns(false, true));
    config.limits.max_subscriptions = 3;
    config.limits.publish_rate = 2;
    config
}

fn session(user: Option<&str>) -> Session {
    let identity = user.map(|u| Identity::new(u, Some(r#"{"n":1}"#), 1024).unwrap());
    Session::new(WireFormat::Json, identity, Standing::anonymous())
}

async fn request(session: &mut Session, env: &FakeEnv, peer: &mut Peer, request: Value) {
    let payload = Bytes::from(request.to_string());
    session
        .on_request(env, peer, WireFormat::Json, payload)
        .await;
    replied(peer).await;
}

fn code(e: ErrorCode) -> u32 {
    e.code()
}

#[tokio::test]
async fn a_subscribe_reaches_the_hub_and_is_answered_once_every_channel_settles() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let r = json!({"id": 1, "subscribe": {"channels": ["news", "chat:1", "news", "bad name", "nope:1"]}});
    request(&mut s, &env, &mut p, r).await;
    assert_eq!(
        env.calls(),
        [
            Call::Subscribe("news".into()),
            Call::Subscribe("chat:1".into())
        ]
    );
    let replies = sent_json(&p);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let ok = &replies[0]["ok"];
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(ok["subscribed"], json!(["news", "chat:1"]));
    let failed: Vec<(&str, u64)> = ok["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["channel"].as_str().unwrap(), f["code"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("bad name", u64::from(code(ErrorCode::InvalidChannel))),
            ("nope:1", u64::from(code(ErrorCode::UnknownNamespace)))
        ]
    );
    // The reply is queued: the next request may be read.
    assert!(!p.outbound.awaiting_reply());
    assert_eq!(p.subscribed.len(), 2);
    assert_ne!(p.shards, 0);
}

#[tokio::test]
async fn subscriptions_past_the_limit_fail_and_reach_no_shard() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let r = json!({"id": 2, "subscribe": {"channels": ["a", "b", "c", "d"]}});
    request(&mut s, &env, &mut p, r).await;
    assert_eq!(env.calls().len(), 3);
    let reply = &sent_json(&p)[0]["ok"];
    assert_eq!(reply["failed"][0]["channel"], "d");
    assert_eq!(reply["failed"][0]["code"], code(ErrorCode::LimitExceeded));
    assert_eq!(env.metrics.families.limit_hits.get("max_subscriptions"), 1);
}

#[tokio::test]
async fn a_request_with_nothing_for_the_hub_is_answered_at_once() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    // A presence channel needs a user.
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 3, "subscribe": {"channels": ["room:1"]}}),
    )
    .await;
    assert!(env.calls().is_empty());
    let reply = &sent_json(&p)[0]["ok"];
    assert_eq!(reply["subscribed"], json!([]));
    assert_eq!(reply["failed"][0]["code"], code(ErrorCode::Unauthorized));
    assert!(!p.outbound.awaiting_reply());
}

#[tokio::test]
async fn a_user_enters_presence_when_the_subscription_settles_and_leaves_as_that_member() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(Some("ann")), peer(WireFormat::Json));
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 4, "subscribe": {"channels": ["room:1"]}}),
    )
    .await;
    assert_eq!(env.members_here("room:1", "ann"), [p.id]);
    assert_eq!(sent_json(&p)[0]["ok"]["subscribed"], json!(["room:1"]));
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 5, "presence": {"channel": "room:1"}}),
    )
    .await;
    let reply = &sent_json(&p)[0];
    assert_eq!(reply["ok"]["members"][0]["user"], "ann");
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 6, "unsubscribe": {"channels": ["room:1"]}}),
    )
    .await;
    let calls = env.calls();
    assert_eq!(
        calls[1],
        Call::Unsubscribe("room:1".into(), Some("ann".into()))
    );
    assert!(matches!(calls[2], Call::Sync(set) if set == p.shards));
    assert_eq!(sent_json(&p)[0]["ok"]["unsubscribed"], json!(["room:1"]));
    assert!(p.subscribed.is_empty());
}

#[tokio::test]
async fn publishes_are_checked_then_published_and_answered_with_the_message_id() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let publish = |id: u64, channel: &str| json!({"id": id, "publish": {"channel": channel, "data": {"x": 1}}});
    request(&mut s, &env, &mut p, publish(1, "news")).await;
    request(&mut s, &env, &mut p, publish(2, "chat:1")).await;
    request(&mut s, &env, &mut p, publish(3, "chat:1")).await;
    request(&mut s, &env, &mut p, publish(4, "chat:1")).await;
    let replies = sent_json(&p);
    // The default namespace allows no client publications.
    assert_eq!(
        replies[0]["error"]["code"],
        code(ErrorCode::PermissionDenied)
    );
    assert!(replies[1]["ok"]["message_id"].is_string(), "{replies:?}");
    assert!(replies[2]["ok"]["message_id"].is_string());
    // `limits.publish_rate` is 2 a second.
    assert_eq!(replies[3]["error"]["code"], code(ErrorCode::LimitExceeded));
    let published: Vec<Call> = env.calls();
    assert_eq!(published.len(), 2);
    assert!(
        matches!(&published[0], Call::Publish { channel, data, excluded: false, .. }
        if channel == "chat:1" && data == r#"{"x":1}"#)
    );
}

#[tokio::test]
async fn a_broker_failure_is_the_publish_reply() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    *env.publish_error.lock().unwrap() = Some(herald_broker::BrokerError::Uncertain("timeout"));
    let r = json!({"id": 9, "publish": {"channel": "chat:1", "data": 1}});
    request(&mut s, &env, &mut p, r).await;
    let reply = &sent_json(&p)[0];
    assert_eq!(reply["id"], 9);
    assert_eq!(reply["error"]["code"], code(ErrorCode::Uncertain));
}

#[tokio::test]
async fn bad_requests_get_an_error_reply_and_no_command() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let payload = Bytes::from_static(br#"{"id":5,"subscribe":{}}"#);
    s.on_request(&env, &mut p, WireFormat::Json, payload).await;
    let reply = &sent_json(&p)[0];
    assert_eq!(reply["id"], 5);
    assert_eq!(reply["error"]["code"], code(ErrorCode::BadRequest));
    assert!(env.calls().is_empty());
    assert_eq!(env.metrics.bad_requests.get(), 1);
    // A refresh on a connection without a token, a presence query on a plain channel.
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 6, "refresh": {"token": "t"}}),
    )
    .await;
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 7, "presence": {"channel": "news"}}),
    )
    .await;
    let replies = sent_json(&p);
    assert_eq!(replies[0]["error"]["code"], code(ErrorCode::BadRequest));
    assert_eq!(
        replies[1]["error"]["code"],
        code(ErrorCode::PermissionDenied)
    );
}

#[tokio::test]
async fn a_messagepack_session_replies_in_messagepack() {
    let env = FakeEnv::new(config());
    let mut s = Session::new(WireFormat::MsgPack, None, Standing::anonymous());
    let mut p = peer(WireFormat::MsgPack);
    let request = json!({"id": 8, "subscribe": {"channels": ["news"]}});
    let payload = Bytes::from(rmp_serde::to_vec_named(&request).unwrap());
    s.on_request(&env, &mut p, WireFormat::MsgPack, payload)
        .await;
    replied(&p).await;
    let reply: Value = rmp_serde::from_slice(&sent(&p)[0]).unwrap();
    assert_eq!(reply["ok"]["subscribed"], json!(["news"]));
}

#[tokio::test]
async fn history_reads_what_the_namespace_keeps_from_a_position() {
    let env = FakeEnv::new(config());
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let channel = herald_protocol::ChannelName::parse("chat:1").unwrap();
    let ns = env.config().check_channel("chat:1").unwrap().1.history();
    let meta = herald_broker::PublishMeta {
        history: ns,
        ..Default::default()
    };
    let mut epoch = None;
    for i in 1..=3 {
        let data = Bytes::from(format!("{i}"));
        epoch = env
            .broker()
            .publish(channel.clone(), data, meta.clone())
            .await
            .unwrap()
            .epoch;
    }
    let epoch = epoch.unwrap().to_string();
    let since = json!({"offset": 1, "epoch": epoch});
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 1, "history": {"channel": "chat:1", "since": since}}),
    )
    .await;
    let reply = &sent_json(&p)[0]["ok"];
    assert_eq!(
        (reply["offset"].as_u64(), reply["epoch"].as_str()),
        (Some(3), Some(epoch.as_str()))
    );
    assert_eq!(
        reply["publications"],
        json!([{"data": 2, "offset": 2}, {"data": 3, "offset": 3}])
    );
    let other = json!({"offset": 1, "epoch": "x1"});
    request(
        &mut s,
        &env,
        &mut p,
        json!({"id": 2, "history": {"channel": "chat:1", "since": other}}),
    )
    .await;
    assert_eq!(
        sent_json(&p)[0]["error"]["code"],
        code(ErrorCode::PositionLost)
    );
    assert!(env.calls().is_empty(), "a read sends nothing to the hub");
}

#[tokio::test]
async fn a_subscribe_reply_gives_the_position_of_each_channel_that_keeps_history() {
    let mut config = config();
    config.namespaces.get_mut("chat").unwrap().history_size = 0;
    let env = FakeEnv::new(config);
    let (mut s, mut p) = (session(None), peer(WireFormat::Json));
    let channel = herald_protocol::ChannelName::parse("news").unwrap();
    let meta = herald_broker::PublishMeta {
        history: env.config().channels.history(),
        ..Default::default()
    };
    let mut epoch = None;
    for i in 1..=2 {
        let data = Bytes::from(format!("{i}"));
        let published = env.broker().publish(channel.clone(), data, meta.clone());
        epoch = published.await.unwrap().epoch;
    }
    let r = json!({"id": 1, "subscribe": {"channels": ["news", "chat:1", "fresh"]}});
    request(&mut s, &env, &mut p, r).await;
    let ok = &sent_json(&p)[0]["ok"];
    assert_eq!(ok["subscribed"], json!(["news", "chat:1", "fresh"]));
    // chat keeps no history: it has no position; "fresh" has had no publication.
    assert_eq!(
        ok["positions"],
        json!([
            {"channel": "news", "offset": 2, "epoch": epoch.unwrap().to_string()},
            {"channel": "fresh", "offset": 0}
        ])
    );
}

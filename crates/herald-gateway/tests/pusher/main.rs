//! The Pusher Channels protocol over real sockets: connection, ping, public and private
//! subscriptions, the signed HTTP API, native and Pusher clients on one channel, across two
//! nodes through Redis, and every refusal with its code. Webhooks are in [`webhooks`]; client
//! events' switch and sender, and the consistency of channel queries, in [`details`].

mod details;
mod webhooks;

use herald_gateway::config::{GatewayConfig, PusherApp};
use herald_pusher::signature;
use herald_testkit::{
    eventually, redis_config, test_config, Incoming, RedisServer, TestGateway, WsClient, WAIT,
};
use serde_json::{json, Value};

const ID: &str = "42";
const KEY: &str = "app-key";
const SECRET: &str = "app-secret";

/// The app, with client events enabled.
fn with_app(mut config: GatewayConfig) -> GatewayConfig {
    config.pusher.apps = vec![PusherApp {
        client_events: true,
        ..PusherApp::new(ID, KEY, SECRET)
    }];
    config
}

/// Two gateways with the app, relaying through `redis`, both ready.
async fn two_nodes(redis: &RedisServer) -> (TestGateway, TestGateway) {
    let a = TestGateway::start_with(with_app(redis_config(&redis.url()))).await;
    let b = TestGateway::start_with(with_app(redis_config(&redis.url()))).await;
    for gw in [&a, &b] {
        gw.wait_ready(WAIT).await;
    }
    (a, b)
}

/// A Pusher client on `/app/{key}`; returns it and its socket id.
async fn pusher_client(gw: &TestGateway, key: &str) -> (WsClient, String) {
    pusher_client_at(&gw.ws_addr.to_string(), key).await
}

/// A Pusher client on `/app/{key}` of the node listening on `addr`.
async fn pusher_client_at(addr: &str, key: &str) -> (WsClient, String) {
    let url = format!("ws://{addr}/app/{key}?protocol=7&client=js&version=8.4.0");
    let mut c = WsClient::connect(&url, None).await.expect("connect");
    let hello = c.next_frame().await;
    assert_eq!(hello["event"], "pusher:connection_established", "{hello}");
    let data: Value = serde_json::from_str(hello["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    (c, data["socket_id"].as_str().unwrap().to_owned())
}

/// POSTs a signed request to the Pusher HTTP API, as the server SDKs do.
async fn trigger(gw: &TestGateway, body: &Value, secret: &str) -> herald_testkit::HttpResponse {
    signed_post(gw, "events", body, secret).await
}

/// GETs a signed route of the Pusher HTTP API, with `params` in the query.
async fn signed_get(gw: &TestGateway, route: &str, params: &str) -> herald_testkit::HttpResponse {
    let path = format!("/apps/{ID}/{route}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut query: Vec<String> = vec![
        format!("auth_key={KEY}"),
        format!("auth_timestamp={now}"),
        "auth_version=1.0".into(),
    ];
    query.extend(
        params
            .split('&')
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    );
    query.sort();
    let query = query.join("&");
    let signed = signature::sign(SECRET, &format!("GET\n{path}\n{query}"));
    gw.get(&format!("{path}?{query}&auth_signature={signed}"))
        .await
}

async fn signed_post(
    gw: &TestGateway,
    route: &str,
    body: &Value,
    secret: &str,
) -> herald_testkit::HttpResponse {
    let body = body.to_string();
    let path = format!("/apps/{ID}/{route}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let md5 = signature::body_md5(body.as_bytes());
    let query = format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}");
    let signed = signature::sign(secret, &format!("POST\n{path}\n{query}"));
    let url = format!("{path}?{query}&auth_signature={signed}");
    gw.post(
        &url,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn pusher_and_native_clients_share_channels_and_the_signed_api_publishes() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let (mut p, socket_id) = pusher_client(&gw, KEY).await;
    assert!(
        herald_pusher::SocketId::parse(&socket_id).is_some(),
        "{socket_id}"
    );

    p.send(&json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(
        p.next_frame().await,
        json!({"event": "pusher:pong", "data": {}})
    );

    p.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    assert_eq!(
        p.next_frame().await,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}"})
    );
    let mut native = gw.client(None).await;
    native.subscribe_ok(&["news"]).await;

    // The Pusher API: data as the SDKs send it, a string of JSON.
    let reply = trigger(
        &gw,
        &json!({"name": "greeting", "channels": ["news"], "data": "{\"hello\":\"world\"}"}),
        SECRET,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        p.next_frame().await,
        json!({"event": "greeting", "channel": "news", "data": "{\"hello\":\"world\"}"})
    );
    assert_eq!(
        native.next_push().await,
        json!({"channel": "news", "data": "{\"hello\":\"world\"}", "offset": 1, "event": "greeting"})
    );
    // Herald's API: Pusher clients see the data as its JSON text, under the default event
    // name unless one is given.
    gw.publish("news", json!({"n": 2})).await;
    assert_eq!(
        p.next_frame().await,
        json!({"event": "message", "channel": "news", "data": "{\"n\":2}"})
    );
    native.next_push().await;
    assert_eq!(
        gw.metric("herald_publications_total{path=\"pusher\"}")
            .await,
        1.0
    );

    // Unsubscribed: nothing more.
    p.send(&json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}))
        .await;
    gw.publish("news", json!(3)).await;
    native.next_push().await;
    match p.next_within(std::time::Duration::from_millis(300)).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn private_channels_need_a_signature_for_this_socket() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let (mut p, socket_id) = pusher_client(&gw, KEY).await;
    let good = signature::channel_auth(KEY, SECRET, &socket_id, "private-orders", None);
    let other_socket = signature::channel_auth(KEY, SECRET, "1.1", "private-orders", None);
    let other_secret = signature::channel_auth(KEY, "wrong", &socket_id, "private-orders", None);
    for auth in [
        None,
        Some("nonsense".to_owned()),
        Some(other_socket),
        Some(other_secret),
    ] {
        let mut data = json!({"channel": "private-orders"});
        if let Some(auth) = &auth {
            data["auth"] = json!(auth);
        }
        p.send(&json!({"event": "pusher:subscribe", "data": data}))
            .await;
        let refused = p.next_frame().await;
        assert_eq!(
            refused["event"], "pusher:subscription_error",
            "{auth:?}: {refused}"
        );
        assert_eq!(refused["channel"], "private-orders");
        assert_eq!(refused["data"]["type"], "AuthError");
        assert_eq!(refused["data"]["status"], 401);
    }
    p.send(
        &json!({"event": "pusher:subscribe", "data": {"channel": "private-orders", "auth": good}}),
    )
    .await;
    assert_eq!(
        p.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let reply = trigger(
        &gw,
        &json!({"name": "shipped", "channel": "private-orders", "data": "7"}),
        SECRET,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(p.next_frame().await["event"], "shipped");
    assert!(
        gw.metric("herald_auth_failures_total{reason=\"signature\"}")
            .await
            >= 4.0
    );
}

#[tokio::test]
async fn across_two_nodes_through_redis() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (mut on_b, _) = pusher_client(&b, KEY).await;
    on_b.send(&json!({"event": "pusher:subscribe", "data": {"channel": "cross"}}))
        .await;
    on_b.next_frame().await;
    let reply = trigger(
        &a,
        &json!({"name": "hop", "channels": ["cross", "other"], "data": "x"}),
        SECRET,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        on_b.next_frame().await,
        json!({"event": "hop", "channel": "cross", "data": "x"})
    );
}

#[tokio::test]
async fn bad_connections_messages_and_api_requests_get_pusher_errors() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    // Connections: unknown app key, no or bad protocol version.
    for (path, code) in [
        ("/app/nope?protocol=7".to_owned(), 4001),
        (format!("/app/{KEY}"), 4008),
        (format!("/app/{KEY}?protocol=seven"), 4006),
        (format!("/app/{KEY}?protocol=6"), 4007),
    ] {
        let url = format!("ws://{}{path}", gw.ws_addr);
        let mut c = WsClient::connect(&url, None).await.expect("connect");
        let error = c.next_frame().await;
        assert_eq!(error["event"], "pusher:error", "{path}");
        assert_eq!(error["data"]["code"], code, "{path}");
        assert_eq!(c.expect_close().await, code, "{path}");
    }
    // Messages: not JSON, unknown events, bad channel names, client events on a channel not
    // subscribed, a presence subscription without channel_data: an error each, and the
    // connection stays usable.
    let (mut p, _) = pusher_client(&gw, KEY).await;
    for bad in [
        "not json",
        r#"{"event":"pusher:unknown","data":{}}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":"a b"}}"#,
        r#"{"event":"client-typing","channel":"private-x","data":{}}"#,
    ] {
        p.send_message(tokio_tungstenite::tungstenite::Message::text(bad))
            .await;
        assert_eq!(p.next_frame().await["event"], "pusher:error", "{bad}");
    }
    p.send(&json!({"event": "pusher:subscribe", "data": {"channel": "presence-room"}}))
        .await;
    assert_eq!(p.next_frame().await["event"], "pusher:subscription_error");
    p.send(&json!({"event": "pusher:ping"})).await;
    assert_eq!(p.next_frame().await["event"], "pusher:pong");

    // The API: bad signature, unknown app, bad bodies.
    let ok = json!({"name": "e", "channel": "news", "data": "d"});
    assert_eq!(trigger(&gw, &ok, "wrong-secret").await.status, 401);
    assert_eq!(trigger(&gw, &ok, SECRET).await.status, 200);
    let unknown = gw.post("/apps/999/events", &[], b"{}").await;
    assert_eq!(unknown.status, 404);
    for (body, status) in [
        (json!({"name": "e", "channel": "a b", "data": "d"}), 400),
        (json!({"name": "", "channel": "news", "data": "d"}), 400),
        (json!({"name": "e", "data": "d"}), 400),
        (
            json!({"name": "e", "channel": "news", "channels": ["x"], "data": "d"}),
            400,
        ),
        (
            json!({"name": "e", "channels": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": "d"}),
            400,
        ),
        (
            json!({"name": "e", "channel": "news", "data": "d", "socket_id": "nonsense"}),
            400,
        ),
        (
            json!({"name": "e", "channel": "news", "data": "x".repeat(10 * 1024 + 1)}),
            413,
        ),
    ] {
        let reply = trigger(&gw, &body, SECRET).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_draining_node_closes_pusher_clients_with_a_code_they_reconnect_on() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let (mut p, _) = pusher_client(&gw, KEY).await;
    gw.begin_shutdown();
    let code = loop {
        match p.next().await.expect("a close") {
            Incoming::Close(code) => break code,
            Incoming::Frame(_) => {}
        }
    };
    assert_eq!(code, 4200, "pusher-js reconnects at once on 4200");
}

/// Subscribes a Pusher client to a private channel with a valid signature.
async fn join_private(gw: &TestGateway, channel: &str) -> (WsClient, String) {
    let (mut c, socket_id) = pusher_client(gw, KEY).await;
    let auth = signature::channel_auth(KEY, SECRET, &socket_id, channel, None);
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
        .await;
    assert_eq!(
        c.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    (c, socket_id)
}

async fn assert_quiet(c: &mut WsClient) {
    match c.next_within(std::time::Duration::from_millis(300)).await {
        Err(e) => assert!(e.to_string().contains("timed out"), "{e}"),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn client_events_reach_the_others_across_nodes_but_not_the_sender() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (mut ann, _) = join_private(&a, "private-chat").await;
    let (mut bob, _) = join_private(&b, "private-chat").await;
    let (mut cat, _) = join_private(&a, "private-chat").await;
    let mut native = a.client(None).await;
    native.subscribe_ok(&["private-chat"]).await;

    ann.send(&json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "ann"}}))
        .await;
    let expected =
        json!({"event": "client-typing", "channel": "private-chat", "data": "{\"who\":\"ann\"}"});
    assert_eq!(bob.next_frame().await, expected, "on the other node");
    assert_eq!(cat.next_frame().await, expected, "on the sender's node");
    assert_eq!(native.next_push().await["event"], "client-typing");
    assert_quiet(&mut ann).await;

    // Only on private and presence channels the client is subscribed to.
    ann.send(&json!({"event": "pusher:subscribe", "data": {"channel": "open"}}))
        .await;
    ann.next_frame().await;
    for (channel, why) in [
        ("open", "private and presence"),
        ("private-other", "subscribe"),
    ] {
        ann.send(&json!({"event": "client-x", "channel": channel, "data": {}}))
            .await;
        let error = ann.next_frame().await;
        assert_eq!(error["event"], "pusher:error", "{channel}");
        assert!(
            error["data"]["message"].as_str().unwrap().contains(why),
            "{error}"
        );
    }
    // Data nested deeper than limits.max_json_depth is refused like a publication's.
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    ann.send_message(tokio_tungstenite::tungstenite::Message::text(format!(
        r#"{{"event":"client-deep","channel":"private-chat","data":{deep}}}"#
    )))
    .await;
    let error = ann.next_frame().await;
    assert!(
        error["data"]["message"]
            .as_str()
            .unwrap()
            .contains("deeper"),
        "{error}"
    );
    // At most 10 per second (Pusher's limit): the rest get 4301, and the connection stays.
    for _ in 0..15 {
        ann.send(&json!({"event": "client-burst", "channel": "private-chat", "data": 1}))
            .await;
    }
    let mut limited = 0;
    while let Ok(Incoming::Frame(f)) = ann.next_within(std::time::Duration::from_millis(300)).await
    {
        assert_eq!(f["data"]["code"], 4301, "{f}");
        limited += 1;
    }
    assert!((1..=5).contains(&limited), "{limited} of 15 limited");
    let mut delivered = 0;
    while let Ok(Incoming::Frame(f)) = bob.next_within(std::time::Duration::from_millis(300)).await
    {
        assert_eq!(f["event"], "client-burst");
        delivered += 1;
    }
    assert_eq!(delivered + limited, 15);
}

#[tokio::test]
async fn an_api_event_can_leave_out_the_socket_that_caused_it() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let (mut ann, ann_socket) = join_private(&gw, "private-room").await;
    let (mut bob, _) = join_private(&gw, "private-room").await;
    let body =
        json!({"name": "moved", "channel": "private-room", "data": "1", "socket_id": ann_socket});
    assert_eq!(trigger(&gw, &body, SECRET).await.status, 200);
    assert_eq!(bob.next_frame().await["event"], "moved");
    assert_quiet(&mut ann).await;
}

#[tokio::test]
async fn batch_events_publish_all_or_nothing() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let (mut p, _) = pusher_client(&gw, KEY).await;
    p.send(&json!({"event": "pusher:subscribe", "data": {"channel": "feed"}}))
        .await;
    p.next_frame().await;
    let batch = json!({"batch": [
        {"channel": "feed", "name": "one", "data": "1"},
        {"channel": "elsewhere", "name": "two", "data": "2"},
        {"channel": "feed", "name": "three", "data": "3"},
    ]});
    let reply = signed_post(&gw, "batch_events", &batch, SECRET).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(p.next_frame().await["event"], "one");
    assert_eq!(p.next_frame().await["event"], "three");
    // One bad event, or too many: refused, and nothing of the batch is published.
    let bad = json!({"batch": [
        {"channel": "feed", "name": "four", "data": "4"},
        {"channel": "a b", "name": "five", "data": "5"},
    ]});
    let reply = signed_post(&gw, "batch_events", &bad, SECRET).await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("batch[1]"), "{}", reply.text());
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"channel": "feed", "name": "e", "data": i.to_string()}))
        .collect();
    let reply = signed_post(&gw, "batch_events", &json!({"batch": many}), SECRET).await;
    assert_eq!(reply.status, 400);
    assert_quiet(&mut p).await;
}

/// Subscribes a Pusher client to a presence channel as `user`.
async fn join_presence(gw: &TestGateway, channel: &str, user: &str) -> (WsClient, Value) {
    join_presence_at(&gw.ws_addr.to_string(), channel, user).await
}

/// [`join_presence`] on the node listening on `addr`.
async fn join_presence_at(addr: &str, channel: &str, user: &str) -> (WsClient, Value) {
    let (mut c, socket_id) = pusher_client_at(addr, KEY).await;
    let data = json!({"user_id": user, "user_info": {"name": user.to_uppercase()}}).to_string();
    let auth = signature::channel_auth(KEY, SECRET, &socket_id, channel, Some(&data));
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": data}}))
        .await;
    // The subscription carries the member list; a member never hears its own join.
    let f = c.next_frame().await;
    assert_eq!(f["event"], "pusher_internal:subscription_succeeded", "{f}");
    let members: Value = serde_json::from_str(f["data"].as_str().unwrap()).unwrap();
    (c, members["presence"].clone())
}

#[tokio::test]
async fn presence_channels_list_members_and_announce_joins_and_leaves_across_nodes() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (mut ann, members) = join_presence(&a, "presence-room", "ann").await;
    assert_eq!(members["count"], 1);
    assert_eq!(members["hash"]["ann"], json!({"name": "ANN"}));

    let (mut bob, members) = join_presence(&b, "presence-room", "bob").await;
    assert_eq!(members["count"], 2, "{members}");
    assert_eq!(members["ids"], json!(["ann", "bob"]));
    // Bob's join is the first thing ann hears: not her own.
    let added = ann.next_frame().await;
    assert_eq!(added["event"], "pusher_internal:member_added");
    let data: Value = serde_json::from_str(added["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"user_id": "bob", "user_info": {"name": "BOB"}})
    );

    assert_quiet(&mut bob).await;
    drop(bob);
    let removed = ann.next_frame().await;
    assert_eq!(removed["event"], "pusher_internal:member_removed");
    let data: Value = serde_json::from_str(removed["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"user_id": "bob"}));

    // channel_data is signed: changing it voids the authorization; it needs a user_id.
    let (mut mallory, socket_id) = pusher_client(&b, KEY).await;
    let signed = json!({"user_id": "mallory"}).to_string();
    let auth = signature::channel_auth(KEY, SECRET, &socket_id, "presence-room", Some(&signed));
    for (data, kind) in [
        (json!({"user_id": "admin"}).to_string(), "AuthError"),
        (String::new(), "AuthError"),
    ] {
        let mut sub = json!({"channel": "presence-room", "auth": auth});
        if !data.is_empty() {
            sub["channel_data"] = json!(data);
        }
        mallory
            .send(&json!({"event": "pusher:subscribe", "data": sub}))
            .await;
        let refused = mallory.next_frame().await;
        assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
        assert_eq!(refused["data"]["type"], kind);
    }
    let no_user = json!({"user_info": {}}).to_string();
    let auth = signature::channel_auth(KEY, SECRET, &socket_id, "presence-room", Some(&no_user));
    mallory
        .send(&json!({"event": "pusher:subscribe", "data": {"channel": "presence-room", "auth": auth, "channel_data": no_user}}))
        .await;
    assert_eq!(mallory.next_frame().await["data"]["status"], 400);
}

#[tokio::test]
async fn channel_and_user_queries_see_the_whole_cluster() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (_ann, _) = join_presence(&a, "presence-lobby", "ann").await;
    let (_bob, _) = join_presence(&b, "presence-lobby", "bob").await;
    let (mut p, _) = pusher_client(&b, KEY).await;
    p.send(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
        .await;
    p.next_frame().await;
    let mut native = b.client(None).await;
    native.subscribe_ok(&["ns-less"]).await;

    // Asked on node A: channels with subscribers on B count too.
    let all = signed_get(&a, "channels", "").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(
        all.json(),
        json!({"channels": {"presence-lobby": {}, "news": {}, "ns-less": {}}})
    );
    let lobby = signed_get(&a, "channels", "filter_by_prefix=presence-&info=user_count").await;
    assert_eq!(
        lobby.json(),
        json!({"channels": {"presence-lobby": {"user_count": 2}}})
    );
    let one = signed_get(&a, "channels/presence-lobby", "info=user_count").await;
    assert_eq!(one.json(), json!({"occupied": true, "user_count": 2}));
    let empty = signed_get(&a, "channels/nobody-here", "").await;
    assert_eq!(empty.json(), json!({"occupied": false}));
    let users = signed_get(&b, "channels/presence-lobby/users", "").await;
    assert_eq!(
        users.json(),
        json!({"users": [{"id": "ann"}, {"id": "bob"}]})
    );

    // What the queries refuse.
    for (route, params) in [
        ("channels", "info=user_count"),
        ("channels", "info=member_count"),
        ("channels/news", "info=user_count"),
        ("channels/news/users", ""),
        ("channels/a b", ""),
    ] {
        let reply = signed_get(&a, route, params).await;
        assert_eq!(reply.status, 400, "{route}?{params}: {}", reply.text());
    }
    assert_eq!(signed_get(&a, "channels/x/members", "").await.status, 404);
    let unsigned = a.get(&format!("/apps/{ID}/channels")).await;
    assert_eq!(unsigned.status, 401);
}

/// Subscribes a Pusher client of `gw` to `channel`.
async fn subscriber(gw: &TestGateway, channel: &str) -> WsClient {
    let (mut c, _) = pusher_client(gw, KEY).await;
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
        .await;
    assert_eq!(
        c.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    c
}

#[tokio::test]
async fn subscription_counts_and_event_info_see_the_whole_cluster() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (_a1, _a2) = (subscriber(&a, "news").await, subscriber(&a, "news").await);
    let _b1 = subscriber(&b, "news").await;
    let mut native = b.client(None).await;
    native.subscribe_ok(&["news"]).await;
    // One member with two connections, on both nodes.
    let (_ann, _) = join_presence(&a, "presence-lobby", "ann").await;
    let (_ann_too, _) = join_presence(&b, "presence-lobby", "ann").await;

    // Nodes report the counts that changed every 0.1 s.
    eventually(WAIT, "every node's subscriptions counted", || async {
        signed_get(&a, "channels", "info=subscription_count").await.json()
            == json!({"channels": {"news": {"subscription_count": 4}, "presence-lobby": {"subscription_count": 2}}})
    })
    .await;
    let one = signed_get(&b, "channels/news", "info=subscription_count").await;
    assert_eq!(
        one.json(),
        json!({"occupied": true, "subscription_count": 4})
    );
    let lobby = signed_get(
        &b,
        "channels/presence-lobby",
        "info=user_count,subscription_count",
    )
    .await;
    assert_eq!(
        lobby.json(),
        json!({"occupied": true, "user_count": 1, "subscription_count": 2})
    );

    // `info` on events: the attributes of each channel published to.
    let body = json!({"name": "e", "channels": ["news", "presence-lobby"], "data": "x",
                      "info": "user_count,subscription_count"});
    let reply = trigger(&a, &body, SECRET).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"channels": {"news": {"subscription_count": 4},
                            "presence-lobby": {"user_count": 1, "subscription_count": 2}}})
    );
    let batch = json!({"batch": [
        {"name": "e", "channel": "presence-lobby", "data": "x", "info": "user_count"},
        {"name": "e", "channel": "news", "data": "x"},
    ]});
    let reply = signed_post(&a, "batch_events", &batch, SECRET).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"batch": [{"user_count": 1}, {}]}));
    let bad = json!({"name": "e", "channel": "news", "data": "x", "info": "colour"});
    assert_eq!(trigger(&a, &bad, SECRET).await.status, 400);

    // Leaving counts, and a node that stops takes its counts with it.
    drop(_a1);
    eventually(WAIT, "one subscription fewer", || async {
        signed_get(&b, "channels/news", "info=subscription_count")
            .await
            .json()["subscription_count"]
            == 3
    })
    .await;
    b.stop().await;
    eventually(WAIT, "node B's subscriptions gone", || async {
        signed_get(&a, "channels/news", "info=subscription_count")
            .await
            .json()["subscription_count"]
            == 1
    })
    .await;

    // Counting can be turned off; asking then is refused.
    let mut config = with_app(test_config());
    config.pusher.subscription_count = false;
    let off = TestGateway::start_with(config).await;
    let reply = signed_get(&off, "channels", "info=subscription_count").await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("pusher.subscription_count"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn on_a_redis_cluster_occupied_channels_come_from_every_master() {
    let cluster = herald_testkit::RedisCluster::start(3, 0).await;
    let config = with_app(herald_testkit::redis_cluster_config(&cluster));
    let gw = TestGateway::start_with(config).await;
    gw.wait_ready(std::time::Duration::from_secs(10)).await;
    let (mut p, _) = pusher_client(&gw, KEY).await;
    // Enough channels that every master owns some.
    let names: Vec<String> = (0..12).map(|i| format!("spread-{i}")).collect();
    for name in &names {
        p.send(&json!({"event": "pusher:subscribe", "data": {"channel": name}}))
            .await;
        p.next_frame().await;
    }
    let reply = signed_get(&gw, "channels", "filter_by_prefix=spread-").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut listed: Vec<String> = reply.json()["channels"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    listed.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let trigger_reply = trigger(
        &gw,
        &json!({"name": "e", "channel": "spread-3", "data": "x"}),
        SECRET,
    )
    .await;
    assert_eq!(trigger_reply.status, 200);
    // Subscription counts live in the presence table's slot.
    eventually(WAIT, "counted on the cluster", || async {
        signed_get(&gw, "channels/spread-3", "info=subscription_count")
            .await
            .json()
            == json!({"occupied": true, "subscription_count": 1})
    })
    .await;
    // A cache channel's last event lives in its own slot, with its offset key.
    let body = json!({"name": "e", "channel": "cache-spread", "data": "kept"});
    assert_eq!(trigger(&gw, &body, SECRET).await.status, 200);
    assert_eq!(cached(&gw, "cache-spread").await["data"], "kept");
}

/// Subscribes to a cache channel; returns what follows `subscription_succeeded`.
async fn cached(gw: &TestGateway, channel: &str) -> Value {
    let (mut c, _) = pusher_client(gw, KEY).await;
    c.send(&json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
        .await;
    assert_eq!(
        c.next_frame().await["event"],
        "pusher_internal:subscription_succeeded"
    );
    c.next_frame().await
}

#[tokio::test]
async fn cache_channels_give_new_subscribers_the_last_event_on_every_node() {
    // One node on the embedded broker, and two through Redis.
    let alone = TestGateway::start_with(with_app(test_config())).await;
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    for (publisher, subscriber) in [(&alone, &alone), (&a, &b)] {
        assert_eq!(
            cached(subscriber, "cache-prices").await,
            json!({"event": "pusher:cache_miss", "channel": "cache-prices"})
        );
        for price in ["1", "2"] {
            let body = json!({"name": "price", "channel": "cache-prices", "data": price});
            assert_eq!(trigger(publisher, &body, SECRET).await.status, 200);
        }
        assert_eq!(
            cached(subscriber, "cache-prices").await,
            json!({"event": "price", "channel": "cache-prices", "data": "2"}),
            "the last one"
        );
        // Herald's own API feeds the cache too, under the default event name.
        publisher.publish("cache-prices", json!({"p": 3})).await;
        assert_eq!(
            cached(subscriber, "cache-prices").await,
            json!({"event": "message", "channel": "cache-prices", "data": "{\"p\":3}"})
        );
    }
    // Only cache- channels keep anything.
    a.publish("prices", json!(1)).await;
    let kept = redis.cli(&["EXISTS", "herald:last:{prices}"]);
    assert_eq!(kept, "0");
    assert_eq!(redis.cli(&["EXISTS", "herald:last:{cache-prices}"]), "1");
}

#[tokio::test]
async fn signin_takes_a_user_signed_for_this_socket_and_refuses_the_rest_with_4009() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    let sign = |socket: &str, data: &str| {
        format!(
            "{KEY}:{}",
            signature::sign(SECRET, &signature::signin_text(socket, data))
        )
    };
    let (mut ann, socket_id) = pusher_client(&gw, KEY).await;
    let user = json!({"id": "ann", "user_info": {"name": "Ann"}}).to_string();
    let auth = sign(&socket_id, &user);
    ann.send(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user}}))
        .await;
    assert_eq!(
        ann.next_frame().await,
        json!({"event": "pusher:signin_success", "data": {"user_data": user}})
    );

    // Signed for another socket; signed but without an id: a 4009 error, then a 4009 close.
    let no_id = json!({"name": "nobody"}).to_string();
    for (other_socket, data, why) in [
        (true, user.clone(), "invalid signin"),
        (false, no_id, "needs an id"),
    ] {
        let (mut c, socket) = pusher_client(&gw, KEY).await;
        let signed_for = if other_socket { &socket_id } else { &socket };
        let auth = sign(signed_for, &data);
        c.send(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": data}}))
            .await;
        let error = c.next_frame().await;
        assert_eq!(error["data"]["code"], 4009, "{error}");
        assert!(
            error["data"]["message"].as_str().unwrap().contains(why),
            "{error}"
        );
        assert_eq!(c.expect_close().await, 4009);
    }
}

#[tokio::test]
async fn an_app_can_have_limits_of_its_own() {
    let mut config = with_app(test_config());
    config.pusher.apps[0].max_connections = Some(1);
    config.pusher.apps[0].client_event_rate = Some(1);
    config.pusher.apps[0].max_event_size = Some(8);
    let gw = TestGateway::start_with(config).await;
    let (mut first, socket_id) = pusher_client(&gw, KEY).await;

    // A second connection of the app: over its quota (4004, not retried by pusher-js).
    let url = format!("ws://{}/app/{KEY}?protocol=7", gw.ws_addr);
    let mut second = WsClient::connect(&url, None).await.expect("connect");
    assert_eq!(second.next_frame().await["data"]["code"], 4004);
    assert_eq!(second.expect_close().await, 4004);

    // Its client event rate and event size.
    let auth = signature::channel_auth(KEY, SECRET, &socket_id, "private-x", None);
    first
        .send(&json!({"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": auth}}))
        .await;
    first.next_frame().await;
    for _ in 0..2 {
        first
            .send(&json!({"event": "client-a", "channel": "private-x", "data": 1}))
            .await;
    }
    assert_eq!(first.next_frame().await["data"]["code"], 4301);
    let big = json!({"name": "e", "channel": "news", "data": "123456789"});
    assert_eq!(trigger(&gw, &big, SECRET).await.status, 413);

    // Its slot comes back when the connection ends.
    drop(first);
    eventually(WAIT, "a new connection fits", || async {
        let mut c = WsClient::connect(&url, None).await.expect("connect");
        c.next_frame().await["event"] == "pusher:connection_established"
    })
    .await;
}

/// A Pusher client signed in as `user`.
async fn signed_in(gw: &TestGateway, user: &str) -> WsClient {
    let (mut c, socket_id) = pusher_client(gw, KEY).await;
    let data = json!({"id": user}).to_string();
    let auth = format!(
        "{KEY}:{}",
        signature::sign(SECRET, &signature::signin_text(&socket_id, &data))
    );
    c.send(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": data}}))
        .await;
    assert_eq!(c.next_frame().await["event"], "pusher:signin_success");
    c
}

#[tokio::test]
async fn events_to_users_and_their_termination_reach_every_node() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let mut ann_a = signed_in(&a, "ann").await;
    let mut ann_b = signed_in(&b, "ann").await;
    let mut bob = signed_in(&b, "bob").await;
    // pusher-js subscribes to its user's channel after signing in; others may not.
    ann_a
        .send(&json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-ann"}}))
        .await;
    assert_eq!(
        ann_a.next_frame().await,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "#server-to-user-ann", "data": "{}"})
    );
    bob.send(&json!({"event": "pusher:subscribe", "data": {"channel": "#server-to-user-ann"}}))
        .await;
    let refused = bob.next_frame().await;
    assert_eq!(refused["data"]["status"], 403, "{refused}");

    // sendToUser: an event on the user's channel, to all of the user's connections.
    let body = json!({"name": "notice", "channel": "#server-to-user-ann", "data": "hi"});
    assert_eq!(trigger(&a, &body, SECRET).await.status, 200);
    for ann in [&mut ann_a, &mut ann_b] {
        assert_eq!(
            ann.next_frame().await,
            json!({"event": "notice", "channel": "#server-to-user-ann", "data": "hi"})
        );
    }
    // Reserved event names are the server's.
    let body = json!({"name": "pusher_internal:terminate", "channel": "news", "data": "x"});
    assert_eq!(trigger(&a, &body, SECRET).await.status, 400);

    // terminate_connections: both of ann's connections close with 4009; bob's stays.
    let reply = signed_post(&a, "users/ann/terminate_connections", &json!({}), SECRET).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for ann in [&mut ann_a, &mut ann_b] {
        assert_eq!(ann.expect_close().await, 4009);
    }
    bob.send(&json!({"event": "pusher:ping"})).await;
    assert_eq!(bob.next_frame().await["event"], "pusher:pong");
}

#[tokio::test]
async fn encrypted_channels_need_an_authorization_pass_data_through_and_refuse_client_events() {
    let gw = TestGateway::start_with(with_app(test_config())).await;
    // Without a signature: refused, as for private channels.
    let (mut stranger, _) = pusher_client(&gw, KEY).await;
    stranger
        .send(&json!({"event": "pusher:subscribe", "data": {"channel": "private-encrypted-vault"}}))
        .await;
    let refused = stranger.next_frame().await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    // Signed for this socket: subscribed; what the app's server encrypted arrives as it was.
    let (mut c, _) = join_private(&gw, "private-encrypted-vault").await;
    let sealed = r#"{"nonce":"bm9uY2U=","ciphertext":"c2VhbGVk"}"#;
    let body = json!({"name": "secret", "channel": "private-encrypted-vault", "data": sealed});
    assert_eq!(trigger(&gw, &body, SECRET).await.status, 200);
    assert_eq!(
        c.next_frame().await,
        json!({"event": "secret", "channel": "private-encrypted-vault", "data": sealed})
    );
    // Client events would be in the clear: Pusher refuses them there, and so does Herald.
    c.send(&json!({"event": "client-peek", "channel": "private-encrypted-vault", "data": {}}))
        .await;
    let error = c.next_frame().await;
    assert_eq!(error["event"], "pusher:error", "{error}");
}

//! Tests of `message`.

use super::*;

#[test]
fn decodes_what_pusher_js_sends() {
    assert!(matches!(
        ClientMessage::decode(r#"{"event":"pusher:ping","data":{}}"#).unwrap(),
        ClientMessage::Ping
    ));
    let m = ClientMessage::decode(
        r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel":"private-a"}}"#,
    )
    .unwrap();
    let ClientMessage::Subscribe {
        channel,
        auth,
        channel_data,
    } = m
    else {
        panic!("{m:?}");
    };
    assert_eq!(channel.as_str(), "private-a");
    assert_eq!((auth.as_deref(), channel_data), (Some("k:s"), None));
    // `data` as a string of JSON, as some older clients send it.
    let m =
        ClientMessage::decode(r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"news\"}"}"#)
            .unwrap();
    assert!(
        matches!(&m, ClientMessage::Unsubscribe { channel } if channel.as_str() == "news"),
        "{m:?}"
    );
    let m = ClientMessage::decode(
        r#"{"event":"client-typing","channel":"private-a","data":{"who":"ann"}}"#,
    )
    .unwrap();
    let ClientMessage::ClientEvent { event, data, .. } = m else {
        panic!("{m:?}");
    };
    assert_eq!(
        (event.as_str(), data.get()),
        ("client-typing", r#"{"who":"ann"}"#)
    );
}

#[test]
fn refuses_what_it_cannot_serve() {
    let err = |t: &str| ClientMessage::decode(t).unwrap_err().to_string();
    assert!(err("not json").contains("invalid JSON"));
    assert!(err(r#"{"data":{}}"#).contains("invalid JSON"));
    assert!(err(r#"{"event":"pusher:other"}"#).contains("unsupported event"));
    assert!(err(r#"{"event":"pusher:subscribe"}"#).contains("missing or invalid data"));
    assert!(
        err(r#"{"event":"pusher:subscribe","data":{"channel":"a b"}}"#)
            .contains("invalid channel name")
    );
    assert!(err(r#"{"event":"client-x","data":1}"#).contains("channel"));
}

#[test]
fn presence_frames_and_channel_data() {
    let data = presence_data([("1", r#"{"name":"Ann"}"#), ("bob", "null")]);
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"presence": {"ids": ["1", "bob"], "hash": {"1": {"name": "Ann"}, "bob": null}, "count": 2}})
    );
    let v: serde_json::Value =
        serde_json::from_str(&member_added("presence-x", "1", r#"{"a":1}"#)).unwrap();
    let inner: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        inner,
        serde_json::json!({"user_id": "1", "user_info": {"a": 1}})
    );
    let v: serde_json::Value = serde_json::from_str(&member_removed("presence-x", "1")).unwrap();
    assert_eq!(v["event"], "pusher_internal:member_removed");
    assert_eq!(
        ChannelData::parse(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#).unwrap(),
        ChannelData {
            user_id: "10".into(),
            user_info: r#"{"name":"Mr. Channels"}"#.into()
        }
    );
    assert_eq!(
        ChannelData::parse(r#"{"user_id":"u"}"#).unwrap().user_info,
        "null"
    );
    for bad in ["", "{}", r#"{"user_id":""}"#, r#"{"user_id":[1]}"#, "[]"] {
        assert!(ChannelData::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn server_frames_are_what_pusher_js_parses() {
    let v: serde_json::Value = serde_json::from_str(&connection_established("1.2", 120)).unwrap();
    assert_eq!(v["event"], "pusher:connection_established");
    let data: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"socket_id": "1.2", "activity_timeout": 120})
    );

    let v: serde_json::Value =
        serde_json::from_str(&event("e", "news", r#"{"a":1}"#, None)).unwrap();
    assert_eq!(
        v["data"], r#"{"a":1}"#,
        "non-string data goes as its JSON text"
    );
    let v: serde_json::Value =
        serde_json::from_str(&event("e", "news", r#""{\"a\":1}""#, None)).unwrap();
    assert_eq!(v["data"], r#"{"a":1}"#, "string data goes as that string");

    let v: serde_json::Value = serde_json::from_str(&error(Some(4301), "slow \"down\"")).unwrap();
    assert_eq!(v["data"]["code"], 4301);
    assert_eq!(v["data"]["message"], "slow \"down\"");
    let v: serde_json::Value =
        serde_json::from_str(&subscription_error("private-a", "AuthError", "no", 401)).unwrap();
    assert_eq!(v["data"]["status"], 401);
    let v: serde_json::Value = serde_json::from_str(&subscription_succeeded("news", "{}")).unwrap();
    assert_eq!(v["data"], "{}");
    for frame in [pong(), ping()] {
        serde_json::from_str::<serde_json::Value>(frame).unwrap();
    }
    let v: serde_json::Value =
        serde_json::from_str(&event("client-x", "presence-a", "1", Some("ann"))).unwrap();
    assert_eq!(v["user_id"], "ann", "{v}");
}

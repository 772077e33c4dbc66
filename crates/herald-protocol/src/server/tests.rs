//! Tests of `server`.

use super::*;

fn payload(frame: &Bytes) -> &[u8] {
    // Server frames are unmasked: a header of 2 bytes, or 4 with a 16-bit length.
    match frame[1] {
        126 => &frame[4..],
        n => {
            assert!(n < 126);
            &frame[2..]
        }
    }
}

#[test]
fn json_push_has_the_documented_shape() {
    let c = ChannelName::parse("news").unwrap();
    let f = push(WireFormat::Json, &c, br#"{"x":1}"#, Some(42), None).unwrap();
    assert_eq!(f[0], 0x81, "a final text frame");
    let v: serde_json::Value = serde_json::from_slice(payload(&f)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"push":{"channel":"news","data":{"x":1},"offset":42}})
    );
    let f = push(WireFormat::Json, &c, b"null", None, None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(payload(&f)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"push":{"channel":"news","data":null}})
    );
}

#[test]
fn a_push_carries_its_event_name_in_both_formats() {
    let c = ChannelName::parse("orders").unwrap();
    let event = EventName::parse(r#"App\Events\Order "shipped""#).unwrap();
    let f = push(WireFormat::Json, &c, b"1", Some(3), Some(&event)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(payload(&f)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"push":{"channel":"orders","data":1,"offset":3,"event":r#"App\Events\Order "shipped""#}})
    );
    let f = push(WireFormat::MsgPack, &c, b"1", None, Some(&event)).unwrap();
    let v: serde_json::Value = rmp_serde::from_slice(payload(&f)).unwrap();
    assert_eq!(v["push"]["event"], event.as_str());
}

#[test]
fn msgpack_push_is_the_same_structure() {
    let c = ChannelName::parse("chat:room1").unwrap();
    let f = push(
        WireFormat::MsgPack,
        &c,
        br#"{"x":[1,2.5,"s",true]}"#,
        Some(u64::MAX),
        None,
    )
    .unwrap();
    assert_eq!(f[0], 0x82, "a final binary frame");
    let v: serde_json::Value = rmp_serde::from_slice(payload(&f)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"push":{"channel":"chat:room1","data":{"x":[1,2.5,"s",true]},"offset":u64::MAX}})
    );
    assert!(push(WireFormat::MsgPack, &c, b"{bad", None, None).is_err());
}

#[test]
fn replies_have_the_documented_shape() {
    let ok = reply_ok(
        WireFormat::Json,
        1,
        &ReplyOk::Subscribe {
            subscribed: &["news".into()],
            failed: &[ChannelFailure::new("a b", ErrorCode::InvalidChannel, "bad")],
            recovery: &[],
            positions: &[ChannelPosition {
                channel: "news".into(),
                offset: 7,
                epoch: Some("e1".into()),
            }],
        },
    );
    let v: serde_json::Value = serde_json::from_slice(payload(&ok)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id":1,"ok":{"subscribed":["news"],"failed":[{"channel":"a b","code":102,"message":"bad"}],"positions":[{"channel":"news","offset":7,"epoch":"e1"}]}})
    );
    let err = reply_error(WireFormat::MsgPack, None, ErrorCode::BadRequest, "nope");
    let v: serde_json::Value = rmp_serde::from_slice(payload(&err)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"error":{"code":101,"message":"nope"}})
    );
}

#[test]
fn itoa_writes_decimal() {
    for n in [0, 7, 10, 99, 12345, u64::MAX] {
        assert_eq!(itoa_u64(n, &mut [0; 20]), n.to_string().as_bytes());
    }
}

#[test]
fn presence_pushes_name_the_change() {
    use crate::presence::{Change, Member, PresenceNotice};
    let c = ChannelName::parse("room:1").unwrap();
    let n = PresenceNotice {
        change: Change::Join,
        member: Member {
            user: "u1".into(),
            info: serde_json::json!({"name": "Ann"}),
        },
    };
    let f = presence(WireFormat::Json, &c, &n);
    let v: serde_json::Value = serde_json::from_slice(payload(&f)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"join":{"channel":"room:1","user":"u1","info":{"name":"Ann"}}})
    );
    let f = presence(WireFormat::MsgPack, &c, &n);
    assert_eq!(f[0], 0x82, "a final binary frame");
    let v: serde_json::Value = rmp_serde::from_slice(payload(&f)).unwrap();
    assert_eq!(v["join"]["user"], "u1");
}

#[test]
fn history_replies_carry_the_position_and_the_publications() {
    let items = [
        HistoryItem {
            data: br#"{"x":1}"#,
            offset: Some(7),
            event: None,
        },
        HistoryItem {
            data: b"2",
            offset: Some(8),
            event: Some("e"),
        },
    ];
    let ok = ReplyOk::History {
        channel: "news",
        offset: 8,
        epoch: Some("ab12"),
        publications: &items,
    };
    let json: serde_json::Value =
        serde_json::from_slice(payload(&reply_ok(WireFormat::Json, 3, &ok))).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id":3,"ok":{"channel":"news","offset":8,"epoch":"ab12","publications":[
            {"data":{"x":1},"offset":7},{"data":2,"offset":8,"event":"e"}]}})
    );
    let packed: serde_json::Value =
        rmp_serde::from_slice(payload(&reply_ok(WireFormat::MsgPack, 3, &ok))).unwrap();
    assert_eq!(packed, json);
}

#[test]
fn gap_notices_name_the_missing_offsets_and_the_epoch_when_known() {
    let channel = ChannelName::parse("news").unwrap();
    let missing = Some(Missing { from: 41, to: 44 });
    let notice = gap(WireFormat::Json, &channel, "lost", missing, Some("e2"));
    let v: serde_json::Value = serde_json::from_slice(payload(&notice)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"gap":{"channel":"news","reason":"lost","missing":{"from":41,"to":44},"epoch":"e2"}})
    );
    let notice = gap(WireFormat::Json, &channel, "lost", None, None);
    let v: serde_json::Value = serde_json::from_slice(payload(&notice)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"gap":{"channel":"news","reason":"lost"}})
    );
}

#[test]
fn an_unsubscribed_notice_names_its_channel_in_both_formats() {
    let channel = ChannelName::parse("chat:room").unwrap();
    let notice = unsubscribed(WireFormat::Json, &channel);
    let v: serde_json::Value = serde_json::from_slice(payload(&notice)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"unsubscribed":{"channel":"chat:room"}})
    );
    let notice = unsubscribed(WireFormat::MsgPack, &channel);
    let v: serde_json::Value = rmp_serde::from_slice(payload(&notice)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"unsubscribed":{"channel":"chat:room"}})
    );
}

//! Tests of `client`.

use super::*;

fn json(s: &str) -> Result<ClientRequest, RequestError> {
    ClientRequest::decode(WireFormat::Json, s.as_bytes())
}

#[test]
fn measures_json_depth_outside_strings() {
    assert_eq!(json_depth(b"1"), 0);
    assert_eq!(json_depth(b"[1,{\"a\":[2]}]"), 3);
    assert_eq!(json_depth(br#"{"a":"[[[[\"]]"}"#), 1);
    assert_eq!(json_depth(br#"["\\",[]]"#), 2);
}

#[test]
fn decodes_presence_queries() {
    let r = json(r#"{"id":4,"presence":{"channel":"room:1"}}"#).unwrap();
    assert_eq!(
        r.command,
        Command::Presence {
            channel: "room:1".into()
        }
    );
    let r = json(r#"{"id":5,"presence_stats":{"channel":"room:1"}}"#).unwrap();
    assert_eq!(
        r.command,
        Command::PresenceStats {
            channel: "room:1".into()
        }
    );
    let e = json(r#"{"id":6,"presence":{}}"#).unwrap_err();
    assert_eq!(e.id, Some(6));
}

#[test]
fn decodes_the_three_commands_in_json() {
    let r = json(r#"{"id":1,"subscribe":{"channels":["news","chat:room1"]}}"#).unwrap();
    assert_eq!(r.id, 1);
    assert_eq!(
        r.command,
        Command::Subscribe {
            channels: vec!["news".into(), "chat:room1".into()],
            token: None,
            recover: vec![],
        }
    );
    let r = json(r#"{"id":7,"subscribe":{"channels":["p:1"],"token":"t"}}"#).unwrap();
    assert_eq!(
        r.command,
        Command::Subscribe {
            channels: vec!["p:1".into()],
            token: Some("t".into()),
            recover: vec![],
        }
    );
    let r = json(r#"{"id":8,"refresh":{"token":"t2"}}"#).unwrap();
    assert_eq!(r.command, Command::Refresh { token: "t2".into() });
    assert_eq!(json(r#"{"id":9,"refresh":{}}"#).unwrap_err().id, Some(9));
    let r = json(r#"{"unsubscribe":{"channels":["news"]},"id":2}"#).unwrap();
    assert_eq!(
        r.command,
        Command::Unsubscribe {
            channels: vec!["news".into()]
        }
    );
    let r = json(r#"{"id":3,"publish":{"channel":"c","data":{"x":[1,"a"]}}}"#).unwrap();
    assert_eq!(
        r.command,
        Command::Publish {
            channel: "c".into(),
            data: Bytes::from_static(br#"{"x":[1,"a"]}"#)
        }
    );
}

#[test]
fn msgpack_data_becomes_json() {
    #[derive(serde::Serialize)]
    struct P<'a> {
        channel: &'a str,
        data: serde_json::Value,
    }
    #[derive(serde::Serialize)]
    struct R<'a> {
        id: u64,
        publish: P<'a>,
    }
    let frame = rmp_serde::to_vec_named(&R {
        id: 9,
        publish: P {
            channel: "news",
            data: serde_json::json!({"x": 1, "y": [true, null, "s"]}),
        },
    })
    .unwrap();
    let r = ClientRequest::decode(WireFormat::MsgPack, &frame).unwrap();
    assert_eq!(r.id, 9);
    let Command::Publish { data, .. } = r.command else {
        panic!("not a publish")
    };
    let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(v, serde_json::json!({"x": 1, "y": [true, null, "s"]}));
}

#[test]
fn bad_frames_are_errors_with_the_id_when_readable() {
    let e = json(r#"{"id":7,"subscribe":{"channels":"news"}}"#).unwrap_err();
    assert_eq!(e.id, Some(7));
    let e = json(r#"{"id":8}"#).unwrap_err();
    assert_eq!(e.id, Some(8));
    assert!(e.to_string().contains("missing command"), "{e}");
    let e = json(r#"{"id":8,"subscribe":{"channels":[]},"publish":{"channel":"a","data":1}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("exactly one command"), "{e}");
    assert_eq!(json("{not json").unwrap_err().id, None);
    assert_eq!(json("[1,2]").unwrap_err().id, None);
    assert!(json(r#"{"subscribe":{"channels":[]}}"#).is_err());
    assert!(ClientRequest::decode(WireFormat::MsgPack, &[0xc1, 0xff]).is_err());
    assert!(ClientRequest::decode(WireFormat::MsgPack, &[]).is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let r = json(r#"{"id":1,"future":{"a":1},"subscribe":{"channels":["a"],"x":2}}"#).unwrap();
    assert_eq!(r.id, 1);
}

#[test]
fn decodes_history_requests() {
    let r = json(r#"{"id":5,"history":{"channel":"news"}}"#).unwrap();
    assert_eq!(
        r.command,
        Command::History(HistoryRequest {
            channel: "news".into(),
            limit: None,
            since: None,
            reverse: false,
        })
    );
    let r = json(
        r#"{"id":6,"history":{"channel":"news","limit":10,"since":{"offset":7,"epoch":"ab12"},"reverse":true}}"#,
    )
    .unwrap();
    let Command::History(h) = r.command else {
        panic!("a history request");
    };
    assert_eq!((h.limit, h.reverse), (Some(10), true));
    assert_eq!(
        h.since.map(|p| (p.offset, p.epoch.to_string())),
        Some((7, "ab12".into()))
    );
    // A bad epoch, or an unknown field, is a bad request that still names its id.
    let e = json(r#"{"id":7,"history":{"channel":"n","since":{"offset":1,"epoch":"a b"}}}"#)
        .unwrap_err();
    assert_eq!(e.id, Some(7));
    assert!(json(r#"{"id":8,"history":{"channel":"n","from":1}}"#).is_err());
}

#[test]
fn subscribes_carry_positions_to_recover() {
    let r = json(
        r#"{"id":9,"subscribe":{"channels":["news","b"],"recover":{"news":{"offset":41,"epoch":"e1"}}}}"#,
    )
    .unwrap();
    let Command::Subscribe { recover, .. } = r.command else {
        panic!("a subscribe");
    };
    assert_eq!(recover.len(), 1);
    assert_eq!((recover[0].0.as_str(), recover[0].1.offset), ("news", 41));
    let bad = json(r#"{"id":10,"subscribe":{"channels":["a"],"recover":{"a":{"offset":1}}}}"#);
    assert_eq!(bad.unwrap_err().id, Some(10));
}

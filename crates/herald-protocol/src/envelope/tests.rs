//! The envelope's forms, decoded.

use super::*;

fn packed<T: serde::Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec(v).unwrap()
}

/// An envelope with every element, built from [`LAYOUT`] alone.
fn every_field(id: uuid::Uuid) -> Vec<u8> {
    use serde_json::{json, Value};
    let values: Vec<Value> = LAYOUT
        .iter()
        .map(|field| match field {
            Field::Version => json!(VERSION),
            Field::Offset => json!(42),
            Field::Data => json!(r#"{"x":1}"#),
            Field::Id => json!(id.to_string()),
            Field::PublishedAtUs => json!(1_700_000_000_000_000u64),
            Field::TraceParent => {
                json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            }
            Field::Event => json!("greeting"),
            Field::Exclude => json!("7.9"),
            Field::User => json!("ann"),
            Field::Epoch => json!("e1x"),
        })
        .collect();
    packed(&values)
}

#[test]
fn the_decoder_reads_the_layout() {
    let id = uuid::Uuid::now_v7();
    let e = Envelope::decode(&every_field(id)).unwrap();
    assert_eq!(e.offset, Some(42));
    assert_eq!(&e.data[..], br#"{"x":1}"#);
    assert_eq!(e.id, Some(id));
    assert_eq!(e.published_at_us, Some(1_700_000_000_000_000));
    assert!(e.trace.is_some());
    assert_eq!(
        e.event.as_ref().map(crate::EventName::as_str),
        Some("greeting")
    );
    assert_eq!(e.exclude.map(|a| a.to_string()).as_deref(), Some("7.9"));
    assert_eq!(e.user.as_deref(), Some("ann"));
    assert_eq!(e.epoch.as_ref().map(crate::Epoch::as_str), Some("e1x"));
    // The optional arguments are the layout's, in order, before the epoch.
    assert_eq!(LAYOUT[5..9], OPTIONAL);
    assert_eq!(LAYOUT[9], Field::Epoch);
}

#[test]
fn decodes_the_sequenced_form() {
    let id = uuid::Uuid::now_v7();
    let m = packed(&(1u8, 42u64, r#"{"x":1}"#, id.to_string()));
    let e = Envelope::decode(&m).unwrap();
    assert_eq!(e.offset, Some(42));
    assert_eq!(&e.data[..], br#"{"x":1}"#);
    assert_eq!(e.id, Some(id));
    assert_eq!(e.published_at_us, None);
    // Without an id, as redis-cli FCALL callers send it.
    let e = Envelope::decode(&packed(&(1u8, 7u64, "[1,2]"))).unwrap();
    assert_eq!((e.offset, e.id), (Some(7), None));
    // With the publish time, and a trace context that is not valid, ignored.
    let m = packed(&(1u8, 8u64, "1", "", 1_700_000_000_123_456u64, "later"));
    let e = Envelope::decode(&m).unwrap();
    assert_eq!(
        (e.id, e.published_at_us, e.trace),
        (None, Some(1_700_000_000_123_456), None)
    );
    // With a trace context, an event name, and a field from a later version, ignored.
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let m = packed(&(1u8, 9u64, "1", "", 5u64, tp, "order-shipped", "later"));
    let e = Envelope::decode(&m).unwrap();
    assert_eq!(e.trace.as_ref().map(|t| t.as_str()), Some(tp));
    assert_eq!(e.event.as_ref().map(|t| t.as_str()), Some("order-shipped"));
    // An event without a trace context; an event name that is not valid is ignored.
    let e = Envelope::decode(&packed(&(1u8, 9u64, "1", "", 5u64, "", "e"))).unwrap();
    assert_eq!(
        (e.trace, e.event.map(|t| t.to_string())),
        (None, Some("e".into()))
    );
    let e = Envelope::decode(&packed(&(1u8, 9u64, "1", "", 5u64, "", ""))).unwrap();
    assert_eq!(e.event, None);
    // A connection to leave out.
    let m = packed(&(1u8, 9u64, "1", "", 5u64, "", "", "7.12"));
    let e = Envelope::decode(&m).unwrap();
    assert_eq!(e.exclude.map(|a| a.to_string()), Some("7.12".into()));
}

#[test]
fn decodes_the_plain_form() {
    let e = Envelope::decode(br#"{"data":{"x":[1,2]},"other":1}"#).unwrap();
    assert_eq!(e.offset, None);
    assert_eq!(&e.data[..], br#"{"x":[1,2]}"#);
}

#[test]
fn refuses_everything_else() {
    assert!(Envelope::decode(b"").is_err());
    assert!(Envelope::decode(b"hello").is_err());
    assert!(Envelope::decode(b"{\"nodata\":1}").is_err());
    assert!(Envelope::decode(b"{\"data\":").is_err());
    assert!(
        Envelope::decode(&packed(&(2u8, 1u64, "1"))).is_err(),
        "version"
    );
    assert!(
        Envelope::decode(&packed(&(1u8, 1u64, "{bad"))).is_err(),
        "data"
    );
    assert!(
        Envelope::decode(&packed(&(1u8, 1u64, "1", "nope"))).is_err(),
        "id"
    );
    assert!(Envelope::decode(&packed(&(1u8,))).is_err(), "short");
    assert!(Envelope::decode(&[0x93, 0x01]).is_err(), "truncated");
}

//! Publish and subscribe end to end over real sockets: HTTP and client publishes reach JSON
//! and MessagePack subscribers, with offsets.

use herald_protocol::WireFormat;
use herald_testkit::TestGateway;
use serde_json::json;

#[tokio::test]
async fn http_publish_reaches_json_and_msgpack_subscribers() {
    let gw = TestGateway::start().await;
    let mut plain = gw.client(None).await;
    let mut js = gw.client(Some(WireFormat::Json)).await;
    let mut mp = gw.client(Some(WireFormat::MsgPack)).await;
    for c in [&mut plain, &mut js, &mut mp] {
        c.subscribe_ok(&["news"]).await;
    }

    let r = gw.publish("news", json!({"x": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert!(
        body["id"].as_str().is_some_and(|id| id.len() == 36),
        "{body}"
    );
    assert_eq!(body["offset"], json!(1));

    let expected = json!({"channel": "news", "data": {"x": 1}, "offset": 1});
    assert_eq!(plain.next_push().await, expected);
    assert_eq!(js.next_push().await, expected);
    assert_eq!(mp.next_push().await, expected);

    gw.publish("news", json!([1, "two", null])).await;
    for c in [&mut plain, &mut js, &mut mp] {
        assert_eq!(
            c.next_push().await["offset"],
            json!(2),
            "offsets grow by one"
        );
    }
    gw.stop().await;
}

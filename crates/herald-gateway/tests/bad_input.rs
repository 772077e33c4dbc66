//! Bad input over real sockets: an error reply or the documented close code, and nothing lost
//! for anyone else.

use herald_protocol::WireFormat;
use herald_testkit::{eventually, test_config, Incoming, RawClient, TestGateway, WAIT};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_requests_get_error_replies_and_the_connection_lives_on() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(None).await;
    c.send_message(Message::text("{not json")).await;
    let Incoming::Frame(reply) = c.next().await.unwrap() else {
        panic!("expected an error reply")
    };
    assert_eq!(reply["error"]["code"], json!(101), "{reply}");
    assert!(reply.get("id").is_none(), "no id could be read: {reply}");

    c.send_message(Message::text(r#"{"id":5,"subscribe":{"channels":"news"}}"#))
        .await;
    let Incoming::Frame(reply) = c.next().await.unwrap() else {
        panic!("expected an error reply")
    };
    assert_eq!(reply["id"], json!(5), "{reply}");
    assert_eq!(reply["error"]["code"], json!(101), "{reply}");

    c.send_message(Message::text(r#"{"id":6,"teleport":{}}"#))
        .await;
    let Incoming::Frame(reply) = c.next().await.unwrap() else {
        panic!("expected an error reply")
    };
    assert_eq!(reply["id"], json!(6));
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing command"));

    // Still a working connection.
    c.subscribe_ok(&["news"]).await;
    gw.publish("news", json!(1)).await;
    assert_eq!(c.next_push().await["data"], json!(1));
    assert_eq!(gw.metric("herald_bad_requests_total").await, 3.0);
    gw.stop().await;
}

#[tokio::test]
async fn malformed_msgpack_gets_a_msgpack_error_reply() {
    let gw = TestGateway::start().await;
    let mut c = gw.client(Some(WireFormat::MsgPack)).await;
    c.send_message(Message::binary(vec![0xc1, 0x00, 0xff]))
        .await;
    let Incoming::Frame(reply) = c.next().await.unwrap() else {
        panic!("expected an error reply")
    };
    assert_eq!(reply["error"]["code"], json!(101), "{reply}");
    c.subscribe_ok(&["news"]).await;
    gw.stop().await;
}

/// Runs `bytes` through a fresh raw connection and returns the close code the server sends.
async fn close_code_for(gw: &TestGateway, bytes: &[u8]) -> u16 {
    let mut raw = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    raw.send_raw(bytes).await.unwrap();
    raw.close_code().await.unwrap()
}

#[tokio::test]
async fn broken_frames_close_with_the_documented_codes_and_hurt_no_one_else() {
    let mut config = test_config();
    config.websocket.max_message_size = 4096;
    let gw = TestGateway::start_with(config).await;
    let mut bystander = gw.client(None).await;
    bystander.subscribe_ok(&["news"]).await;

    // A frame claiming 2^40 bytes: refused from its header alone, nothing allocated for it.
    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_code_for(&gw, &huge).await, 1009);
    // 2^63 - 1 bytes claimed: too big; 2^63 (the top bit set) is not a valid length at all.
    for (claim, code) in [(u64::MAX >> 1, 1009), (1u64 << 63, 1002)] {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&claim.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(close_code_for(&gw, &frame).await, code, "length {claim}");
    }
    // One byte over the limit.
    let over = RawClient::frame(true, 0x1, &vec![b'a'; 4097]);
    assert_eq!(close_code_for(&gw, &over).await, 1009);
    // Over the limit only once reassembled.
    let mut parts = RawClient::frame(false, 0x2, &[0; 3000]);
    parts.extend(RawClient::frame(true, 0x0, &[0; 3000]));
    assert_eq!(close_code_for(&gw, &parts).await, 1009);
    // Exactly the limit is fine: an error reply (not JSON), not a close.
    let mut at_limit = RawClient::connect(gw.ws_addr, "/ws", None).await.unwrap();
    at_limit
        .send_raw(&RawClient::frame(true, 0x1, &vec![b' '; 4096]))
        .await
        .unwrap();
    assert_eq!(at_limit.next_frame().await.unwrap().0, 0x1);

    assert_eq!(
        close_code_for(&gw, &RawClient::frame(true, 0x1, &[0xC3, 0x28])).await,
        1007,
        "invalid UTF-8"
    );
    assert_eq!(
        close_code_for(&gw, &[0x81, 0x02, b'h', b'i']).await,
        1002,
        "unmasked"
    );
    let mut reserved = RawClient::frame(true, 0x1, b"hi");
    reserved[0] |= 0x40;
    assert_eq!(close_code_for(&gw, &reserved).await, 1002, "reserved bit");
    assert_eq!(
        close_code_for(&gw, &RawClient::frame(true, 0x3, b"")).await,
        1002,
        "unknown opcode"
    );
    assert_eq!(
        close_code_for(&gw, &RawClient::frame(false, 0x9, b"")).await,
        1002,
        "fragmented ping"
    );
    assert_eq!(
        close_code_for(&gw, &RawClient::frame(true, 0x9, &[7; 126])).await,
        1002,
        "ping over 125 bytes"
    );
    assert_eq!(
        close_code_for(&gw, &RawClient::frame(true, 0x0, b"x")).await,
        1002,
        "continuation without a start"
    );
    // A client's own close is answered with the same code.
    assert_eq!(
        close_code_for(&gw, &RawClient::frame(true, 0x8, &4321u16.to_be_bytes())).await,
        4321
    );

    gw.publish("news", json!("still here")).await;
    assert_eq!(bystander.next_push().await["data"], json!("still here"));
    assert!(gw.metric("herald_protocol_errors_total").await >= 9.0);
    drop(at_limit);
    eventually(WAIT, "closed connections are forgotten", || async {
        gw.metric("herald_connections").await == 1.0
    })
    .await;
    gw.stop().await;
}

//! The upgrade request, as raw bytes: read and answered by the node itself, or by hyper when
//! it is unusual; both end in a working connection or a clean refusal.

use std::time::Duration;

use herald_testkit::{RawClient, TestGateway};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Reads the answer's head; what came after it is returned too.
async fn read_head(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return (String::from_utf8(got).unwrap(), rest);
        }
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// A ping sent on `tcp` comes back as a pong (after `rest`, what followed the answer's head).
async fn pings(tcp: &mut TcpStream, rest: Vec<u8>) {
    tcp.write_all(&RawClient::frame(true, 0x9, b"hi"))
        .await
        .unwrap();
    pong(tcp, rest).await;
}

/// The next frame is the pong to a ping "hi".
async fn pong(tcp: &mut TcpStream, rest: Vec<u8>) {
    let mut got = rest;
    let mut buf = [0u8; 64];
    while got.len() < 4 {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("a pong in time")
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[..4], b"\x8a\x02hi", "a pong");
}

#[tokio::test]
async fn an_upgrade_in_pieces_and_one_with_a_frame_behind_it_are_served() {
    let gw = TestGateway::start().await;
    // The head in three writes.
    let request = upgrade_request("/ws", "");
    let mut tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
    for piece in [&request[..10], &request[10..60], &request[60..]] {
        tcp.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (head, rest) = read_head(&mut tcp).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    pings(&mut tcp, rest).await;

    // A ping in the same write as the request: read after the head, not lost.
    let mut tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
    let mut bytes = upgrade_request("/ws", "").into_bytes();
    bytes.extend_from_slice(&RawClient::frame(true, 0x9, b"hi"));
    tcp.write_all(&bytes).await.unwrap();
    let (head, rest) = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    pong(&mut tcp, rest).await;
    gw.stop().await;
}

/// An upgrade request with `extra` headers gets its 101, and the connection answers a ping.
async fn upgrades_with(gw: &TestGateway, extra: &str) {
    let mut tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
    tcp.write_all(upgrade_request("/ws", extra).as_bytes())
        .await
        .unwrap();
    let (head, rest) = read_head(&mut tcp).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    pings(&mut tcp, rest).await;
}

#[tokio::test]
async fn an_upgrade_with_many_headers_goes_through_hyper_and_works() {
    let gw = TestGateway::start().await;
    let extra: String = (0..60).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
    upgrades_with(&gw, &extra).await;
    // A long cookie, likewise.
    upgrades_with(&gw, &format!("Cookie: c={}\r\n", "a".repeat(20_000))).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_refused_upgrade_gets_a_whole_answer_and_the_socket_closes() {
    let gw = TestGateway::start().await;
    for (path, extra, status) in [
        ("/elsewhere", "", "404 Not Found"),
        ("/ws", "Sec-WebSocket-Protocol: mqtt\r\n", "400 Bad Request"),
    ] {
        let mut tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
        tcp.write_all(upgrade_request(path, extra).as_bytes())
            .await
            .unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut all))
            .await
            .expect("the node closes the socket after its answer")
            .unwrap();
        let text = String::from_utf8(all).unwrap();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{text}"
        );
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(body.ends_with('\n') && !body.is_empty(), "{body}");
    }
    gw.stop().await;
}

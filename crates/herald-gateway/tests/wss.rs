//! wss: the WebSocket listener speaking TLS, end to end with a rustls client.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use herald_testkit::{make_certificates, test_config, TestGateway};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_rustls::{
    rustls::{ClientConfig, RootCertStore},
    TlsConnector,
};
use tokio_tungstenite::{client_async, tungstenite::Message, WebSocketStream};

type Wss = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

struct Certs(std::path::PathBuf);

fn certs() -> Certs {
    let dir = std::env::temp_dir().join(format!(
        "herald-wss-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    Certs(dir)
}

async fn wss_client(gw: &TestGateway, certs: &Certs) -> Wss {
    wss_client_with(gw, certs, tokio_rustls::rustls::DEFAULT_VERSIONS).await
}

/// A client offering only `versions` of TLS.
async fn wss_client_with(
    gw: &TestGateway,
    certs: &Certs,
    versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion],
) -> Wss {
    let tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
    let tls = connector_with(certs, versions)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws", gw.ws_addr.port());
    let (ws, _) = client_async(url, tls).await.expect("upgrade over TLS");
    ws
}

/// A TLS client trusting the test CA.
fn tls_connector(certs: &Certs) -> TlsConnector {
    connector_with(certs, tokio_rustls::rustls::DEFAULT_VERSIONS)
}

fn connector_with(
    certs: &Certs,
    versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.0.join("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn next_json(ws: &mut Wss) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn tls_gateway(certs: &Certs) -> TestGateway {
    let mut c = test_config();
    c.channels.publish = true;
    c.websocket.tls_cert_file = Some(certs.0.join("server.crt"));
    c.websocket.tls_key_file = Some(certs.0.join("server.key"));
    TestGateway::start_with(c).await
}

/// Subscribe, publish from a client and over HTTP, receive large pushes (many TLS records,
/// partial writes) and send a fragmented message, all over TLS; then a clean close. TLS 1.3
/// (the node's own record layer after the upgrade) and TLS 1.2 (rustls throughout).
#[tokio::test]
async fn clients_speak_the_protocol_over_tls_1_3() {
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let v13 = [&tokio_rustls::rustls::version::TLS13];
    let a = wss_client_with(&gw, &certs, &v13).await;
    let b = wss_client_with(&gw, &certs, &v13).await;
    speak_the_protocol(&gw, a, b).await;
    gw.stop().await;
}

#[tokio::test]
async fn clients_speak_the_protocol_over_tls_1_2() {
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let v12 = [&tokio_rustls::rustls::version::TLS12];
    let a = wss_client_with(&gw, &certs, &v12).await;
    let b = wss_client_with(&gw, &certs, &v12).await;
    speak_the_protocol(&gw, a, b).await;
    gw.stop().await;
}

async fn speak_the_protocol(gw: &TestGateway, mut a: Wss, mut b: Wss) {
    for ws in [&mut a, &mut b] {
        ws.send(Message::text(
            r#"{"id":1,"subscribe":{"channels":["news"]}}"#,
        ))
        .await
        .unwrap();
        assert_eq!(next_json(ws).await["ok"]["subscribed"], json!(["news"]));
    }
    a.send(Message::text(
        r#"{"id":2,"publish":{"channel":"news","data":"hello"}}"#,
    ))
    .await
    .unwrap();
    // Its reply and its own push, in either order.
    let (x, y) = (next_json(&mut a).await, next_json(&mut a).await);
    let reply = if x.get("id").is_some() { &x } else { &y };
    assert!(reply["ok"]["offset"].is_u64(), "{reply}");
    assert!(x["push"]["data"] == "hello" || y["push"]["data"] == "hello");
    let big = "x".repeat(60_000);
    for i in 0..20 {
        let r = gw.publish("news", json!({"i": i, "pad": big})).await;
        assert_eq!(r.status, 200);
    }
    // b reads everything: the small push, then 20 pushes of 60 KB.
    assert_eq!(next_json(&mut b).await["push"]["data"], "hello");
    for i in 0..20 {
        let push = next_json(&mut b).await;
        assert_eq!(push["push"]["data"]["i"], i);
        assert_eq!(
            push["push"]["data"]["pad"].as_str().map(str::len),
            Some(60_000)
        );
    }
    // A large message from the client: several TLS records, cut anywhere by TCP.
    let large = json!({"id": 4, "publish": {"channel": "elsewhere", "data": "y".repeat(40_000)}});
    a.send(Message::text(large.to_string())).await.unwrap();
    // (after the pushes of `news` it is subscribed to)
    let reply = loop {
        let v = next_json(&mut a).await;
        if v.get("push").is_none() {
            break v;
        }
    };
    assert!(reply["ok"]["offset"].is_u64(), "{reply}");
    // A message in three fragments, reassembled from TLS records.
    let text = r#"{"id":3,"subscribe":{"channels":["more"]}}"#;
    let (x, rest) = text.split_at(10);
    let (y, z) = rest.split_at(10);
    let frames = [(0x01u8, x), (0x00, y), (0x80, z)];
    let raw = b.get_mut();
    for (op, part) in frames {
        let mut f = vec![op, 0x80 | part.len() as u8, 1, 2, 3, 4];
        f.extend(
            part.bytes()
                .enumerate()
                .map(|(i, c)| c ^ [1, 2, 3, 4][i % 4]),
        );
        raw.write_all(&f).await.unwrap();
    }
    raw.flush().await.unwrap();
    assert_eq!(next_json(&mut b).await["ok"]["subscribed"], json!(["more"]));
    b.close(None).await.unwrap();
    // The server answers the close and ends the connection.
    while let Some(m) = b.next().await {
        if m.is_err() {
            break;
        }
    }
    drop(a);
}

/// A client that does not speak TLS is dropped at the handshake; TLS clients go on.
#[tokio::test]
async fn plain_clients_are_dropped_at_the_tls_handshake() {
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let mut tls = wss_client(&gw, &certs).await;
    let plain = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.ws_addr)).await;
    assert!(plain.is_err());
    tls.send(Message::text(
        r#"{"id":1,"subscribe":{"channels":["news"]}}"#,
    ))
    .await
    .unwrap();
    assert!(next_json(&mut tls).await.get("ok").is_some());
    gw.stop().await;
}

/// A drain closes wss clients with 4000, as it does ws clients.
#[tokio::test]
async fn a_drain_closes_wss_clients_with_4000() {
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let mut ws = wss_client(&gw, &certs).await;
    ws.send(Message::text(
        r#"{"id":1,"subscribe":{"channels":["news"]}}"#,
    ))
    .await
    .unwrap();
    assert!(next_json(&mut ws).await.get("ok").is_some());
    gw.begin_shutdown();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("a close frame, not {other:?}"),
        }
    };
    assert_eq!(code, Some(4000));
}

/// Bad input over wss gets the same error reply as over ws, and the connection stays; the
/// connection limit refuses the upgrade with 503.
#[tokio::test]
async fn bad_input_and_limits_over_wss_are_as_over_ws() {
    let certs = certs();
    let mut c = test_config();
    c.websocket.tls_cert_file = Some(certs.0.join("server.crt"));
    c.websocket.tls_key_file = Some(certs.0.join("server.key"));
    c.limits.max_connections = 1;
    let gw = TestGateway::start_with(c).await;
    let mut ws = wss_client(&gw, &certs).await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_json(&mut ws).await["error"]["code"], 101);
    ws.send(Message::text(
        r#"{"id":2,"subscribe":{"channels":["news"]}}"#,
    ))
    .await
    .unwrap();
    assert!(next_json(&mut ws).await.get("ok").is_some());
    // A second connection is past `limits.max_connections`.
    let tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
    let mut tls = tls_connector(&certs)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let mut head = vec![0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut tls, &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 503");
    gw.stop().await;
}

/// A wss client that stops reading is evicted and its connection closed on the server, as a
/// ws client is.
#[tokio::test]
async fn a_wss_client_that_never_reads_is_evicted_and_closed() {
    let certs = certs();
    let mut c = test_config();
    c.websocket.tls_cert_file = Some(certs.0.join("server.crt"));
    c.websocket.tls_key_file = Some(certs.0.join("server.key"));
    c.websocket.outbound_queue_bytes = 64 * 1024;
    c.api.max_data_size = 32 * 1024;
    c.websocket.max_message_size = 32 * 1024;
    let gw = TestGateway::start_with(c).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(gw.ws_addr).await.unwrap();
    let tls = tls_connector(&certs)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let url = format!("wss://localhost:{}/ws", gw.ws_addr.port());
    let (mut stalled, _) = client_async(url, tls).await.unwrap();
    stalled
        .send(Message::text(
            r#"{"id":1,"subscribe":{"channels":["news"]}}"#,
        ))
        .await
        .unwrap();
    assert!(next_json(&mut stalled).await.get("ok").is_some());
    let body = json!({"channel": "news", "data": "x".repeat(16_000)}).to_string();
    let mut evicted = false;
    for _ in 0..400 {
        assert_eq!(
            gw.post("/v1/publish", &[], body.as_bytes()).await.status,
            200
        );
        if gw.metric("herald_slow_consumer_evictions_total").await == 1.0 {
            evicted = true;
            break;
        }
    }
    assert!(
        evicted,
        "400 publications of 16 KB did not evict the client"
    );
    herald_testkit::eventually(
        Duration::from_secs(5),
        "the connection is closed",
        || async { gw.metric("herald_connections").await == 0.0 },
    )
    .await;
    let closed = "herald_connections_closed_total{reason=\"slow_consumer\"}";
    assert_eq!(gw.metric(closed).await, 1.0);
    let port = gw.ws_addr.port();
    herald_testkit::eventually(Duration::from_secs(2), "no server socket left", || async {
        herald_testkit::tcp_states_on_port(port).is_empty()
    })
    .await;
    gw.stop().await;
}

/// TLS 1.3: the node sends its session ticket only with the upgrade's 101 (nothing arrives
/// between the handshake and the request), and a second connection resumes with it.
#[tokio::test]
async fn the_session_ticket_comes_with_the_101_and_a_reconnection_resumes() {
    use tokio_rustls::rustls::HandshakeKind;
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let connector = connector_with(&certs, &[&tokio_rustls::rustls::version::TLS13]);
    let connect = || async {
        let tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake")
    };
    let tls = connect().await;
    assert_eq!(tls.get_ref().1.handshake_kind(), Some(HandshakeKind::Full));
    let mut peek = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), tls.get_ref().0.peek(&mut peek));
    assert!(early.await.is_err(), "nothing sent before the request");
    let url = format!("wss://localhost:{}/ws", gw.ws_addr.port());
    let (mut ws, _) = client_async(url.clone(), tls).await.expect("upgrade");
    ws.send(Message::text(r#"{"id":1,"subscribe":{"channels":["a"]}}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["ok"]["subscribed"], json!(["a"]));
    ws.close(None).await.unwrap();

    let tls = connect().await;
    assert_eq!(
        tls.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    let (mut ws, _) = client_async(url, tls).await.expect("upgrade");
    ws.send(Message::text(r#"{"id":1,"subscribe":{"channels":["a"]}}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["ok"]["subscribed"], json!(["a"]));
    gw.stop().await;
}

/// An upgrade hyper serves (more headers than the node reads itself) works over TLS too, and
/// its 101 brings the session ticket as well.
#[tokio::test]
async fn an_upgrade_served_by_hyper_works_over_tls() {
    use tokio::io::AsyncReadExt;
    use tokio_rustls::rustls::HandshakeKind;
    let certs = certs();
    let gw = tls_gateway(&certs).await;
    let connector = connector_with(&certs, &[&tokio_rustls::rustls::version::TLS13]);
    let extra: String = (0..60).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
    for kind in [HandshakeKind::Full, HandshakeKind::Resumed] {
        let tcp = TcpStream::connect(gw.ws_addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(kind));
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
                .await
                .expect("an answer in time")
                .unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 101 "),
            "{}",
            String::from_utf8_lossy(&got)
        );
        // A masked ping "hi"; its pong comes back through the node's record layer.
        tls.write_all(&[0x89, 0x82, 0, 0, 0, 0, b'h', b'i'])
            .await
            .unwrap();
        let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut frames = got.split_off(end);
        while frames.len() < 4 {
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
                .await
                .expect("a pong in time")
                .unwrap();
            assert!(n > 0, "closed");
            frames.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&frames[..4], b"\x8a\x02hi");
    }
    gw.stop().await;
}

#[test]
fn a_missing_or_mismatched_key_is_a_configuration_error() {
    let certs = certs();
    let env = |cert: &str, key: &str| {
        vec![
            (
                "HERALD__WEBSOCKET__TLS_CERT_FILE".to_string(),
                certs.0.join(cert).display().to_string(),
            ),
            (
                "HERALD__WEBSOCKET__TLS_KEY_FILE".to_string(),
                certs.0.join(key).display().to_string(),
            ),
        ]
    };
    use herald_gateway::config::GatewayConfig;
    assert!(GatewayConfig::load_from(None, env("server.crt", "server.key")).is_ok());
    let e = GatewayConfig::load_from(None, env("server.crt", "ca.key")).unwrap_err();
    assert!(e.to_string().contains("websocket"), "{e}");
    let e = GatewayConfig::load_from(None, env("nope.crt", "server.key")).unwrap_err();
    assert!(e.to_string().contains("tls_cert_file"), "{e}");
    let only_cert = vec![env("server.crt", "server.key").remove(0)];
    let e = GatewayConfig::load_from(None, only_cert).unwrap_err();
    assert!(e.to_string().contains("go together"), "{e}");
}

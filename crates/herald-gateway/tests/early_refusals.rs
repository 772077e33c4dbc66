//! Refusals the API makes from a request's headers (413 from `Content-Length`, 401 before the
//! body) reach clients that write their whole body before reading, as Python's urllib does:
//! the node reads and drops the rest of the body instead of resetting the connection.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use herald_testkit::{test_config, TestGateway};

/// Writes a POST with a `size`-byte body whole, then reads the whole answer.
fn post_all(api: SocketAddr, path: &str, size: usize) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect(api)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes())?;
    let chunk = vec![b' '; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        tcp.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut answer = String::new();
    tcp.read_to_string(&mut answer)?;
    Ok(answer)
}

async fn post_all_async(api: SocketAddr, path: &'static str, size: usize) -> String {
    tokio::task::spawn_blocking(move || post_all(api, path, size))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the client lost the answer: {e}"))
}

#[tokio::test]
async fn a_413_or_a_401_from_the_headers_is_read_by_a_client_still_sending() {
    let gw = TestGateway::start().await;
    // Bodies far over the limit: the node stops reading long before the client stops
    // sending.
    let answer = post_all_async(gw.api_addr, "/v1/publish", 256 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":106"), "{answer}");

    let mut config = test_config();
    config.api.keys = vec!["k".into()];
    let keyed = TestGateway::start_with(config).await;
    let answer = post_all_async(keyed.api_addr, "/v1/publish", 256 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // The node still serves.
    assert_eq!(gw.get("/healthz").await.status, 200);
}

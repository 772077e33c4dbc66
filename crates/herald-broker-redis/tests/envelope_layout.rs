//! The envelope Herald's Redis function writes, read raw off a real Redis, element by element
//! against `herald_protocol::envelope::LAYOUT`: the one description both sides keep.

use std::time::Duration;

use bytes::Bytes;
use herald_broker::{Broker, PublishMeta};
use herald_protocol::{
    envelope::{Envelope, Field, LAYOUT},
    ChannelName, ConnAddress, ConnId, EventName, TraceParent,
};
use herald_testkit::{redis_broker, RedisServer};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// A raw RESP subscriber of one pub/sub channel.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn subscribe(port: u16, channel: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let command = format!(
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(command.as_bytes()).await.unwrap();
        let mut raw = Self {
            stream,
            buf: Vec::new(),
        };
        // The confirmation: `subscribe`, the channel, the count.
        raw.array().await;
        raw
    }

    /// The next array of bulk strings and integers, as byte strings.
    async fn array(&mut self) -> Vec<Vec<u8>> {
        let n: usize = self.line().await[1..].parse().unwrap();
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let head = self.line().await;
            if let Some(len) = head.strip_prefix('$') {
                let len: usize = len.parse().unwrap();
                self.fill(len + 2).await;
                items.push(self.buf.drain(..len + 2).take(len).collect());
            } else {
                items.push(head.into_bytes());
            }
        }
        items
    }

    async fn line(&mut self) -> String {
        for _ in 0..1000 {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                self.buf.drain(..end + 2);
                return line;
            }
            self.read().await;
        }
        panic!("no line from redis");
    }

    async fn fill(&mut self, n: usize) {
        for _ in 0..10_000 {
            if self.buf.len() >= n {
                return;
            }
            self.read().await;
        }
        panic!("redis sent too little");
    }

    async fn read(&mut self) {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
            .await
            .expect("redis answers within 5 s")
            .unwrap();
        assert!(read > 0, "redis closed the connection");
        self.buf.extend_from_slice(&chunk[..read]);
    }
}

/// Publishes `meta` on `news` and reads the envelope off Redis, raw.
async fn published(meta: PublishMeta) -> (Vec<Value>, Vec<u8>) {
    let redis = RedisServer::start().await;
    let broker = redis_broker(&redis).await;
    let mut raw = Raw::subscribe(redis.port(), "herald:ch:{news}").await;
    let channel = ChannelName::parse("news").unwrap();
    broker
        .publish(channel, Bytes::from_static(br#"{"x":1}"#), meta)
        .await
        .unwrap();
    let message = raw.array().await;
    assert_eq!(message[0], b"message");
    let payload = message[2].clone();
    (rmp_serde::from_slice(&payload).unwrap(), payload)
}

#[tokio::test]
async fn the_function_writes_every_element_where_the_layout_says() {
    let meta = PublishMeta {
        trace: TraceParent::parse(TRACE),
        event: Some(EventName::parse("greeting").unwrap()),
        exclude: Some(ConnAddress {
            node: 7,
            conn: ConnId(9),
        }),
        user: Some("ann".into()),
        ..Default::default()
    };
    let (elements, payload) = published(meta).await;
    assert_eq!(elements.len(), LAYOUT.len(), "{elements:?}");
    for (field, value) in LAYOUT.iter().zip(&elements) {
        match field {
            Field::Version => assert_eq!(value, 1, "{field:?}"),
            Field::Offset => assert_eq!(value, 1, "{field:?}"),
            Field::Data => assert_eq!(value, r#"{"x":1}"#, "{field:?}"),
            Field::Id => assert_eq!(value.as_str().map(str::len), Some(36), "{field:?}"),
            Field::PublishedAtUs => assert!(value.as_u64().unwrap() > 1 << 50, "{field:?}"),
            Field::TraceParent => assert_eq!(value, TRACE, "{field:?}"),
            Field::Event => assert_eq!(value, "greeting", "{field:?}"),
            Field::Exclude => assert_eq!(value, "7.9", "{field:?}"),
            Field::User => assert_eq!(value, "ann", "{field:?}"),
            Field::Epoch => assert_eq!(value.as_str().map(str::len), Some(13), "{field:?}"),
        }
    }
    let decoded = Envelope::decode(&payload).unwrap();
    assert_eq!(decoded.user.as_deref(), Some("ann"));
    assert_eq!(decoded.exclude.map(|a| a.conn), Some(ConnId(9)));
}

#[tokio::test]
async fn elements_not_given_are_empty_and_the_epoch_is_always_last() {
    let meta = PublishMeta {
        event: Some(EventName::parse("greeting").unwrap()),
        ..Default::default()
    };
    let (elements, _) = published(meta).await;
    assert_eq!(elements.len(), LAYOUT.len(), "{elements:?}");
    for (field, value) in LAYOUT.iter().zip(&elements) {
        match field {
            Field::TraceParent | Field::Exclude | Field::User => assert_eq!(value, "", "{field:?}"),
            Field::Event => assert_eq!(value, "greeting"),
            Field::Epoch => assert!(value.as_str().is_some_and(|e| !e.is_empty())),
            _ => {}
        }
    }
}

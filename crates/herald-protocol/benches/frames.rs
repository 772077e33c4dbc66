//! Encoding a push once per wire format, and decoding client requests and frames.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use herald_protocol::{
    client::ClientRequest,
    server,
    ws::{client_frame, Decoder, OpCode},
    ChannelName, WireFormat,
};

fn frames(c: &mut Criterion) {
    let channel = ChannelName::parse("chat:room1").expect("name");
    let data = format!(r#"{{"text":"{}","n":42}}"#, "x".repeat(80));
    c.bench_function("push_json_100B", |b| {
        b.iter(|| {
            server::push(
                WireFormat::Json,
                &channel,
                black_box(data.as_bytes()),
                Some(7),
                None,
            )
        })
    });
    c.bench_function("push_msgpack_100B", |b| {
        b.iter(|| {
            server::push(
                WireFormat::MsgPack,
                &channel,
                black_box(data.as_bytes()),
                Some(7),
                None,
            )
        })
    });
    let request = format!(r#"{{"id":3,"publish":{{"channel":"chat:room1","data":{data}}}}}"#);
    c.bench_function("decode_publish_request_json", |b| {
        b.iter(|| ClientRequest::decode(WireFormat::Json, black_box(request.as_bytes())))
    });
    let frame = client_frame(true, OpCode::Text, [1, 2, 3, 4], request.as_bytes());
    c.bench_function("decode_client_frame", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            Decoder::new(65536).decode(black_box(&mut buf))
        })
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);

//! The server's share of a TLS 1.3 key exchange (a key pair, then the agreement with the
//! client's share), as rustls runs it in a handshake, for the groups the WebSocket listener
//! offers, from aws-lc-rs (what the node uses) and from ring (what it used before).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tokio_rustls::rustls::crypto::{aws_lc_rs, ring, SupportedKxGroup};

fn key_exchange(c: &mut Criterion) {
    let groups: [(&str, &dyn SupportedKxGroup); 4] = [
        ("x25519_aws_lc_rs", aws_lc_rs::kx_group::X25519),
        ("x25519_ring", ring::kx_group::X25519),
        ("p256_aws_lc_rs", aws_lc_rs::kx_group::SECP256R1),
        ("p256_ring", ring::kx_group::SECP256R1),
    ];
    for (name, group) in groups {
        // A client's share of the same group.
        let client = group.start().expect("a key pair");
        let share = client.pub_key().to_vec();
        c.bench_function(name, |b| {
            b.iter(|| {
                group
                    .start_and_complete(black_box(&share))
                    .expect("an agreement")
            })
        });
    }
}

criterion_group!(benches, key_exchange);
criterion_main!(benches);

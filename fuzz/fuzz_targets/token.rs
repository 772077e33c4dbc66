//! Connection tokens: arbitrary text as a token, and arbitrary header and claims JSON signed
//! with the right key (so that the claim checks see every shape). Nothing may panic, and no
//! token verifies without the key's signature.

#![no_main]

use herald_auth::{AuthConfig, KeyConfig, Verifier};
use jsonwebtoken::{crypto::sign, Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing secret of at least 32 bytes";

fn verifier() -> Verifier {
    let key = KeyConfig::hs256(SECRET);
    let config = AuthConfig {
        keys: vec![key],
        audience: Some("herald".into()),
        issuer: Some("fuzz".into()),
        ..AuthConfig::default()
    };
    Verifier::new(&config).expect("a usable key")
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    static VERIFIER: std::sync::OnceLock<Verifier> = std::sync::OnceLock::new();
    let verifier = VERIFIER.get_or_init(verifier);
    if let Ok(text) = std::str::from_utf8(data) {
        // Arbitrary text is never signed with the fuzzing secret.
        assert!(verifier.verify(text).is_err(), "an unsigned token verified");
    }
    // header 0xff claims, signed with the key the verifier holds.
    let (header, claims) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], data),
    };
    let message = format!("{}.{}", b64(header), b64(claims));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = sign(message.as_bytes(), &key, Algorithm::HS256).expect("HMAC signs");
    let _ = verifier.verify(&format!("{message}.{signature}"));
});

//! Connection tokens (JWT) and channel permissions, over real sockets.

use std::{path::PathBuf, process::Command, time::Duration};

use herald_gateway::config::{
    GatewayConfig, KeyConfig, NamespaceConfig, SubscribePolicy, TokenAlgorithm,
};
use herald_testkit::{test_config, Incoming, ServiceProcess, TestGateway, WsClient};
use jsonwebtoken::{encode, get_current_timestamp as now, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &str = "an HS256 secret of at least 32 bytes!";

fn hs_key() -> KeyConfig {
    KeyConfig::hs256(SECRET)
}

fn hs(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn namespace(subscribe: SubscribePolicy, presence: bool) -> NamespaceConfig {
    NamespaceConfig {
        subscribe,
        presence,
        ..NamespaceConfig::default()
    }
}

/// Tokens required, HS256, audience and issuer checked, no clock leeway.
fn strict() -> GatewayConfig {
    let mut c = test_config();
    c.auth.anonymous = false;
    c.auth.keys = vec![hs_key()];
    c.auth.audience = Some("herald".into());
    c.auth.issuer = Some("https://auth.example".into());
    c.auth.leeway = Duration::ZERO;
    c.namespaces
        .insert("room".into(), namespace(SubscribePolicy::Anyone, true));
    c
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "aud": "herald", "iss": "https://auth.example", "exp": now() + 600})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // base64url without padding, enough for hand-made tokens.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let _ = out.write_char(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_token_in_the_url_or_the_header_names_the_user() {
    let gw = TestGateway::start_with(strict()).await;
    let token = hs(&with(claims("alice"), json!({"info": {"name": "Alice"}})));
    let mut a = WsClient::connect(&format!("{}?token={token}", gw.ws_url()), None)
        .await
        .unwrap();
    a.subscribe_ok(&["room:1"]).await;
    assert_eq!(
        a.next_frame().await,
        json!({"join": {"channel": "room:1", "user": "alice", "info": {"name": "Alice"}}})
    );
    let bearer = format!("Bearer {}", hs(&claims("bob")));
    let mut b = WsClient::connect_with(&gw.ws_url(), None, &[("Authorization", &bearer)])
        .await
        .unwrap();
    b.subscribe_ok(&["room:1"]).await;
    assert_eq!(a.next_frame().await["join"]["user"], "bob");
    gw.stop().await;
}

/// Every way a token can be wrong is refused at the upgrade with 401 and the check that
/// failed; the node serves good clients meanwhile.
#[tokio::test]
async fn missing_and_bad_tokens_are_refused_with_401_and_the_reason() {
    let gw = TestGateway::start_with(strict()).await;
    let url = gw.ws_url();
    let mut good = WsClient::connect(&format!("{url}?token={}", hs(&claims("g"))), None)
        .await
        .unwrap();
    good.subscribe_ok(&["news"]).await;

    let (status, body) = WsClient::refused(&url, &[]).await;
    assert_eq!(
        (status, body.contains("token is required")),
        (401, true),
        "{body}"
    );

    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims("eve").to_string().as_bytes());
    let alg_none = format!("{header}.{payload}.");
    let mut hs512 = Header::new(Algorithm::HS512);
    hs512.typ = Some("JWT".into());
    let other_alg = encode(
        &hs512,
        &claims("eve"),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let wrong_secret = encode(
        &Header::default(),
        &claims("eve"),
        &EncodingKey::from_secret(b"not the secret, but just as long!!!!"),
    )
    .unwrap();
    let unknown_kid = encode(
        &Header {
            kid: Some("nope".into()),
            ..Header::default()
        },
        &claims("eve"),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let cases = [
        ("missing-dots".to_string(), "not a JWT"),
        (alg_none, "not a JWT"),
        (other_alg, "no key for alg"),
        (wrong_secret, "bad signature"),
        (unknown_kid, "no key has kid"),
        (
            hs(&with(claims("eve"), json!({"exp": now() - 5}))),
            "expired",
        ),
        (
            hs(&with(claims("eve"), json!({"nbf": now() + 60}))),
            "not valid yet",
        ),
        (
            hs(&with(claims("eve"), json!({"aud": "elsewhere"}))),
            "wrong audience",
        ),
        (
            hs(&with(claims("eve"), json!({"iss": "https://evil"}))),
            "wrong issuer",
        ),
        (
            hs(&with(claims("eve"), json!({"aud": null}))),
            "missing claim aud",
        ),
        (hs(&with(claims("eve"), json!({"sub": null}))), "sub"),
        (hs(&with(claims("eve"), json!({"sub": "two words"}))), "sub"),
    ];
    for (token, reason) in &cases {
        let (status, body) = WsClient::refused(&format!("{url}?token={token}"), &[]).await;
        assert_eq!(status, 401, "{reason}: {body}");
        assert!(body.contains(reason), "{reason}: {body}");
        assert!(!body.contains(token.as_str()), "the token is not echoed");
    }
    // Identity comes from the token alone.
    let token = hs(&claims("eve"));
    let (status, body) = WsClient::refused(&format!("{url}?token={token}&user=root"), &[]).await;
    assert_eq!(
        (status, body.contains("come from the token")),
        (400, true),
        "{body}"
    );

    good.request("subscribe", json!({"channels": ["more"]}))
        .await;
    gw.publish("news", json!(1)).await;
    assert_eq!(good.next_push().await["data"], 1);
    gw.stop().await;
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private and public key pair made with openssl: (private PEM, public key file).
fn key_pair(dir: &std::path::Path, name: &str, genpkey: &[&str]) -> (Vec<u8>, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", private.to_str().unwrap()]);
    openssl(&args);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read(&private).unwrap(), public)
}

/// RS256 and ES256 keys from files, each pinned to its algorithm: an HS256 token signed with
/// the RSA public key as its secret (key confusion) is refused.
#[tokio::test]
async fn rs256_and_es256_keys_verify_their_own_tokens_only() {
    let dir = std::env::temp_dir().join(format!("herald-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rsa_private, rsa_public) = key_pair(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (ec_private, ec_public) = key_pair(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let mut c = strict();
    c.auth.keys = vec![
        KeyConfig {
            alg: TokenAlgorithm::RS256,
            secret: None,
            public_key_file: Some(rsa_public.clone()),
            ..hs_key()
        },
        KeyConfig {
            kid: Some("ec-1".into()),
            alg: TokenAlgorithm::ES256,
            secret: None,
            public_key_file: Some(ec_public),
            ..hs_key()
        },
    ];
    let gw = TestGateway::start_with(c).await;
    let url = gw.ws_url();

    let rs = encode(
        &Header::new(Algorithm::RS256),
        &claims("rita"),
        &EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
    )
    .unwrap();
    let es = encode(
        &Header {
            kid: Some("ec-1".into()),
            ..Header::new(Algorithm::ES256)
        },
        &claims("eddie"),
        &EncodingKey::from_ec_pem(&ec_private).unwrap(),
    )
    .unwrap();
    for token in [&rs, &es] {
        let mut c = WsClient::connect(&format!("{url}?token={token}"), None)
            .await
            .unwrap();
        c.subscribe_ok(&["news"]).await;
    }
    let confused = encode(
        &Header::default(),
        &claims("mallory"),
        &EncodingKey::from_secret(&std::fs::read(&rsa_public).unwrap()),
    )
    .unwrap();
    let (status, body) = WsClient::refused(&format!("{url}?token={confused}"), &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("no key for alg"), "{body}");
    // An RS256 signature presented as ES256 under the EC key's kid fails too.
    let swapped = encode(
        &Header {
            kid: Some("ec-1".into()),
            ..Header::new(Algorithm::RS256)
        },
        &claims("mallory"),
        &EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
    )
    .unwrap();
    let (status, _) = WsClient::refused(&format!("{url}?token={swapped}"), &[]).await;
    assert_eq!(status, 401);
    gw.stop().await;
}

/// A token that runs out closes its connection with 4500 unless `refresh` brought a new one
/// for the same user; a refused refresh leaves the connection as it was.
#[tokio::test]
async fn an_expiring_token_closes_the_connection_unless_refreshed() {
    let gw = TestGateway::start_with(strict()).await;
    let url = gw.ws_url();
    let short = |user: &str| hs(&with(claims(user), json!({"exp": now() + 2})));
    let mut kept = WsClient::connect(&format!("{url}?token={}", short("kim")), None)
        .await
        .unwrap();
    let mut lapsed = WsClient::connect(&format!("{url}?token={}", short("lee")), None)
        .await
        .unwrap();

    let other = kept
        .request("refresh", json!({"token": hs(&claims("someone"))}))
        .await;
    assert_eq!(other["error"]["code"], 107, "{other}");
    let garbage = kept.request("refresh", json!({"token": "x.y.z"})).await;
    assert_eq!(garbage["error"]["code"], 107, "{garbage}");
    let exp = now() + 600;
    let fresh = hs(&with(claims("kim"), json!({"exp": exp})));
    let ok = kept.request("refresh", json!({"token": fresh})).await;
    assert_eq!(ok["ok"], json!({"expires_at": exp}));

    match lapsed.next_within(Duration::from_secs(4)).await.unwrap() {
        Incoming::Close(code) => assert_eq!(code, 4500),
        other => panic!("expected close 4500, got {other:?}"),
    }
    // Past the first token's expiry, the refreshed connection still works.
    kept.subscribe_ok(&["news"]).await;
    gw.stop().await;
}

/// Namespaces decide who subscribes: anyone, connections with a token, or connections granted
/// the channel by their token or by a channel token for the same user.
#[tokio::test]
async fn namespace_policies_decide_who_subscribes() {
    let mut c = test_config();
    c.auth.keys = vec![hs_key()];
    c.auth.leeway = Duration::ZERO;
    c.namespaces
        .insert("open".into(), namespace(SubscribePolicy::Anyone, false));
    c.namespaces.insert(
        "members".into(),
        namespace(SubscribePolicy::Authenticated, false),
    );
    c.namespaces
        .insert("private".into(), namespace(SubscribePolicy::Token, false));
    c.namespaces
        .insert("room".into(), namespace(SubscribePolicy::Anyone, true));
    let gw = TestGateway::start_with(c).await;
    let url = gw.ws_url();
    let failures = |reply: &Value| -> Vec<(String, u64)> {
        reply["ok"]["failed"]
            .as_array()
            .map(|f| {
                f.iter()
                    .map(|x| {
                        (
                            x["channel"].as_str().unwrap().to_string(),
                            x["code"].as_u64().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Anonymous (allowed by default): open channels only; no ?user= where tokens are verified.
    let mut anon = WsClient::connect(&url, None).await.unwrap();
    let reply = anon
        .subscribe(&["open:a", "members:a", "private:a", "room:a"])
        .await;
    assert_eq!(reply["ok"]["subscribed"], json!(["open:a"]));
    let mut f = failures(&reply);
    f.sort();
    assert_eq!(
        f,
        [
            ("members:a".to_string(), 107),
            ("private:a".to_string(), 104),
            ("room:a".to_string(), 107)
        ]
    );
    let (status, _) = WsClient::refused(&format!("{url}?user=bob"), &[]).await;
    assert_eq!(status, 400);

    let sub = |user: &str, extra: Value| hs(&with(json!({"sub": user, "exp": now() + 600}), extra));
    let token = sub("ann", json!({"channels": ["private:a"]}));
    let mut ann = WsClient::connect(&format!("{url}?token={token}"), None)
        .await
        .unwrap();
    ann.subscribe_ok(&["members:a", "private:a", "room:a"])
        .await;
    let reply = ann.subscribe(&["private:b"]).await;
    assert_eq!(failures(&reply), [("private:b".to_string(), 104)]);
    // A channel token for ann grants private:b.
    let grant = sub("ann", json!({"channels": ["private:b", "private:c"]}));
    let reply = ann
        .request(
            "subscribe",
            json!({"channels": ["private:b"], "token": grant}),
        )
        .await;
    assert_eq!(reply["ok"]["subscribed"], json!(["private:b"]), "{reply}");
    // Another user's channel token, or an expired one, grants nothing.
    for (token, why) in [
        (
            sub("zed", json!({"channels": ["private:d"]})),
            "another user",
        ),
        (
            sub("ann", json!({"channels": ["private:d"], "exp": now() - 5})),
            "expired",
        ),
    ] {
        let reply = ann
            .request(
                "subscribe",
                json!({"channels": ["private:d", "open:d"], "token": token}),
            )
            .await;
        assert_eq!(reply["ok"]["subscribed"], json!(["open:d"]), "{reply}");
        assert_eq!(reply["ok"]["failed"][0]["code"], 104);
        let message = reply["ok"]["failed"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    gw.stop().await;
}

/// The binary warns at startup while anonymous connections are allowed, and a token never
/// reaches the log, even at debug level.
#[tokio::test]
async fn the_log_warns_of_anonymous_access_and_never_shows_a_token() {
    let open = ServiceProcess::gateway(&[]).await;
    assert!(
        open.log_text()
            .contains("connections without a token are accepted"),
        "{}",
        open.log_text()
    );
    drop(open);

    let config = format!(
        "[auth]\nanonymous = false\n[[auth.keys]]\nalg = \"HS256\"\nsecret = \"{SECRET}\"\n"
    );
    let mut gw = ServiceProcess::gateway_with_config(&config, &[("RUST_LOG", "debug")]).await;
    let good = hs(&json!({"sub": "u1", "exp": now() + 600}));
    let bad = hs(&json!({"sub": "u2", "exp": now() - 600}));
    let mut c = WsClient::connect(&format!("{}?token={good}", gw.ws_url()), None)
        .await
        .unwrap();
    c.subscribe_ok(&["news"]).await;
    let (status, _) = WsClient::refused(&format!("{}?token={bad}", gw.ws_url()), &[]).await;
    assert_eq!(status, 401);
    let refresh = c.request("refresh", json!({"token": bad})).await;
    assert_eq!(refresh["error"]["code"], 107);
    c.close().await;
    gw.terminate(Duration::from_secs(10)).await;
    let log = gw.log_text();
    assert!(log.contains("upgrade refused"), "{log}");
    assert!(
        !log.contains(&good) && !log.contains(&bad),
        "a token is in the log"
    );
    // Nor their signatures alone.
    for token in [&good, &bad] {
        assert!(!log.contains(token.rsplit('.').next().unwrap()));
    }
}

/// A channel token is checked as a connection token is: where `auth.audience` and
/// `auth.issuer` are set, it needs that `aud` and `iss` too (docs/security.md).
#[tokio::test]
async fn channel_tokens_need_the_configured_audience_and_issuer() {
    let mut config = strict();
    config
        .namespaces
        .insert("private".into(), namespace(SubscribePolicy::Token, false));
    let gw = TestGateway::start_with(config).await;
    let token = hs(&claims("ann"));
    let mut ann = WsClient::connect(&format!("{}?token={token}", gw.ws_url()), None)
        .await
        .unwrap();
    let grant = |extra: Value| {
        hs(&with(
            with(claims("ann"), json!({"channels": ["private:a"]})),
            extra,
        ))
    };
    for (extra, why) in [
        (json!({"aud": null}), "missing claim aud"),
        (json!({"iss": null}), "missing claim iss"),
        (json!({"aud": "elsewhere"}), "wrong audience"),
    ] {
        let reply = ann
            .request(
                "subscribe",
                json!({"channels": ["private:a"], "token": grant(extra)}),
            )
            .await;
        assert_eq!(reply["ok"]["failed"][0]["code"], 104, "{reply}");
        let message = reply["ok"]["failed"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    let reply = ann
        .request(
            "subscribe",
            json!({"channels": ["private:a"], "token": grant(json!({}))}),
        )
        .await;
    assert_eq!(reply["ok"]["subscribed"], json!(["private:a"]), "{reply}");
    gw.stop().await;
}

//! `herald-gateway token`: the token it prints is one the node takes, with the user, the
//! private channels and the expiry asked; and it says why when it cannot make one.

use std::{process::Command, time::Duration};

use herald_gateway::config::{KeyConfig, NamespaceConfig, SubscribePolicy};
use herald_testkit::{test_config, workspace_binary, TestGateway, WsClient};
use serde_json::json;

const SECRET: &str = "a-shared-secret-of-32-bytes-or-more!";

/// Runs the binary with a configuration file of `toml` and `args`; (exit code, stdout,
/// stderr).
fn token(toml: &str, args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "herald-token-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(workspace_binary("herald-gateway"))
        .arg("--config")
        .arg(&file)
        .arg("token")
        .args(args)
        .output()
        .expect("run herald-gateway token");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[tokio::test]
async fn the_printed_token_opens_the_private_channels_it_names() {
    let toml = format!(
        "[auth]\nanonymous = false\naudience = \"herald\"\n\n[[auth.keys]]\nalg = \"HS256\"\nsecret = \"{SECRET}\"\n"
    );
    let (code, printed, stderr) = token(
        &toml,
        &["--sub", "ann", "--channels", "private:x", "--ttl", "10m"],
    );
    assert_eq!(code, 0, "{stderr}");
    let mut config = test_config();
    config.auth.anonymous = false;
    config.auth.audience = Some("herald".into());
    config.auth.keys = vec![KeyConfig::hs256(SECRET)];
    config.namespaces.insert(
        "private".into(),
        NamespaceConfig {
            subscribe: SubscribePolicy::Token,
            ..NamespaceConfig::default()
        },
    );
    let gw = TestGateway::start_with(config).await;
    let url = format!("{}?token={printed}", gw.ws_url());
    let mut c = WsClient::connect(&url, None)
        .await
        .expect("the token is taken");
    let reply = c.subscribe(&["private:x", "private:y"]).await;
    assert_eq!(reply["ok"]["subscribed"], json!(["private:x"]), "{reply}");
    assert_eq!(reply["ok"]["failed"][0]["code"], 104, "{reply}");
    // The expiry asked: 10 minutes from now, give or take the test's own time.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["herald"]);
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes());
    let claims = jsonwebtoken::decode::<serde_json::Value>(&printed, &key, &validation)
        .unwrap()
        .claims;
    let ttl = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, Duration::from_secs(600).as_secs());
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("ann"), Some("herald"))
    );
    gw.stop().await;
}

#[test]
fn without_a_key_or_with_bad_input_it_says_why() {
    let (code, out, err) = token("", &["--sub", "ann"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no [[auth.keys]]"), "{err}");
    let toml = format!("[[auth.keys]]\nalg = \"HS256\"\nsecret = \"{SECRET}\"\n");
    let (code, _, err) = token(&toml, &["--sub", "ann", "--info", "{not json"]);
    assert_eq!(code, 1);
    assert!(err.contains("--info is not JSON"), "{err}");
    let (code, _, err) = token(&toml, &["--sub", "ann", "--kid", "k9"]);
    assert_eq!(code, 1);
    assert!(err.contains("k9"), "{err}");
    let (code, _, err) = token(&toml, &["--sub", "ann", "--ttl", "soon"]);
    assert_eq!(code, 2, "clap's usage error");
    assert!(err.contains("--ttl"), "{err}");
    let (code, _, err) = token("[auth]\nanonymous = \"maybe\"\n", &["--sub", "ann"]);
    assert_eq!(code, 2, "a bad configuration");
    assert!(err.contains("anonymous"), "{err}");
}

#[test]
fn an_es256_key_signs_with_its_private_key() {
    let dir = std::env::temp_dir().join(format!("herald-token-es-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (private, public) = (dir.join("key.pem"), dir.join("pub.pem"));
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let private_s = private.display().to_string();
    let public_s = public.display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &private_s,
    ]);
    openssl(&["pkey", "-in", &private_s, "-pubout", "-out", &public_s]);
    let toml =
        format!("[[auth.keys]]\nkid = \"es\"\nalg = \"ES256\"\npublic_key_file = \"{public_s}\"\n");
    let (code, _, err) = token(&toml, &["--sub", "ann"]);
    assert_eq!(code, 1);
    assert!(err.contains("private key"), "{err}");
    let (code, printed, err) = token(&toml, &["--sub", "ann", "--private-key-file", &private_s]);
    assert_eq!(code, 0, "{err}");
    let mut key = KeyConfig::hs256("unused");
    key.kid = Some("es".into());
    key.alg = herald_gateway::config::TokenAlgorithm::ES256;
    key.secret = None;
    key.public_key_file = Some(public);
    let auth = herald_gateway::config::AuthConfig {
        keys: vec![key],
        ..Default::default()
    };
    let claims = herald_auth::Verifier::new(&auth)
        .unwrap()
        .verify(&printed)
        .unwrap();
    assert_eq!(claims.sub, "ann");
    let _ = std::fs::remove_dir_all(&dir);
}

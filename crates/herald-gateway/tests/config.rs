//! Configuration: the public keys and defaults, file then environment, and loud failures.

use std::{net::SocketAddr, time::Duration};

use herald_gateway::config::GatewayConfig;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-gw-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = GatewayConfig::load_from(None, env(&[])).unwrap();
    assert_eq!(
        c.listen.websocket,
        "0.0.0.0:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.listen.api, "0.0.0.0:9090".parse::<SocketAddr>().unwrap());
    assert_eq!(c.node.id, None, "named by the process's own UUID");
    assert_eq!(c.websocket.path, "/ws");
    assert_eq!(c.websocket.max_message_size, 65536);
    assert_eq!(c.websocket.outbound_queue_bytes, 1 << 20);
    assert!(c.api.keys.is_empty());
    assert!(!c.channels.publish, "client publish is off by default");
    assert!(c.namespaces.is_empty());
    assert_eq!(c.broker.kind, herald_gateway::config::BrokerKind::Memory);
    assert_eq!(
        c.broker.redis.mode,
        herald_gateway::config::RedisMode::Standalone
    );
    assert_eq!(c.broker.redis.prefix, "herald:");
}

#[test]
fn the_broker_contract_keys_load_from_the_environment() {
    let c = GatewayConfig::load_from(
        None,
        env(&[
            ("HERALD__BROKER__KIND", "redis"),
            ("HERALD__BROKER__REDIS__MODE", "cluster"),
            (
                "HERALD__BROKER__REDIS__URL",
                "redis://a:7000,redis://:pw@b:7001",
            ),
            ("HERALD__BROKER__REDIS__PREFIX", "app1:"),
        ]),
    )
    .unwrap();
    assert_eq!(c.broker.kind, herald_gateway::config::BrokerKind::Redis);
    assert_eq!(
        c.broker.redis.mode,
        herald_gateway::config::RedisMode::Cluster
    );
    assert_eq!(c.broker.redis.url, "redis://a:7000,redis://:pw@b:7001");
    assert_eq!(c.broker.redis.prefix, "app1:");
}

#[test]
fn the_environment_overrides_the_file() {
    let file = temp_file(
        "layered.toml",
        r#"
[listen]
websocket = "127.0.0.1:1000"
api = "127.0.0.1:1001"

[node]
id = "6f1c1f2e-8f43-4b7e-9d77-0b1f0b1e2c3d"

[websocket]
ping_interval = "5s"

[namespaces.chat]
publish = true

[namespaces.feed]
"#,
    );
    let c = GatewayConfig::load_from(
        Some(&file),
        env(&[
            ("HERALD__LISTEN__WEBSOCKET", "127.0.0.1:2000"),
            ("HERALD__API__KEYS", "one,two"),
            ("HERALD__WEBSOCKET__IDLE_TIMEOUT", "90s"),
            ("HERALD__NAMESPACES__FEED__PUBLISH", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.websocket.port(), 2000, "env wins");
    assert_eq!(c.listen.api.port(), 1001, "file value kept");
    assert_eq!(
        c.node.id.unwrap().to_string(),
        "6f1c1f2e-8f43-4b7e-9d77-0b1f0b1e2c3d"
    );
    assert_eq!(c.websocket.ping_interval, Duration::from_secs(5));
    assert_eq!(c.websocket.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.api.keys, ["one", "two"]);
    assert!(c.namespaces["chat"].publish);
    assert!(c.namespaces["feed"].publish);
}

#[test]
fn unknown_keys_and_bad_values_stop_startup_naming_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("HERALD__LISTEN__WEBSOKET", "1")], "websoket"),
        (
            &[("HERALD__LISTEN__WEBSOCKET", "not-an-address")],
            "websocket",
        ),
        (&[("HERALD__NODE__ID", "no spaces")], "node.id"),
        (
            &[("HERALD__WEBSOCKET__PING_INTERVAL", "soon")],
            "ping_interval",
        ),
        (
            &[("HERALD__WEBSOCKET__MAX_MESSAGE_SIZE", "10")],
            "max_message_size",
        ),
        (
            &[("HERALD__WEBSOCKET__IDLE_TIMEOUT", "1s")],
            "websocket.idle_timeout",
        ),
        (
            &[("HERALD__WEBSOCKET__OUTBOUND_QUEUE_BYTES", "65536")],
            "websocket.outbound_queue_bytes",
        ),
        (
            &[("HERALD__SHUTDOWN__DRAIN_WINDOW", "60s")],
            "shutdown.drain_window",
        ),
        (&[("HERALD__LOG__FORMAT", "xml")], "xml"),
        (&[("HERALD__BROKER__KIND", "kafka")], "kafka"),
        (
            &[
                ("HERALD__BROKER__KIND", "redis"),
                ("HERALD__BROKER__REDIS__URL", "http://x"),
            ],
            "broker.redis.url",
        ),
        (
            &[
                ("HERALD__BROKER__KIND", "redis"),
                ("HERALD__BROKER__REDIS__URL", "redis://a:1,redis://b:2"),
            ],
            "exactly one URL",
        ),
        (
            &[
                ("HERALD__BROKER__KIND", "redis"),
                ("HERALD__BROKER__REDIS__TLS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "broker.redis.tls_ca_file",
        ),
        (
            &[
                ("HERALD__BROKER__KIND", "redis"),
                ("HERALD__BROKER__REDIS__PREFIX", "a{b}"),
            ],
            "broker.redis.prefix",
        ),
        (&[("HERALD__AUTH__ANONYMOUS", "false")], "auth.anonymous"),
        (
            &[("HERALD__NAMESPACES__P__SUBSCRIBE", "token")],
            "needs auth.keys",
        ),
        (
            &[("HERALD__NAMESPACES__P__SUBSCRIBE", "friends")],
            "friends",
        ),
        (
            &[("HERALD__LIMITS__PUBLISH_RATE", "0")],
            "limits.publish_rate",
        ),
        (
            &[("HERALD__LIMITS__MAX_CHANNEL_LENGTH", "300")],
            "limits.max_channel_length",
        ),
        (
            &[(
                "HERALD__WEBSOCKET__ALLOWED_ORIGINS",
                "https://a.example,a.example",
            )],
            "websocket.allowed_origins",
        ),
    ];
    for (vars, needle) in cases {
        let err = GatewayConfig::load_from(None, env(vars)).expect_err(needle);
        assert!(err.to_string().contains(needle), "{vars:?}: {err}");
    }
    let short_key = temp_file(
        "short-key.toml",
        "[[auth.keys]]\nalg = \"HS256\"\nsecret = \"short\"\n",
    );
    let err = GatewayConfig::load_from(Some(&short_key), env(&[])).unwrap_err();
    assert!(err.to_string().contains("auth.keys[0]"), "{err}");
    let file = temp_file("unknown.toml", "[websocket]\npath = \"/ws\"\nbuffer = 1\n");
    let err = GatewayConfig::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(err.to_string().contains("buffer"), "{err}");
    let file = temp_file("ns.toml", "[namespaces.\"bad name\"]\npublish = true\n");
    let err = GatewayConfig::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(err.to_string().contains("bad name"), "{err}");
    let file = temp_file(
        "reserved.toml",
        "[namespaces._herald]
publish = true
",
    );
    let err = GatewayConfig::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
}

#[test]
fn pusher_apps_read_their_secret_from_a_file_and_take_webhooks() {
    let secret = temp_file("pusher-secret", "s3cret-from-a-file\n");
    let file = temp_file(
        "pusher.toml",
        &format!(
            "[[pusher.apps]]\nid = \"42\"\nkey = \"app-key\"\nsecret_file = \"{}\"\n\
             [[pusher.apps.webhooks]]\nurl = \"https://hooks.example.com/pusher\"\n\
             event_types = [\"member_added\"]\n",
            secret.display()
        ),
    );
    let config = GatewayConfig::load_from(Some(&file), env(&[])).unwrap();
    let app = &config.pusher.apps[0];
    assert_eq!(app.secret, "s3cret-from-a-file");
    assert_eq!(app.webhooks[0].event_types, ["member_added"]);

    // Both, neither, or an unreadable file: refused, naming the key.
    for (name, line) in [
        (
            "both.toml",
            format!("secret = \"x\"\nsecret_file = \"{}\"", secret.display()),
        ),
        ("neither.toml", String::new()),
        (
            "missing.toml",
            "secret_file = \"/nonexistent/secret\"".to_owned(),
        ),
    ] {
        let file = temp_file(
            name,
            &format!("[[pusher.apps]]\nid = \"42\"\nkey = \"app-key\"\n{line}\n"),
        );
        let err = GatewayConfig::load_from(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("pusher.apps"), "{name}: {err}");
    }
}

/// What the config crate would take loosely, and what it would say too little about: each is
/// refused naming the key, the value, what is expected, and the variable that set it.
#[test]
fn loose_values_are_refused_with_what_is_expected() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "HERALD__LOG__LEVEL",
            "verbose",
            &["log.level", "`verbose`", "trace, debug, info"],
        ),
        (
            "HERALD__CHANNELS__PUBLISH",
            "no",
            &["channels.publish", "`no`", "true or false"],
        ),
        (
            "HERALD__CHANNELS__PUBLISH",
            "1",
            &["channels.publish", "`1`", "true or false"],
        ),
        ("HERALD__AUTH__AUDIENCE", "", &["auth.audience", "empty"]),
        ("HERALD__AUTH__ISSUER", " ", &["auth.issuer", "empty"]),
        (
            "HERALD__BROKER__KIND",
            "redsi",
            &["broker.kind", "`redsi`", "`memory` or `redis`"],
        ),
        (
            "HERALD__LISTEN__API",
            "localhost:9090",
            &[
                "listen.api",
                "`localhost:9090`",
                "host names are not accepted",
            ],
        ),
        (
            "HERALD__WEBSOCKET__PING_INTERVAL",
            "10",
            &["websocket.ping_interval", "`10` has no unit", "10s"],
        ),
        (
            "HERALD__NODE__ID",
            "gateway 0",
            &["node.id", "letters, digits"],
        ),
    ];
    for (var, value, needles) in cases {
        let err = GatewayConfig::load_from(None, env(&[(var, value)]))
            .expect_err(var)
            .to_string();
        for needle in needles.iter().chain(&[*var]) {
            assert!(
                err.contains(needle),
                "{var}={value:?}: {err} lacks {needle}"
            );
        }
    }
    // The same from a file: no variable to name, the key and value all the same.
    let file = temp_file(
        "loose.toml",
        "[channels]\npublish = \"no\"\n[log]\nlevel = \"info\"\n",
    );
    let err = GatewayConfig::load_from(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("channels.publish") && err.contains("`no`"),
        "{err}"
    );
    let file = temp_file("int.toml", "[channels]\npublish = 1\n");
    let err = GatewayConfig::load_from(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("channels.publish") && err.contains("`1`"),
        "{err}"
    );
}

/// `node.id` is a name: a Kubernetes pod's name is one, and so is a UUID.
#[test]
fn node_ids_are_names() {
    for name in [
        "herald-gateway-7d9f8b6c5-x2x7q",
        "6f1c1f2e-8f43-4b7e-9d77-0b1f0b1e2c3d",
        "gw_1.eu",
    ] {
        let c = GatewayConfig::load_from(None, env(&[("HERALD__NODE__ID", name)])).unwrap();
        assert_eq!(c.node.id.unwrap().as_str(), name);
    }
}

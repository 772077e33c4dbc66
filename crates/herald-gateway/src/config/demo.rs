//! `[demo]`: the demo page the gateway serves itself (`/demo/` on the WebSocket listener).

use serde::{de::Error as _, Deserialize, Deserializer};

/// Whether a feature is on: by default (`auto`) as the node's kind suggests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Toggle {
    /// As the node's kind suggests.
    #[default]
    Auto,
    /// On.
    True,
    /// Off.
    False,
}

/// `[demo]`: the demo chat page.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// `demo.enabled`, default `auto`: serve the demo page (`deploy/demo`, compiled in) at
    /// `/demo/` on the WebSocket listener, with a `demo` namespace (client publishes and
    /// presence) unless one is configured. `auto`: on with the embedded broker (the node a
    /// newcomer starts), off through Redis; `true` or `false` decide.
    #[serde(deserialize_with = "toggle")]
    pub enabled: Toggle,
}

/// `auto`, or a boolean (`true`, `false`, as a boolean or a string).
fn toggle<'de, D: Deserializer<'de>>(d: D) -> Result<Toggle, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(true) => Ok(Toggle::True),
        Raw::Bool(false) => Ok(Toggle::False),
        Raw::Text(text) => match text.as_str() {
            "auto" => Ok(Toggle::Auto),
            "true" => Ok(Toggle::True),
            "false" => Ok(Toggle::False),
            other => Err(D::Error::custom(format!(
                "expected auto, true or false, got {other:?}"
            ))),
        },
    }
}

impl super::GatewayConfig {
    /// Whether this node serves the demo page.
    pub fn demo_on(&self) -> bool {
        match self.demo.enabled {
            Toggle::True => true,
            Toggle::False => false,
            Toggle::Auto => self.broker.kind == super::BrokerKind::Memory,
        }
    }

    /// With the demo on, the `demo` namespace its page uses (client publishes and presence),
    /// unless one is configured.
    pub fn with_demo_namespace(mut self) -> Self {
        if self.demo_on() && !self.namespaces.contains_key("demo") {
            let demo = super::NamespaceConfig {
                publish: true,
                presence: true,
                ..super::NamespaceConfig::default()
            };
            self.namespaces.insert("demo".into(), demo);
        }
        self
    }
}

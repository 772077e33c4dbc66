//! Configuration: defaults, then an optional TOML file, then `HERALD__SECTION__KEY` variables.
//!
//! Each deployable has one typed struct with `#[serde(deny_unknown_fields)]` and serde
//! defaults; this crate layers the sources, and [`values`] reads the values the `config` crate
//! would take too loosely. A key that is unknown or has a bad value stops startup with a
//! message naming it (and the environment variable that set it): nothing silently falls back
//! to a default.
//!
//! May depend on serde, the `config` crate and humantime; no I/O but reading the file, so that
//! pure crates (herald-auth) can use [`values`].

pub mod values;

use std::path::Path;

use serde::de::DeserializeOwned;

/// The environment variable prefix: `HERALD__LISTEN__WEBSOCKET` sets `listen.websocket`.
pub const ENV_PREFIX: &str = "HERALD";

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or a key is unknown or has a bad value.
    #[error("configuration: {0}")]
    Load(#[from] ::config::ConfigError),
    /// A value set by an environment variable is bad.
    #[error("configuration: {source} (set by the environment variable {variable})")]
    Environment {
        /// The variable, `HERALD__SECTION__KEY`.
        variable: String,
        /// What is wrong with its value.
        source: Box<::config::ConfigError>,
    },
    /// A value parsed but is not acceptable.
    #[error("configuration: {key}: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

/// Loads `T` from an optional TOML `file` and the process environment.
///
/// `list_keys` names the keys whose environment values are comma-separated lists.
///
/// # Errors
/// [`ConfigError::Load`] for a missing or malformed file, an unknown key or a bad value.
pub fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    list_keys: &[&str],
) -> Result<T, ConfigError> {
    load_from(file, std::env::vars(), list_keys)
}

/// [`load`] with the environment given explicitly, for tests.
///
/// # Errors
/// As [`load`].
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    list_keys: &[&str],
) -> Result<T, ConfigError> {
    let mut builder = ::config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(
            ::config::File::from(path)
                .format(::config::FileFormat::Toml)
                .required(true),
        );
    }
    let prefix = format!("{ENV_PREFIX}__");
    let vars: ::config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    let names: Vec<String> = vars.keys().cloned().collect();
    let mut environment = ::config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars));
    if !list_keys.is_empty() {
        environment = environment.list_separator(",");
        for key in list_keys {
            environment = environment.with_list_parse_key(key);
        }
    }
    builder
        .add_source(environment)
        .build()
        .and_then(::config::Config::try_deserialize)
        .map_err(|e| match variable_of(&e, &names) {
            Some(variable) => ConfigError::Environment {
                variable,
                source: Box::new(e),
            },
            None => ConfigError::Load(e),
        })
}

/// The environment variable among `names` that sets the key `e` is about, if one does.
fn variable_of(e: &::config::ConfigError, names: &[String]) -> Option<String> {
    let key = match e {
        ::config::ConfigError::Type { key: Some(key), .. }
        | ::config::ConfigError::At { key: Some(key), .. } => key,
        _ => return None,
    };
    let variable = format!("{ENV_PREFIX}__{}", key.to_uppercase().replace('.', "__"));
    // A list key's error names an element (`api.keys[1]`): the variable sets the whole list.
    let variable = variable.split('[').next().unwrap_or_default().to_owned();
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(&variable))
        .cloned()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        listen: Listen,
        keys: Vec<String>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Listen {
        websocket: SocketAddr,
        port_count: u16,
    }

    impl Default for Listen {
        fn default() -> Self {
            Self {
                websocket: "0.0.0.0:8080".parse().unwrap(),
                port_count: 1,
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let s: Sample = load_from(None, env(&[]), &[]).unwrap();
        assert_eq!(s, Sample::default());

        let dir = std::env::temp_dir().join(format!("herald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(
            &file,
            "[listen]\nwebsocket = \"127.0.0.1:1\"\nport_count = 3\n",
        )
        .unwrap();
        let s: Sample = load_from(
            Some(&file),
            env(&[
                ("HERALD__LISTEN__WEBSOCKET", "127.0.0.1:2"),
                ("HERALD__KEYS", "a,b"),
                ("OTHER", "ignored"),
            ]),
            &["keys"],
        )
        .unwrap();
        assert_eq!(s.listen.websocket, "127.0.0.1:2".parse().unwrap());
        assert_eq!(s.listen.port_count, 3);
        assert_eq!(s.keys, vec!["a", "b"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e =
            load_from::<Sample>(None, env(&[("HERALD__LISTEN__WEBSOKET", "x")]), &[]).unwrap_err();
        assert!(e.to_string().contains("websoket"), "{e}");
        let e = load_from::<Sample>(None, env(&[("HERALD__LISTEN__WEBSOCKET", "nope")]), &[])
            .unwrap_err();
        assert!(e.to_string().contains("websocket"), "{e}");
        assert!(
            e.to_string().contains("HERALD__LISTEN__WEBSOCKET"),
            "the variable is named: {e}"
        );
        let e =
            load_from::<Sample>(Some(Path::new("/nonexistent/h.toml")), env(&[]), &[]).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}

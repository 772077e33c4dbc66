//! Logging setup: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the configured
//! level. Lines go through a bounded queue and a thread of their own ([`sink`]): logging never
//! blocks or breaks the node. Colour only on a terminal, and never with `NO_COLOR` set.

pub mod every;
pub mod sink;

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// `[log]`: logging.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `log.level`, default `info`: a level (`trace`, `debug`, `info`, `warn`, `error`, `off`)
    /// or comma-separated directives such as `info,herald_gateway=debug`; `RUST_LOG` overrides
    /// it.
    #[serde(deserialize_with = "level")]
    pub level: String,
    /// `log.format`, default `text`: `text` or `json`.
    #[serde(deserialize_with = "crate::config::values::one_of")]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// `log.level`: each directive is a level, or `target=level`. A bare word that is not a level
/// is refused: the filter would take it for a target, and log nothing of the node's.
fn level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_level(&text).map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn check_level(text: &str) -> Result<(), String> {
    let is_level = |l: &str| LEVELS.iter().any(|v| v.eq_ignore_ascii_case(l.trim()));
    for directive in text.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            None => directive,
        };
        if !is_level(level) {
            return Err(format!(
                "`{directive}` is not a level: expected one of {}, or directives such as \
                 `info,herald_gateway=debug`",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(())
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Installs the global subscriber. `level` is an `EnvFilter` directive such as `info` or
/// `herald_gateway=debug`; `RUST_LOG`, when set, wins.
///
/// # Errors
/// When `level` is not a valid directive.
pub fn init(level: &str, json: bool) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::try_new(level)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .log_internal_errors(false)
        .with_writer(|| sink::LogWriter);
    // A second init (tests) is not an error worth reporting.
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
    Ok(())
}

/// Whether log lines carry ANSI colour: only when stderr is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl LogConfig {
    /// Installs the global subscriber as configured ([`init`]).
    ///
    /// # Errors
    /// When `level` is not a valid directive.
    pub fn init(&self) -> Result<(), tracing_subscriber::filter::ParseError> {
        init(&self.level, self.format == LogFormat::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::check_level;

    #[test]
    fn levels_and_directives_pass_and_other_words_do_not() {
        for good in [
            "info",
            "WARN",
            "off",
            "info,herald_gateway=debug",
            "herald_gateway=trace",
        ] {
            assert!(check_level(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "info,loud", "herald_gateway=chatty", ""] {
            let e = check_level(bad).unwrap_err();
            assert!(e.contains("is not a level"), "{bad}: {e}");
        }
    }
}

//! Logging setup: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the configured
//! level. Lines go through a bounded queue and a thread of their own ([`sink`]): logging never
//! blocks or breaks the node. Colour only on a terminal, and never with `NO_COLOR` set.

pub mod sink;

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// `[log]`: logging.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `log.level`, default `info`: a tracing filter directive; `RUST_LOG` overrides it.
    pub level: String,
    /// `log.format`, default `text`: `text` or `json`.
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

//! Logging setup: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the configured
//! level.

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
        .with_writer(std::io::stderr);
    // A second init (tests) is not an error worth reporting.
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
    Ok(())
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

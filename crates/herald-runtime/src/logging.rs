//! Logging setup: `tracing` to stderr, text or JSON, filtered by `RUST_LOG` or the configured
//! level.

use tracing_subscriber::EnvFilter;

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

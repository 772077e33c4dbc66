//! `[console]`: the web console the gateway serves on its API listener (`/console/`).

use serde::Deserialize;

/// `[console]`: the web console.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `console.enabled`, default `true`: serve the console (compiled in) at `/console/` on
    /// the API listener. The page is static; what it shows and does goes through the HTTP
    /// API, with a key when `api.keys` are set.
    pub enabled: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

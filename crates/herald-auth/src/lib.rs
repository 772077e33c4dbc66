//! Connection and channel tokens: JWTs verified with configured keys, each pinned to one
//! algorithm (HS256, RS256, ES256), with `exp`, `nbf`, and when configured `aud` and `iss`
//! checked. Signatures are checked by the `jsonwebtoken` crate; this crate adds the policy
//! around it and the configuration it is built from.
//!
//! No I/O but reading key files when a [`Verifier`] is built.

mod mint;
mod token;

use std::time::Duration;

use serde::Deserialize;

pub use mint::{mint, Grant, MintError};
pub use token::{Claims, KeyError, TokenError, Verifier};

/// `[auth]`: connection tokens (JWT).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `auth.anonymous`, default true: connections without a token are let in. Set it to
    /// false on anything facing the internet; the node warns at startup while it is true.
    #[serde(deserialize_with = "herald_config::values::boolean")]
    pub anonymous: bool,
    /// `[[auth.keys]]`, default none: the keys connection and channel tokens are verified
    /// with. With none, tokens are refused and clients may name themselves with `?user=`.
    pub keys: Vec<KeyConfig>,
    /// `auth.audience`, default none: when set, tokens must carry this `aud`.
    #[serde(deserialize_with = "herald_config::values::non_empty")]
    pub audience: Option<String>,
    /// `auth.issuer`, default none: when set, tokens must carry this `iss`.
    #[serde(deserialize_with = "herald_config::values::non_empty")]
    pub issuer: Option<String>,
    /// `auth.leeway`, default `5s`: clock skew allowed when checking `exp` and `nbf`.
    #[serde(with = "herald_config::values::duration")]
    pub leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            anonymous: true,
            keys: Vec::new(),
            audience: None,
            issuer: None,
            leeway: Duration::from_secs(5),
        }
    }
}

/// One `[[auth.keys]]` entry: an algorithm pinned to a key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `kid`, optional: tokens whose header names this `kid` are verified with this key only.
    #[serde(default)]
    pub kid: Option<String>,
    /// `alg`: `HS256`, `RS256` or `ES256`. A token is verified only by keys of its own `alg`.
    #[serde(deserialize_with = "herald_config::values::one_of")]
    pub alg: TokenAlgorithm,
    /// `secret`: the shared secret of an `HS256` key.
    #[serde(default)]
    pub secret: Option<String>,
    /// `secret_file`: a file holding the shared secret of an `HS256` key (trailing newline
    /// ignored).
    #[serde(default)]
    pub secret_file: Option<std::path::PathBuf>,
    /// `public_key`: the PEM public key of an `RS256` or `ES256` key.
    #[serde(default)]
    pub public_key: Option<String>,
    /// `public_key_file`: a PEM file holding the public key of an `RS256` or `ES256` key.
    #[serde(default)]
    pub public_key_file: Option<std::path::PathBuf>,
}

impl KeyConfig {
    /// An `HS256` key with an inline shared secret and no `kid`.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            kid: None,
            alg: TokenAlgorithm::HS256,
            secret: Some(secret.into()),
            secret_file: None,
            public_key: None,
            public_key_file: None,
        }
    }
}

/// The token signature algorithms Herald accepts.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum TokenAlgorithm {
    /// HMAC with SHA-256, a shared secret.
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

//! Tokens for trying Herald out (`herald-gateway token`): a connection token for a user,
//! signed with one of the configured keys, as an application's backend would sign it.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};

use crate::{token::hs256_secret, AuthConfig, TokenAlgorithm};

/// What the token says.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    /// The user (`sub`).
    pub sub: String,
    /// Private channels granted (`channels`).
    pub channels: Vec<String>,
    /// How long it is valid (`exp` = now + ttl).
    pub ttl: Duration,
    /// The user's presence info (`info`).
    pub info: Option<serde_json::Value>,
}

/// Why no token was made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// No key to sign with.
    #[error("no [[auth.keys]] configured: a node without keys accepts no token")]
    NoKey,
    /// `--kid` names no key.
    #[error("no key has kid {0:?}")]
    UnknownKid(String),
    /// An RS256 or ES256 key verifies with a public key; signing needs its private one.
    #[error("the {0:?} key verifies with a public key: pass its private key (PEM) to sign")]
    NeedsPrivateKey(TokenAlgorithm),
    /// The key or the private key cannot be used.
    #[error("{0}")]
    Key(String),
}

/// Signs `grant` at `now` (Unix seconds) with the key named `kid` (the first key when none),
/// adding the configured `aud` and `iss`. `private_pem` is the private key of an RS256 or
/// ES256 key.
///
/// # Errors
/// [`MintError`] when there is no such key, or it cannot sign.
pub fn mint(
    config: &AuthConfig,
    kid: Option<&str>,
    private_pem: Option<&[u8]>,
    grant: &Grant,
    now: u64,
) -> Result<String, MintError> {
    let key = match kid {
        Some(kid) => config
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or_else(|| MintError::UnknownKid(kid.to_owned()))?,
        None => config.keys.first().ok_or(MintError::NoKey)?,
    };
    let (alg, encoding) = match (key.alg, private_pem) {
        (TokenAlgorithm::HS256, _) => {
            let secret = hs256_secret(key).map_err(MintError::Key)?;
            (
                jsonwebtoken::Algorithm::HS256,
                EncodingKey::from_secret(&secret),
            )
        }
        (TokenAlgorithm::RS256, Some(pem)) => (
            jsonwebtoken::Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem).map_err(|e| MintError::Key(format!("RSA key: {e}")))?,
        ),
        (TokenAlgorithm::ES256, Some(pem)) => (
            jsonwebtoken::Algorithm::ES256,
            EncodingKey::from_ec_pem(pem).map_err(|e| MintError::Key(format!("EC key: {e}")))?,
        ),
        (alg, None) => return Err(MintError::NeedsPrivateKey(alg)),
    };
    let mut header = Header::new(alg);
    header.kid = key.kid.clone();
    let mut claims = serde_json::json!({
        "sub": grant.sub,
        "iat": now,
        "exp": now + grant.ttl.as_secs(),
    });
    if !grant.channels.is_empty() {
        claims["channels"] = serde_json::json!(grant.channels);
    }
    if let Some(info) = &grant.info {
        claims["info"] = info.clone();
    }
    if let Some(aud) = &config.audience {
        claims["aud"] = serde_json::json!(aud);
    }
    if let Some(iss) = &config.issuer {
        claims["iss"] = serde_json::json!(iss);
    }
    jsonwebtoken::encode(&header, &claims, &encoding).map_err(|e| MintError::Key(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyConfig, Verifier};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_minted_token_is_what_the_node_verifies() {
        let config = AuthConfig {
            keys: vec![KeyConfig::hs256(SECRET)],
            audience: Some("herald".into()),
            ..AuthConfig::default()
        };
        let grant = Grant {
            sub: "ann".into(),
            channels: vec!["private:x".into()],
            ttl: Duration::from_secs(3600),
            info: Some(serde_json::json!({"name": "Ann"})),
        };
        let now = jsonwebtoken::get_current_timestamp();
        let token = mint(&config, None, None, &grant, now).unwrap();
        let claims = Verifier::new(&config).unwrap().verify(&token).unwrap();
        assert_eq!(claims.sub, "ann");
        assert_eq!(claims.channels, ["private:x"]);
        assert_eq!(claims.exp, Some(now + 3600));
        // Expired at once with a TTL of 0 minus the leeway: refused.
        let old = mint(&config, None, None, &grant, now - 7200).unwrap();
        assert!(Verifier::new(&config).unwrap().verify(&old).is_err());
    }

    #[test]
    fn no_key_or_a_public_key_alone_cannot_sign() {
        let grant = Grant::default();
        let none = AuthConfig::default();
        assert_eq!(mint(&none, None, None, &grant, 0), Err(MintError::NoKey));
        let hs = AuthConfig {
            keys: vec![KeyConfig::hs256(SECRET)],
            ..AuthConfig::default()
        };
        assert_eq!(
            mint(&hs, Some("k9"), None, &grant, 0),
            Err(MintError::UnknownKid("k9".into()))
        );
        let mut es = KeyConfig::hs256(SECRET);
        es.alg = TokenAlgorithm::ES256;
        let es = AuthConfig {
            keys: vec![es],
            ..AuthConfig::default()
        };
        assert_eq!(
            mint(&es, None, None, &grant, 0),
            Err(MintError::NeedsPrivateKey(TokenAlgorithm::ES256))
        );
    }
}

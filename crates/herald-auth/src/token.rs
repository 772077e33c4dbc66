//! JWT verification: every key pins its algorithm; `exp`, `nbf`, and when configured `aud`
//! and `iss`, are checked. Tokens are never logged.

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{AuthConfig, KeyConfig, TokenAlgorithm};

/// The claims Herald reads from a connection or channel token.
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds. A token without one does not expire.
    #[serde(default)]
    pub exp: Option<u64>,
    /// Channels the token grants (namespaces with `subscribe = "token"`).
    #[serde(default)]
    pub channels: Vec<String>,
    /// The info the user joins presence channels with.
    #[serde(default)]
    pub info: Option<Box<RawValue>>,
}

/// Why a token was refused. The messages name the check, never the token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT, or an algorithm other than HS256, RS256 and ES256 (none included)")]
    /// Not a JWT, or its `alg` is none Herald accepts.
    Malformed,
    #[error("no key has kid {0:?}")]
    /// The header names a `kid` no key has.
    UnknownKid(String),
    #[error("no key for alg {0:?}")]
    /// No key has the token's `alg`.
    NoKeyForAlgorithm(String),
    #[error("bad signature")]
    /// No candidate key verifies the signature.
    Signature,
    #[error("expired")]
    /// `exp` has passed.
    Expired,
    #[error("not valid yet (nbf)")]
    /// `nbf` is in the future.
    NotYetValid,
    #[error("wrong audience")]
    /// `aud` does not name `auth.audience`.
    Audience,
    #[error("wrong issuer")]
    /// `iss` is not `auth.issuer`.
    Issuer,
    #[error("missing claim {0}")]
    /// A required claim is missing.
    MissingClaim(String),
    #[error("bad claims: {0}")]
    /// The claims do not have the expected types.
    Claims(String),
}

impl TokenError {
    /// A short, fixed name for the check that failed, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownKid(_) => "unknown_kid",
            Self::NoKeyForAlgorithm(_) => "no_key_for_alg",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Audience => "audience",
            Self::Issuer => "issuer",
            Self::MissingClaim(_) => "missing_claim",
            Self::Claims(_) => "claims",
        }
    }
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
}

/// The configured keys, ready to verify tokens.
pub struct Verifier {
    keys: Vec<Key>,
}

/// Why a configured key of `auth.keys` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("auth.keys[{index}]: {reason}")]
pub struct KeyError {
    /// The key's position in `auth.keys`.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl Verifier {
    /// Loads every key of `config` (reading key files).
    pub fn new(config: &AuthConfig) -> Result<Self, KeyError> {
        let keys = config
            .keys
            .iter()
            .enumerate()
            .map(|(index, key)| load(key, config).map_err(|reason| KeyError { index, reason }))
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Verifies `token` with the keys of its `kid` (or of its `alg` when it names none).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let candidates: Vec<&Key> = match &header.kid {
            Some(kid) => {
                let keys: Vec<&Key> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                if keys.is_empty() {
                    return Err(TokenError::UnknownKid(kid.clone()));
                }
                keys
            }
            None => self.keys.iter().collect(),
        };
        let mut candidates = candidates
            .into_iter()
            .filter(|k| k.alg == header.alg)
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::NoKeyForAlgorithm(format!("{:?}", header.alg)));
        }
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.into_kind() {
                    ErrorKind::InvalidSignature => continue,
                    kind => return Err(refusal(kind)),
                },
            }
        }
        Err(TokenError::Signature)
    }
}

fn refusal(kind: ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::Signature,
        ErrorKind::Json(e) => TokenError::Claims(e.to_string()),
        _ => TokenError::Malformed,
    }
}

/// The shared secret of an `HS256` key, from `secret` or `secret_file` (at least 32 bytes).
pub(crate) fn hs256_secret(key: &KeyConfig) -> Result<Vec<u8>, String> {
    let secret = match (&key.secret, &key.secret_file) {
        (Some(s), None) => s.as_bytes().to_vec(),
        (None, Some(path)) => {
            let mut bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            bytes
        }
        _ => return Err("an HS256 key takes exactly one of secret, secret_file".into()),
    };
    if secret.len() < 32 {
        return Err("an HS256 secret must be at least 32 bytes".into());
    }
    Ok(secret)
}

fn load(key: &KeyConfig, config: &AuthConfig) -> Result<Key, String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let (alg, decoding) = match key.alg {
        TokenAlgorithm::HS256 => {
            if key.public_key.is_some() || key.public_key_file.is_some() {
                return Err("an HS256 key takes secret or secret_file, not a public key".into());
            }
            (
                Algorithm::HS256,
                DecodingKey::from_secret(&hs256_secret(key)?),
            )
        }
        TokenAlgorithm::RS256 | TokenAlgorithm::ES256 => {
            if key.secret.is_some() || key.secret_file.is_some() {
                return Err("an RS256 or ES256 key takes a public key, not a secret".into());
            }
            let pem =
                match (&key.public_key, &key.public_key_file) {
                    (Some(p), None) => p.as_bytes().to_vec(),
                    (None, Some(path)) => read(path)?,
                    _ => return Err(
                        "an RS256 or ES256 key takes exactly one of public_key, public_key_file"
                            .into(),
                    ),
                };
            if key.alg == TokenAlgorithm::RS256 {
                let k = DecodingKey::from_rsa_pem(&pem).map_err(|e| format!("RSA key: {e}"))?;
                (Algorithm::RS256, k)
            } else {
                let k = DecodingKey::from_ec_pem(&pem).map_err(|e| format!("EC key: {e}"))?;
                (Algorithm::ES256, k)
            }
        }
    };
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway.as_secs();
    validation.validate_nbf = true;
    let mut required = vec!["sub"];
    validation.validate_aud = false;
    if let Some(aud) = &config.audience {
        validation.validate_aud = true;
        validation.set_audience(&[aud]);
        required.push("aud");
    }
    if let Some(iss) = &config.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    Ok(Key {
        kid: key.kid.clone(),
        alg,
        decoding,
        validation,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(keys: Vec<KeyConfig>) -> AuthConfig {
        AuthConfig {
            keys,
            leeway: std::time::Duration::ZERO,
            audience: Some("herald".into()),
            ..AuthConfig::default()
        }
    }

    fn hs_key(kid: Option<&str>) -> KeyConfig {
        KeyConfig {
            kid: kid.map(Into::into),
            alg: TokenAlgorithm::HS256,
            secret: Some(SECRET.into()),
            secret_file: None,
            public_key: None,
            public_key_file: None,
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn sign(header: &Header, claims: &serde_json::Value) -> String {
        encode(header, claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    }

    #[test]
    fn checks_every_claim_and_names_what_failed() {
        let v = Verifier::new(&config(vec![hs_key(None)])).unwrap();
        let h = Header::default();
        let ok = sign(&h, &json!({"sub": "u", "aud": "herald", "exp": now() + 60}));
        assert_eq!(v.verify(&ok).unwrap().sub, "u");
        let cases = [
            (
                json!({"sub": "u", "aud": "herald", "exp": now() - 10}),
                TokenError::Expired,
            ),
            (
                json!({"sub": "u", "aud": "herald", "nbf": now() + 60}),
                TokenError::NotYetValid,
            ),
            (json!({"sub": "u", "aud": "other"}), TokenError::Audience),
            (json!({"sub": "u"}), TokenError::MissingClaim("aud".into())),
        ];
        for (claims, want) in cases {
            assert_eq!(v.verify(&sign(&h, &claims)).unwrap_err(), want, "{claims}");
        }
        assert!(matches!(
            v.verify(&sign(&h, &json!({"aud": "herald"}))),
            Err(TokenError::Claims(_) | TokenError::MissingClaim(_))
        ));
        assert_eq!(v.verify("not.a.jwt").unwrap_err(), TokenError::Malformed);
        let kid = Header {
            kid: Some("k9".into()),
            ..Header::default()
        };
        assert_eq!(
            v.verify(&sign(&kid, &json!({"sub": "u", "aud": "herald"})))
                .unwrap_err(),
            TokenError::UnknownKid("k9".into())
        );
        let wrong = encode(
            &h,
            &json!({"sub": "u", "aud": "herald"}),
            &EncodingKey::from_secret(b"another secret of thirty-two bytes!"),
        )
        .unwrap();
        assert_eq!(v.verify(&wrong).unwrap_err(), TokenError::Signature);
    }

    #[test]
    fn refuses_unusable_keys() {
        let mut short = hs_key(None);
        short.secret = Some("short".into());
        assert!(Verifier::new(&config(vec![short])).is_err());
        let mut both = hs_key(None);
        both.public_key = Some("x".into());
        assert!(Verifier::new(&config(vec![both])).is_err());
        let rsa = KeyConfig {
            alg: TokenAlgorithm::RS256,
            secret: None,
            public_key: Some("not a pem".into()),
            ..hs_key(None)
        };
        let e = Verifier::new(&config(vec![rsa])).err().unwrap();
        assert!(e.to_string().starts_with("auth.keys[0]: RSA key"), "{e}");
    }
}

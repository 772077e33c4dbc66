//! Who may connect and what they may subscribe to.
//!
//! A client brings a connection token (a JWT) at the upgrade, in `Authorization: Bearer` or as
//! `?token=`. Its `sub` is the user id, its `info` claim the presence info, its `channels` claim
//! the channels it is granted, its `exp` when the connection ends unless a `refresh` brings a
//! new token. Without a token a client gets in only while `auth.anonymous` allows it.
//! Namespaces say who may subscribe ([`SubscribePolicy`]); a private channel needs a grant,
//! from the connection token or from a channel token sent with the subscribe request.

mod identity;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_protocol::{ChannelName, ErrorCode};
use http::{header, HeaderMap};

pub use herald_auth::KeyError;
pub(crate) use herald_auth::{Claims, TokenError, Verifier};
pub(crate) use identity::{ConnectParams, Identity, IdentityError};

use crate::{
    config::{AuthConfig, SubscribePolicy},
    refusal::Refusal,
};

/// A connection's standing, from its token.
#[derive(Debug)]
pub(crate) struct Standing {
    /// It came with a valid token.
    pub(crate) authenticated: bool,
    /// When its token expires (Unix seconds).
    pub(crate) expires_at: Option<u64>,
    /// Channels its token grants.
    pub(crate) channels: Vec<String>,
}

impl Standing {
    /// A connection without a token.
    pub(crate) const fn anonymous() -> Self {
        Self {
            authenticated: false,
            expires_at: None,
            channels: Vec::new(),
        }
    }

    fn from_claims(claims: &Claims) -> Self {
        Self {
            authenticated: true,
            expires_at: claims.exp,
            channels: claims.channels.clone(),
        }
    }

    /// Boxed when it carries a token; `None` for an anonymous connection (which then holds
    /// nothing).
    pub(crate) fn boxed(self) -> Option<Box<Self>> {
        self.authenticated.then(|| Box::new(self))
    }

    /// How long until the token expires, if it does (zero when it already has).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let exp = self.expires_at?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some(Duration::from_secs(exp).saturating_sub(now))
    }
}

/// Why an upgrade was refused: the status and the text the client gets, and a fixed reason
/// for metrics.
#[derive(Debug)]
pub(crate) enum UpgradeRefusal {
    /// 400: the parameters are wrong whatever the credentials.
    BadRequest(String),
    /// 401: no acceptable token.
    Unauthorized(&'static str, String),
}

impl UpgradeRefusal {
    /// The `herald_auth_failures_total` reason.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_parameters",
            Self::Unauthorized(reason, _) => reason,
        }
    }
}

/// The node's authentication: its keys and policy.
pub(crate) struct Auth {
    verifier: Verifier,
    anonymous: bool,
    max_info: usize,
}

impl Auth {
    /// Loads the keys of `config`.
    pub(crate) fn new(config: &AuthConfig, max_info: usize) -> Result<Self, KeyError> {
        Ok(Self {
            verifier: Verifier::new(config)?,
            anonymous: config.anonymous,
            max_info,
        })
    }

    /// Verifies a token and returns its claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verifier.verify(token)
    }

    /// Decides an upgrade request from its headers and query.
    pub(crate) fn admit(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(Option<Identity>, Standing), UpgradeRefusal> {
        let params = ConnectParams::parse(query);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let bad =
            |e: IdentityError| UpgradeRefusal::BadRequest(format!("bad connect parameters: {e}"));
        let Some(token) = bearer.or(params.token.as_deref()) else {
            if !self.anonymous {
                return Err(UpgradeRefusal::Unauthorized(
                    "missing_token",
                    "a token is required: send Authorization: Bearer <JWT> or ?token=<JWT>".into(),
                ));
            }
            if self.verifier.has_keys() && params.user.is_some() {
                return Err(UpgradeRefusal::BadRequest(
                    "?user= is not accepted where tokens are verified: the user comes from the \
                     token's sub"
                        .into(),
                ));
            }
            let identity = Identity::from_params(&params, self.max_info).map_err(bad)?;
            return Ok((identity, Standing::anonymous()));
        };
        if !self.verifier.has_keys() {
            return Err(UpgradeRefusal::Unauthorized(
                "no_keys",
                "this node verifies no tokens (no auth.keys)".into(),
            ));
        }
        if params.user.is_some() || params.info.is_some() {
            return Err(UpgradeRefusal::BadRequest(
                "user and info come from the token: drop ?user= and ?info=".into(),
            ));
        }
        let claims = self
            .verify(token)
            .map_err(|e| UpgradeRefusal::Unauthorized(e.kind(), format!("token refused: {e}")))?;
        let identity = identity_of(&claims, self.max_info).map_err(|e| match e {
            IdentityError::User(_) => {
                UpgradeRefusal::Unauthorized("claims", format!("token refused: sub: {e}"))
            }
            other => UpgradeRefusal::Unauthorized("claims", format!("token refused: {other}")),
        })?;
        Ok((Some(identity), Standing::from_claims(&claims)))
    }

    /// Checks a `refresh`: the new token must be valid and for the same user.
    pub(crate) fn refresh(
        &self,
        token: &str,
        identity: Option<&Identity>,
    ) -> Result<Standing, Denied> {
        let Some(identity) = identity.filter(|_| self.verifier.has_keys()) else {
            return Err(Denied {
                refusal: Refusal::new(
                    ErrorCode::BadRequest,
                    "this connection has no token to refresh",
                ),
                reason: None,
            });
        };
        let claims = self.verify(token).map_err(|e| Denied {
            refusal: Refusal::new(ErrorCode::Unauthorized, format!("token refused: {e}")),
            reason: Some(e.kind()),
        })?;
        if claims.sub != identity.user.as_str() {
            return Err(Denied {
                refusal: Refusal::new(
                    ErrorCode::Unauthorized,
                    "token refused: it is for another user",
                ),
                reason: Some("wrong_user"),
            });
        }
        Ok(Standing::from_claims(&claims))
    }

    /// The channels a channel token grants `identity`.
    pub(crate) fn channel_grant(
        &self,
        token: &str,
        identity: Option<&Identity>,
    ) -> Result<Vec<String>, Denied> {
        let denied = |reason, text: String| Denied {
            refusal: Refusal::new(ErrorCode::PermissionDenied, text),
            reason: Some(reason),
        };
        let claims = self
            .verify(token)
            .map_err(|e| denied(e.kind(), format!("channel token refused: {e}")))?;
        match identity {
            Some(id) if id.user.as_str() == claims.sub => Ok(claims.channels),
            _ => Err(denied(
                "wrong_user",
                "channel token refused: it is for another user".into(),
            )),
        }
    }
}

/// A token refused after the connection opened: what the client is answered, and the
/// `herald_auth_failures_total` reason (none when no token was checked).
#[derive(Debug)]
pub(crate) struct Denied {
    pub(crate) refusal: Refusal,
    pub(crate) reason: Option<&'static str>,
}

fn identity_of(claims: &Claims, max_info: usize) -> Result<Identity, IdentityError> {
    Identity::new(&claims.sub, claims.info.as_ref().map(|i| i.get()), max_info)
}

/// Whether a connection with `standing` may subscribe to `channel` under `policy`, given the
/// channels a channel token of the request granted. Errors are 107 (needs a token) or 104.
pub(crate) fn may_subscribe(
    policy: SubscribePolicy,
    standing: &Standing,
    channel: &ChannelName,
    granted: &Result<Vec<String>, Denied>,
) -> Result<(), Refusal> {
    match policy {
        SubscribePolicy::Anyone => Ok(()),
        SubscribePolicy::Authenticated if standing.authenticated => Ok(()),
        SubscribePolicy::Authenticated => Err(Refusal::new(
            ErrorCode::Unauthorized,
            "this namespace needs a connection token",
        )),
        SubscribePolicy::Token => {
            let name = channel.as_str();
            if standing.channels.iter().any(|c| c == name) {
                return Ok(());
            }
            match granted {
                Ok(channels) if channels.iter().any(|c| c == name) => Ok(()),
                Err(denied) => Err(denied.refusal.clone()),
                Ok(_) => Err(Refusal::new(
                    ErrorCode::PermissionDenied,
                    "private channel: no token grants it",
                )),
            }
        }
    }
}

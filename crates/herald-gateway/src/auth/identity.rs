//! Who a connection is: a user id and the info it joins presence channels with.
//!
//! With a token, both come from its claims (`sub`, `info`). On a node that verifies no tokens
//! (no `auth.keys`), a client may name itself with query parameters of the WebSocket URL:
//! `?user=<id>&info=<JSON, URL-encoded>`, for development.

use bytes::Bytes;
use herald_presence_core::{UserId, UserIdError};

/// A connection's user and the info it joins presence channels with (JSON text).
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) user: UserId,
    pub(crate) info: Bytes,
}

/// Why an identity was refused (the upgrade answers 400 or 401 with this text).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    /// `user` (or the token's `sub`) is not a valid user id.
    #[error("user: {0}")]
    User(#[from] UserIdError),
    /// `info` is not JSON.
    #[error("info is not valid JSON: {0}")]
    Info(#[from] serde_json::Error),
    /// `info` is larger than `presence.max_info_size`.
    #[error("info is larger than {0} bytes")]
    InfoTooLarge(usize),
    /// `info` without `user`.
    #[error("info needs a user")]
    InfoWithoutUser,
}

/// The connect parameters of a WebSocket URL's query.
#[derive(Debug, Default)]
pub(crate) struct ConnectParams {
    pub(crate) token: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) info: Option<String>,
}

impl ConnectParams {
    /// Reads `token`, `user` and `info`; other parameters are ignored.
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut params = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "token" => params.token = Some(value.into_owned()),
                "user" => params.user = Some(value.into_owned()),
                "info" => params.info = Some(value.into_owned()),
                _ => {}
            }
        }
        params
    }
}

impl Identity {
    /// `user` with `info` (JSON text, normalised), or `null` info.
    pub(crate) fn new(
        user: &str,
        info: Option<&str>,
        max_info: usize,
    ) -> Result<Self, IdentityError> {
        let user = UserId::parse(user)?;
        let info = match info {
            None => Bytes::from_static(b"null"),
            Some(text) => {
                if text.len() > max_info {
                    return Err(IdentityError::InfoTooLarge(max_info));
                }
                let value: serde_json::Value = serde_json::from_str(text)?;
                Bytes::from(value.to_string())
            }
        };
        Ok(Self { user, info })
    }

    /// The identity a client named with `?user=&info=`, if any.
    pub(crate) fn from_params(
        params: &ConnectParams,
        max_info: usize,
    ) -> Result<Option<Self>, IdentityError> {
        match (&params.user, &params.info) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(IdentityError::InfoWithoutUser),
            (Some(user), info) => Self::new(user, info.as_deref(), max_info).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_query(q: Option<&str>, max: usize) -> Result<Option<Identity>, IdentityError> {
        Identity::from_params(&ConnectParams::parse(q), max)
    }

    #[test]
    fn reads_user_and_info_from_the_query() {
        let id = from_query(Some("user=alice&info=%7B%22name%22%3A%22Al%22%7D"), 100)
            .unwrap()
            .unwrap();
        assert_eq!(id.user.as_str(), "alice");
        assert_eq!(&id.info[..], br#"{"name":"Al"}"#);
        assert!(from_query(None, 100).unwrap().is_none());
        assert!(from_query(Some("x=1"), 100).unwrap().is_none());
        let p = ConnectParams::parse(Some("token=a.b.c&user=u"));
        assert_eq!(p.token.as_deref(), Some("a.b.c"));
    }

    #[test]
    fn refuses_bad_parameters() {
        assert!(matches!(
            from_query(Some("user="), 100),
            Err(IdentityError::User(_))
        ));
        assert!(matches!(
            from_query(Some("user=a&info=%7B"), 100),
            Err(IdentityError::Info(_))
        ));
        assert!(matches!(
            from_query(Some("user=a&info=%22xxxxxxxxxx%22"), 5),
            Err(IdentityError::InfoTooLarge(5))
        ));
        assert!(matches!(
            from_query(Some("info=1"), 5),
            Err(IdentityError::InfoWithoutUser)
        ));
    }
}

//! Who a connection is: the user id and info given when connecting.
//!
//! Until token authentication exists, a client names itself with query parameters of the
//! WebSocket URL: `?user=<id>&info=<JSON, URL-encoded>`. Both are optional; a connection
//! without a user may not subscribe to presence channels.

use bytes::Bytes;
use herald_presence_core::{UserId, UserIdError};

/// A connection's user and the info it joins presence channels with (JSON text).
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) user: UserId,
    pub(crate) info: Bytes,
}

/// Why the connect parameters were refused (the upgrade answers 400 with this text).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    /// `user` is not a valid user id.
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

impl Identity {
    /// Reads `user` and `info` from a URL query string. `None` when there is no user.
    pub(crate) fn from_query(
        query: Option<&str>,
        max_info: usize,
    ) -> Result<Option<Self>, IdentityError> {
        let (mut user, mut info) = (None, None);
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "user" => user = Some(value.into_owned()),
                "info" => info = Some(value.into_owned()),
                _ => {}
            }
        }
        let Some(user) = user else {
            return match info {
                Some(_) => Err(IdentityError::InfoWithoutUser),
                None => Ok(None),
            };
        };
        let user = UserId::parse(&user)?;
        let info = match info {
            None => Bytes::from_static(b"null"),
            Some(text) => {
                if text.len() > max_info {
                    return Err(IdentityError::InfoTooLarge(max_info));
                }
                let value: serde_json::Value = serde_json::from_str(&text)?;
                Bytes::from(value.to_string())
            }
        };
        Ok(Some(Self { user, info }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_info_from_the_query() {
        let id = Identity::from_query(Some("user=alice&info=%7B%22name%22%3A%22Al%22%7D"), 100)
            .unwrap()
            .unwrap();
        assert_eq!(id.user.as_str(), "alice");
        assert_eq!(&id.info[..], br#"{"name":"Al"}"#);
        assert!(Identity::from_query(None, 100).unwrap().is_none());
        assert!(Identity::from_query(Some("x=1"), 100).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_parameters() {
        assert!(matches!(
            Identity::from_query(Some("user="), 100),
            Err(IdentityError::User(_))
        ));
        assert!(matches!(
            Identity::from_query(Some("user=a&info=%7B"), 100),
            Err(IdentityError::Info(_))
        ));
        assert!(matches!(
            Identity::from_query(Some("user=a&info=%22xxxxxxxxxx%22"), 5),
            Err(IdentityError::InfoTooLarge(5))
        ));
        assert!(matches!(
            Identity::from_query(Some("info=1"), 5),
            Err(IdentityError::InfoWithoutUser)
        ));
    }
}

//! Users.

use std::{fmt, sync::Arc};

/// The hard upper bound on a user id's length in bytes.
const MAX_LEN: usize = 255;

/// A user's id, as the connection's identity gives it: 1 to 255 bytes of printable ASCII
/// without spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

/// Why a string is not a user id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// Empty.
    #[error("user id is empty")]
    Empty,
    /// Too long.
    #[error("user id is longer than {MAX_LEN} bytes")]
    TooLong,
    /// A character outside printable ASCII, or a space.
    #[error("user id has a character outside printable ASCII (no spaces)")]
    BadCharacter,
}

impl UserId {
    /// Validates `id`.
    ///
    /// # Errors
    /// [`UserIdError`] saying what is wrong.
    pub fn parse(id: &str) -> Result<Self, UserIdError> {
        if id.is_empty() {
            return Err(UserIdError::Empty);
        }
        if id.len() > MAX_LEN {
            return Err(UserIdError::TooLong);
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UserIdError::BadCharacter);
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_user_ids() {
        assert_eq!(UserId::parse("alice").unwrap().as_str(), "alice");
        assert!(UserId::parse("user:42@example").is_ok());
        assert_eq!(UserId::parse(""), Err(UserIdError::Empty));
        assert_eq!(UserId::parse("a b"), Err(UserIdError::BadCharacter));
        assert_eq!(UserId::parse("é"), Err(UserIdError::BadCharacter));
        assert_eq!(UserId::parse(&"a".repeat(256)), Err(UserIdError::TooLong));
    }
}

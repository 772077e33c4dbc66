//! Channel names: validated once at the edge, then cheap to clone and hash.

use std::{fmt, sync::Arc};

/// The hard upper bound on a channel name's length in bytes. Deployments may configure less.
pub const MAX_LEN: usize = 255;

/// A validated channel name: 1 to [`MAX_LEN`] bytes of `A-Z a-z 0-9 _ - = @ , . ; : /`, not
/// starting or ending with `:`. The part before the first `:` is the namespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

/// Why a string is not a channel name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than the limit.
    #[error("channel name is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside the allowed set.
    #[error("channel name has a character outside A-Z a-z 0-9 _ - = @ , . ; : / at byte {at}")]
    BadCharacter {
        /// Byte offset of the first bad character.
        at: usize,
    },
    /// The name starts or ends with the namespace separator.
    #[error("channel name starts or ends with ':'")]
    EmptyPart,
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-=@,.;:/".contains(&b)
}

impl ChannelName {
    /// Validates `name` against [`MAX_LEN`].
    ///
    /// # Errors
    /// [`ChannelError`] says what is wrong with the name.
    pub fn parse(name: &str) -> Result<Self, ChannelError> {
        Self::parse_with_max(name, MAX_LEN)
    }

    /// Validates `name` against a configured length limit (capped at [`MAX_LEN`]).
    ///
    /// # Errors
    /// [`ChannelError`] says what is wrong with the name.
    pub fn parse_with_max(name: &str, max: usize) -> Result<Self, ChannelError> {
        let max = max.min(MAX_LEN);
        if name.is_empty() {
            return Err(ChannelError::Empty);
        }
        if name.len() > max {
            return Err(ChannelError::TooLong {
                len: name.len(),
                max,
            });
        }
        if let Some(at) = name.bytes().position(|b| !allowed(b)) {
            return Err(ChannelError::BadCharacter { at });
        }
        if name.starts_with(':') || name.ends_with(':') {
            return Err(ChannelError::EmptyPart);
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace: the part before the first `:`, or `None` for a channel without one.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once(':').map(|(ns, _)| ns)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::borrow::Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_namespaced_names() {
        let c = ChannelName::parse("chat:room1").unwrap();
        assert_eq!(c.namespace(), Some("chat"));
        assert_eq!(ChannelName::parse("news").unwrap().namespace(), None);
        assert_eq!(
            ChannelName::parse("a:b:c").unwrap().namespace(),
            Some("a"),
            "only the first ':' separates the namespace"
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(ChannelName::parse(""), Err(ChannelError::Empty));
        assert_eq!(
            ChannelName::parse("a b"),
            Err(ChannelError::BadCharacter { at: 1 })
        );
        assert_eq!(
            ChannelName::parse("né"),
            Err(ChannelError::BadCharacter { at: 1 })
        );
        assert_eq!(ChannelName::parse(":x"), Err(ChannelError::EmptyPart));
        assert_eq!(ChannelName::parse("x:"), Err(ChannelError::EmptyPart));
        let long = "a".repeat(MAX_LEN + 1);
        assert!(matches!(
            ChannelName::parse(&long),
            Err(ChannelError::TooLong { .. })
        ));
        assert!(ChannelName::parse(&"a".repeat(MAX_LEN)).is_ok());
        assert!(matches!(
            ChannelName::parse_with_max("abcd", 3),
            Err(ChannelError::TooLong { len: 4, max: 3 })
        ));
    }
}

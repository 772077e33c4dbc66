//! Where a client is in a channel's stream: an offset and the epoch of the sequence it counts
//! in. A channel's sequence gets a new epoch whenever it starts again (its counter was lost:
//! Redis restarted without persistence, was flushed, or the counter expired), so "offset 7 of
//! epoch `a`" and "offset 7 of epoch `b`" are different publications.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A sequence's epoch: 1 to 32 ASCII letters and digits, opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Epoch(String);

/// Why an epoch was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("an epoch is 1 to 32 ASCII letters and digits")]
pub struct EpochError;

impl Epoch {
    /// The longest epoch.
    pub const MAX_LEN: usize = 32;

    /// A new random epoch (12 hexadecimal digits: 48 random bits), for a sequence that
    /// starts.
    pub fn random() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self(id[id.len() - 12..].to_owned())
    }

    /// Checks `text`.
    ///
    /// # Errors
    /// [`EpochError`] when it is empty, too long, or has other characters.
    pub fn parse(text: &str) -> Result<Self, EpochError> {
        if text.is_empty()
            || text.len() > Self::MAX_LEN
            || !text.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(EpochError);
        }
        Ok(Self(text.to_owned()))
    }

    /// The epoch's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Epoch::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A position in a channel's stream: the offset of the last publication seen, in `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The offset of the last publication seen.
    pub offset: u64,
    /// The epoch that offset counts in.
    pub epoch: Epoch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_short_and_plain() {
        assert_eq!(Epoch::parse("k3x9a").unwrap().as_str(), "k3x9a");
        assert!(Epoch::parse("").is_err());
        assert!(Epoch::parse("a-b").is_err());
        assert!(Epoch::parse(&"a".repeat(33)).is_err());
        let p: Position = serde_json::from_str(r#"{"offset":7,"epoch":"ab1"}"#).unwrap();
        assert_eq!(p.offset, 7);
        assert!(serde_json::from_str::<Position>(r#"{"offset":7,"epoch":"a b"}"#).is_err());
    }
}

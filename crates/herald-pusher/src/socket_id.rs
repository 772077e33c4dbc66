//! Socket ids: `<digits>.<digits>`, handed to each connection in
//! `pusher:connection_established` and used in channel authorization strings.

use std::fmt;

/// A connection's socket id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId {
    /// The part before the dot (Herald: a per-node number).
    pub high: u64,
    /// The part after the dot (Herald: the connection's number on that node).
    pub low: u64,
}

impl SocketId {
    /// Parses `123.456`; `None` for anything else (what Pusher answers as an invalid
    /// socket id).
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.split_once('.')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(high) || !digits(low) {
            return None;
        }
        Some(Self {
            high: high.parse().ok()?,
            low: low.parse().ok()?,
        })
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_the_rest() {
        let id = SocketId::parse("1234.1234").unwrap();
        assert_eq!(
            id,
            SocketId {
                high: 1234,
                low: 1234
            }
        );
        assert_eq!(id.to_string(), "1234.1234");
        for bad in [
            "",
            "1234",
            ".1",
            "1.",
            "1.2.3",
            "a.1",
            "1.-2",
            " 1.2",
            "1.99999999999999999999999",
        ] {
            assert_eq!(SocketId::parse(bad), None, "{bad}");
        }
    }
}

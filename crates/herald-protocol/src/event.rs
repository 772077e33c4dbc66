//! Event names: what a Pusher client binds to (`channel.bind("order-shipped", ...)`). A
//! publication may carry one; native clients see it as the push's `event`, Pusher clients as
//! the event's name.

use std::{fmt, sync::Arc};

/// A valid event name: 1 to 200 bytes of UTF-8 without control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName(Arc<str>);

/// Why an event name was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventNameError {
    /// Empty, or longer than [`EventName::MAX_LEN`] bytes.
    #[error("event names are 1 to 200 bytes")]
    Length,
    /// A control character.
    #[error("event names may not contain control characters")]
    Control,
}

impl EventName {
    /// The longest event name, in bytes (Pusher's limit).
    pub const MAX_LEN: usize = 200;

    /// Validates a name.
    ///
    /// # Errors
    /// [`EventNameError`] with the reason.
    pub fn parse(name: &str) -> Result<Self, EventNameError> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(EventNameError::Length);
        }
        if name.chars().any(char::is_control) {
            return Err(EventNameError::Control);
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_pusher_and_laravel_names() {
        for good in [
            "my-event",
            r"App\Events\OrderShipped",
            "client-typing",
            "ünïcode",
            "a",
        ] {
            assert_eq!(EventName::parse(good).unwrap().as_str(), good);
        }
        assert!(EventName::parse(&"x".repeat(200)).is_ok());
        assert_eq!(EventName::parse(""), Err(EventNameError::Length));
        assert_eq!(
            EventName::parse(&"x".repeat(201)),
            Err(EventNameError::Length)
        );
        assert_eq!(EventName::parse("a\nb"), Err(EventNameError::Control));
        assert_eq!(EventName::parse("a\u{7f}"), Err(EventNameError::Control));
    }
}

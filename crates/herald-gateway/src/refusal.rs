//! A request refused in Herald's own terms: the [`ErrorCode`] a client gets, and why, in words.
//! One type for the native protocol's error replies and the HTTP API's error bodies; the Pusher
//! protocol has its own ([`crate::pusher`]). Imports nothing of the crate.

use std::{borrow::Cow, fmt};

use herald_protocol::ErrorCode;

/// A refusal: a code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) reason: Cow<'static, str>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// A broker failure, with the code it is reported with to HTTP and WebSocket publishers
    /// alike.
    pub(crate) fn broker(e: &herald_broker::BrokerError) -> Self {
        use herald_broker::BrokerError;
        let code = match e {
            BrokerError::Uncertain(_) => ErrorCode::Uncertain,
            BrokerError::Unavailable(_) | BrokerError::Closed => ErrorCode::Unavailable,
            BrokerError::Refused(_) | BrokerError::Unexpected(_) | BrokerError::Malformed(_) => {
                ErrorCode::Internal
            }
        };
        Self::new(code, e.to_string())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

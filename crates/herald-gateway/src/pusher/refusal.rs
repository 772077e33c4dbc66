//! What a Pusher client is told when something it asked for is refused.

use std::borrow::Cow;

use bytes::Bytes;
use herald_pusher::message;

/// A refusal in the Pusher protocol's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `pusher:error`, with one of the protocol's codes where it has one.
    Error {
        code: Option<u16>,
        message: Cow<'static, str>,
    },
    /// `pusher:subscription_error` of one channel: a type (`AuthError`, ...) and an HTTP-like
    /// status, as pusher-js reports them.
    Subscription {
        kind: &'static str,
        message: Cow<'static, str>,
        status: u16,
    },
}

impl Refusal {
    /// A `pusher:error` without a code.
    pub(crate) fn error(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Error {
            code: None,
            message: message.into(),
        }
    }

    /// A `pusher:error` with `code`.
    pub(crate) fn coded(code: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Error {
            code: Some(code),
            message: message.into(),
        }
    }

    /// A `pusher:subscription_error`.
    pub(crate) fn subscription(
        kind: &'static str,
        status: u16,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Subscription {
            kind,
            message: message.into(),
            status,
        }
    }

    /// The frame that tells the client; `channel` names the subscription refused.
    pub(crate) fn frame(&self, channel: &str) -> Bytes {
        let text = match self {
            Self::Error { code, message } => message::error(*code, message),
            Self::Subscription {
                kind,
                message,
                status,
            } => message::subscription_error(channel, kind, message, *status),
        };
        super::frame(&text)
    }
}

//! Error codes carried in `{"error":{"code":..,"message":..}}` replies.

/// Why a request failed. The numbers are part of the public protocol (docs/protocol.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100: the server failed; the request may be retried.
    Internal,
    /// 101: the frame could not be decoded, or a field is missing or of the wrong type.
    BadRequest,
    /// 102: a channel name is empty, too long, or has a character outside the allowed set.
    InvalidChannel,
    /// 103: the channel's `ns:` prefix names no configured namespace.
    UnknownNamespace,
    /// 104: the namespace does not allow this (for example client publish).
    PermissionDenied,
    /// 105: the broker is unavailable; retry later.
    Unavailable,
    /// 106: the publication's data is larger than the configured limit.
    TooLarge,
    /// 107: a key or token is missing or refused, or the request needs an authenticated
    /// connection.
    Unauthorized,
    /// 108: the broker did not answer in time, or the connection broke after the request was
    /// sent: the publication may or may not have been made. Check before retrying if
    /// duplicates matter.
    Uncertain,
    /// 109: a per-connection limit was reached (subscriptions, publish rate); the request was
    /// not carried out, and the connection stays open.
    LimitExceeded,
    /// 110: the position given is not in the channel's history: its epoch is not the
    /// channel's (the sequence started again), or what followed it is no longer kept.
    PositionLost,
}

impl ErrorCode {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Internal => 100,
            ErrorCode::BadRequest => 101,
            ErrorCode::InvalidChannel => 102,
            ErrorCode::UnknownNamespace => 103,
            ErrorCode::PermissionDenied => 104,
            ErrorCode::Unavailable => 105,
            ErrorCode::TooLarge => 106,
            ErrorCode::Unauthorized => 107,
            ErrorCode::Uncertain => 108,
            ErrorCode::LimitExceeded => 109,
            ErrorCode::PositionLost => 110,
        }
    }
}

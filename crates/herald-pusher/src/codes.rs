//! Close codes and `pusher:error` codes, as pusher-js reads them:
//!
//! - 4000 to 4099: do not reconnect (the same request would fail again);
//! - 4100 to 4199: reconnect after a back-off;
//! - 4200 to 4299: reconnect at once;
//! - 4300 to 4399 are not close codes: they come as `pusher:error` events on an open
//!   connection (such as a client event over the rate limit). Herald never closes with one.

/// Over SSL only (not used: TLS ends wherever the operator puts it).
pub const SSL_ONLY: u16 = 4000;
/// No app with the key in the URL.
pub const APP_NOT_FOUND: u16 = 4001;
/// The app is disabled.
pub const APP_DISABLED: u16 = 4003;
/// The app's connection limit is reached.
pub const APP_OVER_CONNECTION_QUOTA: u16 = 4004;
/// The path is not `/app/{key}`.
pub const PATH_NOT_FOUND: u16 = 4005;
/// The `protocol` query parameter is missing or not a number.
pub const INVALID_VERSION_FORMAT: u16 = 4006;
/// A protocol version Herald does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: u16 = 4007;
/// No `protocol` query parameter.
pub const NO_PROTOCOL_VERSION: u16 = 4008;
/// The connection is not authorized (a failed `pusher:signin` where sign-in is required, or
/// a terminated user).
pub const UNAUTHORIZED: u16 = 4009;
/// The node is over capacity: reconnect later.
pub const OVER_CAPACITY: u16 = 4100;
/// A generic reconnect-at-once (Herald: the node is draining).
pub const RECONNECT: u16 = 4200;
/// The client did not answer a ping in time.
pub const PONG_NOT_RECEIVED: u16 = 4201;
/// Closed after inactivity.
pub const CLOSED_AFTER_INACTIVITY: u16 = 4202;
/// `pusher:error` (not a close): a client event over the rate limit.
pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;

/// Whether pusher-js reconnects after this close code.
pub fn reconnects(code: u16) -> bool {
    (4100..4300).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_what_pusher_js_does() {
        assert!(!reconnects(APP_NOT_FOUND));
        assert!(!reconnects(UNAUTHORIZED));
        assert!(reconnects(OVER_CAPACITY));
        assert!(reconnects(RECONNECT));
        assert!(reconnects(CLOSED_AFTER_INACTIVITY));
        assert!(!reconnects(CLIENT_EVENT_RATE_LIMIT));
    }
}

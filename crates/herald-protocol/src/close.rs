//! WebSocket close codes Herald sends, with the reconnect advice documented in docs/protocol.md.
//!
//! 4000-4499 mean "reconnect" (after a jittered backoff); 4500-4999 mean "do not reconnect
//! without changing something". The 1xxx codes are RFC 6455's.

/// 1000: normal closure, in answer to the client's own close.
pub const NORMAL: u16 = 1000;
/// 1002: the client broke the WebSocket protocol (unmasked frame, reserved bits, bad opcode,
/// fragmented control frame...). Reconnect only after fixing the client.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1007: a text frame or close reason was not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1009: a frame or reassembled message exceeded the configured message size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server failed unexpectedly. Reconnect with backoff.
pub const INTERNAL_ERROR: u16 = 1011;
/// 4000: the node is shutting down (drain). Reconnect after a short random delay; the load
/// balancer sends the client to another node.
pub const SHUTDOWN: u16 = 4000;
/// 4001: the client read too slowly and its outbound queue filled up. Reconnect with backoff;
/// messages sent meanwhile were not delivered to it.
pub const SLOW_CONSUMER: u16 = 4001;
/// 4002: the client did not answer pings within the idle timeout. Reconnect.
pub const IDLE_TIMEOUT: u16 = 4002;

/// 4003: the application disconnected the connection through the server API
/// (`POST /v1/disconnect` with `reconnect: true`). Reconnect with backoff.
pub const DISCONNECT_RECONNECT: u16 = 4003;

/// 4500: the connection's token expired and no fresh one came with `refresh`. Do not
/// reconnect with the same token: get a new one first.
pub const TOKEN_EXPIRED: u16 = 4500;

/// 4501: the application disconnected the connection through the server API
/// (`POST /v1/disconnect`). Do not reconnect.
pub const DISCONNECTED: u16 = 4501;

/// Whether a client closed with `code` should reconnect, per Herald's convention.
pub fn should_reconnect(code: u16) -> bool {
    matches!(code, 1001 | 1006 | 1011 | 1012 | 1013 | 4000..=4499)
}

/// The short reason text sent with each of Herald's close codes.
pub fn reason(code: u16) -> &'static str {
    match code {
        NORMAL => "normal closure",
        PROTOCOL_ERROR => "protocol error",
        INVALID_PAYLOAD => "invalid utf-8",
        MESSAGE_TOO_BIG => "message too big",
        INTERNAL_ERROR => "internal error",
        SHUTDOWN => "shutdown: reconnect",
        SLOW_CONSUMER => "slow consumer",
        IDLE_TIMEOUT => "idle timeout",
        DISCONNECT_RECONNECT => "disconnected by the server: reconnect",
        TOKEN_EXPIRED => "token expired: reconnect with a new token",
        DISCONNECTED => "disconnected by the server",
        _ => "",
    }
}

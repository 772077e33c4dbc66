//! WebSocket framing (RFC 6455), server side, with no I/O.
//!
//! Herald frames its own messages instead of going through a WebSocket library's stream type:
//! a server frame is unmasked and therefore identical for every recipient, so it is built once
//! ([`FrameBuilder`]) and the same bytes are queued to every subscriber; and the client side is
//! decoded from whatever bytes a connection has read ([`Decoder`]), so an idle connection holds
//! no read buffer at all.

mod decoder;
mod encoder;

pub use decoder::{DecodeError, Decoder, Message};
pub use encoder::{client_frame, close_frame, control_frame, FrameBuilder};

/// Frame opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text.
    Text = 0x1,
    /// Binary data.
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl OpCode {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

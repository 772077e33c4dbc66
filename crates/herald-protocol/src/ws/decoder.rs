//! Client frames: masked, possibly fragmented, limited in size before anything is buffered.

use bytes::{Buf, Bytes, BytesMut};

use super::OpCode;
use crate::close;

/// A complete message or control frame from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; answer with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame, with the code and reason when the client sent them.
    Close(Option<(u16, String)>),
}

/// A broken frame. Each maps to the close code the connection must send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A violation of RFC 6455: close with 1002.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A frame or reassembled message over the limit: close with 1009.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooBig {
        /// Bytes claimed (or reassembled so far).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Text that is not UTF-8: close with 1007.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
}

impl DecodeError {
    /// The close code to send for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            DecodeError::Protocol(_) => close::PROTOCOL_ERROR,
            DecodeError::TooBig { .. } => close::MESSAGE_TOO_BIG,
            DecodeError::InvalidUtf8 => close::INVALID_PAYLOAD,
        }
    }
}

/// Decodes client frames from a connection's read buffer.
///
/// Holds no buffer of its own except the fragments of a message that is not complete yet.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    fragments: Option<(OpCode, BytesMut)>,
}

struct Header {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

impl Decoder {
    /// A decoder refusing messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            fragments: None,
        }
    }

    /// How many more bytes the frame at the head of `buf` needs, at least 1 while the header
    /// is incomplete. Lets the reader size its buffer to what is really coming.
    pub fn wanted(&self, buf: &[u8]) -> usize {
        match parse_header(buf) {
            Ok(Some(h)) => (h.header_len + h.payload_len)
                .saturating_sub(buf.len())
                .max(1),
            _ => 1,
        }
    }

    /// Takes the next complete message or control frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete frame yet (nothing is consumed then).
    ///
    /// # Errors
    /// A [`DecodeError`] ends the connection; its [`DecodeError::close_code`] says how. A frame
    /// claiming more than the limit fails as soon as its header is read, before its payload is.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        loop {
            let Some(h) = parse_header(buf)? else {
                return Ok(None);
            };
            let already = self.fragments.as_ref().map_or(0, |(_, f)| f.len());
            if !h.opcode.is_control() && already + h.payload_len > self.max_message {
                return Err(DecodeError::TooBig {
                    len: (already + h.payload_len) as u64,
                    max: self.max_message,
                });
            }
            if buf.len() < h.header_len + h.payload_len {
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(h.payload_len);
            unmask(&mut payload, h.mask);
            if let Some(message) = self.frame(h.fin, h.opcode, payload)? {
                return Ok(Some(message));
            }
        }
    }

    fn frame(
        &mut self,
        fin: bool,
        opcode: OpCode,
        payload: BytesMut,
    ) -> Result<Option<Message>, DecodeError> {
        match opcode {
            OpCode::Ping => Ok(Some(Message::Ping(payload.freeze()))),
            OpCode::Pong => Ok(Some(Message::Pong)),
            OpCode::Close => close_payload(&payload).map(|c| Some(Message::Close(c))),
            OpCode::Text | OpCode::Binary => {
                if self.fragments.is_some() {
                    return Err(DecodeError::Protocol("new message inside a fragmented one"));
                }
                if fin {
                    complete(opcode, payload).map(Some)
                } else {
                    self.fragments = Some((opcode, payload));
                    Ok(None)
                }
            }
            OpCode::Continuation => {
                let Some((_, buf)) = self.fragments.as_mut() else {
                    return Err(DecodeError::Protocol("continuation without a message"));
                };
                buf.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let (opcode, buf) = self.fragments.take().expect("checked above");
                complete(opcode, buf).map(Some)
            }
        }
    }
}

fn complete(opcode: OpCode, payload: BytesMut) -> Result<Message, DecodeError> {
    if opcode == OpCode::Text {
        std::str::from_utf8(&payload).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(Message::Text(payload.freeze()))
    } else {
        Ok(Message::Binary(payload.freeze()))
    }
}

fn close_payload(payload: &[u8]) -> Result<Option<(u16, String)>, DecodeError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(DecodeError::Protocol("close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(DecodeError::Protocol("invalid close code"));
            }
            let reason =
                std::str::from_utf8(&payload[2..]).map_err(|_| DecodeError::InvalidUtf8)?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

fn parse_header(buf: &[u8]) -> Result<Option<Header>, DecodeError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(DecodeError::Protocol("reserved bits set"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(DecodeError::Protocol("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(DecodeError::Protocol("client frame not masked"));
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() && (!fin || len7 > 125) {
        return Err(DecodeError::Protocol(
            "fragmented or oversized control frame",
        ));
    }
    let (len, at) = match len7 {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let len = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(DecodeError::Protocol("frame length has its top bit set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if buf.len() < at + 4 {
        return Ok(None);
    }
    let mask = buf[at..at + 4].try_into().expect("4 bytes");
    // A length that does not fit usize is over any limit: report it as the maximum.
    let payload_len = usize::try_from(len).unwrap_or(usize::MAX - at - 4);
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len: at + 4,
        payload_len,
    }))
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;

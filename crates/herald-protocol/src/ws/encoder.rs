//! Server frames: unmasked, built once and shared.

use bytes::Bytes;

use super::OpCode;

/// Room kept in front of the payload for the longest header a server frame needs.
const HEADROOM: usize = 10;

/// Builds one server frame: write the payload (it implements [`std::io::Write`]), then
/// [`FrameBuilder::finish`] puts the header in front without copying the payload.
pub struct FrameBuilder {
    buf: Vec<u8>,
}

impl FrameBuilder {
    /// A builder with room for a payload of about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADROOM + capacity);
        buf.resize(HEADROOM, 0);
        Self { buf }
    }

    /// Appends payload bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The payload written so far.
    pub fn payload(&self) -> &[u8] {
        &self.buf[HEADROOM..]
    }

    /// The complete frame (FIN set) of `opcode`.
    pub fn finish(mut self, opcode: OpCode) -> Bytes {
        let len = self.buf.len() - HEADROOM;
        let mut header = [0u8; HEADROOM];
        header[0] = 0x80 | opcode as u8;
        let header_len = if len < 126 {
            header[1] = len as u8;
            2
        } else if len <= usize::from(u16::MAX) {
            header[1] = 126;
            header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        } else {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        let start = HEADROOM - header_len;
        self.buf[start..HEADROOM].copy_from_slice(&header[..header_len]);
        Bytes::from(self.buf).slice(start..)
    }
}

impl std::io::Write for FrameBuilder {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A complete control frame (ping, pong) carrying `payload` (at most 125 bytes; longer payloads
/// are cut, as RFC 6455 allows no more).
pub fn control_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut b = FrameBuilder::with_capacity(payload.len().min(125));
    b.extend(&payload[..payload.len().min(125)]);
    b.finish(opcode)
}

/// A complete close frame with `code` and a short `reason` (cut to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut b = FrameBuilder::with_capacity(2 + cut);
    b.extend(&code.to_be_bytes());
    b.extend(&reason.as_bytes()[..cut]);
    b.finish(OpCode::Close)
}

/// A masked client frame, as browsers send them: for test clients and load generators.
pub fn client_frame(fin: bool, opcode: OpCode, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.push((u8::from(fin) << 7) | opcode as u8);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(len: usize) -> Bytes {
        let mut b = FrameBuilder::with_capacity(len);
        b.extend(&vec![b'x'; len]);
        b.finish(OpCode::Text)
    }

    #[test]
    fn header_lengths_follow_the_payload_size() {
        let f = frame_of(5);
        assert_eq!(&f[..2], &[0x81, 5]);
        assert_eq!(f.len(), 7);
        let f = frame_of(126);
        assert_eq!(&f[..4], &[0x81, 126, 0, 126]);
        assert_eq!(f.len(), 4 + 126);
        let f = frame_of(70_000);
        assert_eq!(f[1], 127);
        assert_eq!(u64::from_be_bytes(f[2..10].try_into().unwrap()), 70_000);
        assert_eq!(f.len(), 10 + 70_000);
    }

    #[test]
    fn close_frames_carry_code_and_reason() {
        let f = close_frame(4000, "shutdown");
        assert_eq!(&f[..2], &[0x88, 10]);
        assert_eq!(&f[2..4], &4000u16.to_be_bytes());
        assert_eq!(&f[4..], b"shutdown");
        let long = "é".repeat(100);
        let f = close_frame(1000, &long);
        assert!(f.len() <= 127);
        assert!(std::str::from_utf8(&f[4..]).is_ok());
    }
}

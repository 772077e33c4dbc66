//! The TLS 1.3 record layer of an upgraded wss connection, without rustls' buffers.
//!
//! Once the handshake and the HTTP upgrade are done, rustls hands over the connection's traffic
//! secrets (`dangerous_extract_secrets`) and is dropped: the connection then keeps two AEAD
//! keys, two IVs and two sequence numbers, and no buffer while idle. Ciphertext is read into
//! the caller's stack buffer and opened in place; what the connection writes is sealed, many
//! frames per record, straight into a scratch buffer and sent. Only a record cut in half by
//! the socket (`partial`) or sealed bytes the socket did not take (`unsent`) are kept, until
//! they are complete or sent.
//!
//! What a client sends besides application data and `close_notify` (a TLS 1.3 `KeyUpdate`,
//! which browsers do not send) closes the connection: the keys cannot follow it. For the same
//! reason a connection ends after [`SEAL_LIMIT`] records sent, where TLS would update its key.

use std::io::{self, IoSlice};

use bytes::BytesMut;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{ConnectionTrafficSecrets, ExtractedSecrets};

/// The record header: type, legacy version, length.
const HEADER: usize = 5;
/// The AEAD tag of every cipher suite TLS 1.3 has.
const TAG: usize = 16;
/// The most plaintext one record carries.
const MAX_PLAINTEXT: usize = 1 << 14;
/// The most ciphertext one record carries (plaintext, its type byte, padding and the tag).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Plaintext sealed per write at most: four full records.
const WRITE_PLAINTEXT: usize = 4 * MAX_PLAINTEXT;
/// Records sealed with one key at most. TLS 1.3 would update the keys before AES-GCM's
/// usage limit (2^24.5 records, RFC 8446 section 5.5); this layer cannot, so the connection
/// ends there and the client reconnects.
const SEAL_LIMIT: u64 = 1 << 24;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;

/// One direction's key, IV and sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> io::Result<Self> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(invalid("a cipher suite the record layer does not know")),
        };
        let key = UnboundKey::new(algorithm, key.as_ref()).map_err(|_| invalid("bad key"))?;
        let iv: [u8; 12] = iv.as_ref().try_into().map_err(|_| invalid("bad IV"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The next record's nonce: the IV XOR the sequence number (RFC 8446, 5.3).
    fn nonce(&mut self) -> Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        Nonce::assume_unique_for_key(nonce)
    }

    /// Seals the first `take` bytes of `bufs` into records of at most 16 KiB.
    fn seal(&mut self, bufs: &[IoSlice<'_>], take: usize) -> io::Result<Vec<u8>> {
        let records = take.div_ceil(MAX_PLAINTEXT);
        if self.seq.saturating_add(records as u64) > SEAL_LIMIT {
            return Err(invalid("the key's usage limit is reached"));
        }
        let mut out = Vec::with_capacity(take + records * (HEADER + 1 + TAG));
        let mut slices = bufs.iter().map(|b| &b[..]).filter(|b| !b.is_empty());
        let mut current: &[u8] = &[];
        let mut left = take;
        while left > 0 {
            let size = left.min(MAX_PLAINTEXT);
            let start = out.len();
            let len = u16::try_from(size + 1 + TAG).expect("a record's length");
            let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
            out.extend_from_slice(&header);
            let mut need = size;
            while need > 0 {
                if current.is_empty() {
                    current = slices.next().expect("`take` bytes in `bufs`");
                }
                let n = need.min(current.len());
                out.extend_from_slice(&current[..n]);
                current = &current[n..];
                need -= n;
            }
            out.push(APPLICATION_DATA);
            let nonce = self.nonce();
            let tag = self
                .key
                .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start + HEADER..])
                .map_err(|_| invalid("sealing failed"))?;
            out.extend_from_slice(tag.as_ref());
            left -= size;
        }
        Ok(out)
    }

    /// Opens one record in place: its content type and its content.
    fn open<'a>(
        &mut self,
        header: [u8; HEADER],
        record: &'a mut [u8],
    ) -> io::Result<(u8, &'a [u8])> {
        let nonce = self.nonce();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(header), record)
            .map_err(|_| invalid("a record that does not decrypt"))?;
        // The content type is the last byte that is not padding.
        let end = plain
            .iter()
            .rposition(|&b| b != 0)
            .ok_or_else(|| invalid("a record without a content type"))?;
        Ok((plain[end], &plain[..end]))
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A wss connection after its handshake: the TCP socket and the record layer.
pub(in crate::ws) struct SealedSocket {
    pub(super) tcp: TcpStream,
    seal: Direction,
    open: Direction,
    /// Ciphertext of a record not complete yet.
    partial: Vec<u8>,
    /// Sealed records the socket did not take yet.
    unsent: Vec<u8>,
    /// Plaintext decrypted before the record layer took over, read first.
    early: Vec<u8>,
    /// The client sent close_notify.
    closed: bool,
}

impl SealedSocket {
    pub(super) fn new(
        tcp: TcpStream,
        secrets: ExtractedSecrets,
        early: Vec<u8>,
    ) -> io::Result<Self> {
        Ok(Self {
            tcp,
            seal: Direction::new(secrets.tx)?,
            open: Direction::new(secrets.rx)?,
            partial: Vec::new(),
            unsent: Vec::new(),
            early,
            closed: false,
        })
    }

    /// A read would make progress without the socket.
    pub(super) fn ready(&self) -> bool {
        self.closed || !self.early.is_empty()
    }

    /// Sealed bytes are waiting for the socket.
    pub(super) fn wants_write(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Appends the plaintext of the complete records the socket has to `buf`.
    pub(super) fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if !self.early.is_empty() {
            buf.extend_from_slice(&self.early);
            let n = self.early.len();
            self.early = Vec::new();
            return Ok(n);
        }
        if self.closed {
            return Ok(0);
        }
        let mut cipher = [0u8; MAX_CIPHERTEXT + HEADER];
        let n = self.tcp.try_read(&mut cipher)?;
        if n == 0 {
            return Ok(0);
        }
        let mut got = 0;
        if self.partial.is_empty() {
            let used = self.open_records(&mut cipher[..n], buf, &mut got)?;
            self.partial.extend_from_slice(&cipher[used..n]);
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(&cipher[..n]);
            let used = self.open_records(&mut partial, buf, &mut got)?;
            partial.drain(..used);
            if !partial.is_empty() {
                self.partial = partial;
            }
        }
        match got {
            0 if self.closed => Ok(0),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// Opens every complete record at the start of `data` in place, appending application
    /// data to `buf`; returns the bytes used.
    fn open_records(
        &mut self,
        data: &mut [u8],
        buf: &mut BytesMut,
        got: &mut usize,
    ) -> io::Result<usize> {
        let mut at = 0;
        while !self.closed && data.len() - at >= HEADER {
            let header: [u8; HEADER] = data[at..at + HEADER].try_into().expect("5 bytes");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if header[0] != APPLICATION_DATA || !(TAG + 1..=MAX_CIPHERTEXT).contains(&len) {
                return Err(invalid("not a TLS 1.3 application data record"));
            }
            if data.len() - at < HEADER + len {
                break;
            }
            let record = &mut data[at + HEADER..at + HEADER + len];
            match self.open.open(header, record)? {
                (APPLICATION_DATA, content) => {
                    buf.extend_from_slice(content);
                    *got += content.len();
                }
                // close_notify (warning, 0): the client is done; any other alert is fatal.
                (ALERT, [1, 0]) => self.closed = true,
                (ALERT, _) => return Err(invalid("the client sent an alert")),
                _ => return Err(invalid("a TLS handshake message after the handshake")),
            }
            at += HEADER + len;
        }
        Ok(at)
    }

    /// Seals what `bufs` hold (up to four records' worth) and sends as much as the socket
    /// takes; the rest waits in `unsent`. Returns the plaintext bytes taken.
    pub(super) fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush()?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let take = total.min(WRITE_PLAINTEXT);
        if take == 0 {
            return Ok(0);
        }
        let out = self.seal.seal(bufs, take)?;
        self.unsent = out;
        match self.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(take),
        }
    }

    /// Sends what waits in `unsent`; `WouldBlock` while some is left.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            match self.tcp.try_write(&self.unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n == self.unsent.len() => self.unsent = Vec::new(),
                Ok(n) => {
                    self.unsent.drain(..n);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio_rustls::rustls::crypto::cipher::{AeadKey, Iv};

    use super::*;

    /// The two ends of one direction: what the node seals, its peer opens.
    fn pair(seq: u64) -> (Direction, Direction) {
        let secrets = || {
            let key = AeadKey::from([7u8; 32]);
            (
                seq,
                ConnectionTrafficSecrets::Aes256Gcm {
                    key,
                    iv: Iv::new([3u8; 12]),
                },
            )
        };
        (
            Direction::new(secrets()).unwrap(),
            Direction::new(secrets()).unwrap(),
        )
    }

    /// Opens every record of `sealed` with `open`; the application data, in order.
    fn open_all(open: &mut Direction, sealed: &mut [u8]) -> Vec<u8> {
        let (mut at, mut plain) = (0, Vec::new());
        while at < sealed.len() {
            let header: [u8; HEADER] = sealed[at..at + HEADER].try_into().unwrap();
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            assert_eq!(header[..3], [APPLICATION_DATA, 3, 3]);
            let record = &mut sealed[at + HEADER..at + HEADER + len];
            let (kind, content) = open.open(header, record).unwrap();
            assert_eq!(kind, APPLICATION_DATA);
            plain.extend_from_slice(content);
            at += HEADER + len;
        }
        plain
    }

    #[test]
    fn many_frames_seal_into_few_records_that_open_in_order() {
        let (mut seal, mut open) = pair(5);
        let frames: Vec<Vec<u8>> = (0..300u16)
            .map(|i| vec![i as u8; 100 + usize::from(i)])
            .collect();
        let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
        let total: usize = frames.iter().map(Vec::len).sum();
        let take = total.min(WRITE_PLAINTEXT);
        let mut sealed = seal.seal(&slices, take).unwrap();
        // Four full records at most per write, whatever the number of frames.
        assert_eq!(seal.seq, 5 + take.div_ceil(MAX_PLAINTEXT) as u64);
        let plain = open_all(&mut open, &mut sealed);
        assert_eq!(plain, frames.concat()[..take]);
        // The next write continues the sequence: the peer opens it too.
        let mut more = seal.seal(&[IoSlice::new(b"next")], 4).unwrap();
        assert_eq!(open_all(&mut open, &mut more), b"next");
    }

    #[test]
    fn a_changed_byte_or_a_skipped_record_does_not_open() {
        let (mut seal, mut open) = pair(0);
        // `one` is sealed first, never opened.
        let _one = seal.seal(&[IoSlice::new(b"one")], 3).unwrap();
        let mut two = seal.seal(&[IoSlice::new(b"two")], 3).unwrap();
        let header: [u8; HEADER] = two[..HEADER].try_into().unwrap();
        // Out of order: `two` under the nonce of `one`.
        assert!(open.open(header, &mut two[HEADER..]).is_err());
        let (mut seal, mut open) = pair(0);
        let mut again = seal.seal(&[IoSlice::new(b"one")], 3).unwrap();
        let last = again.len() - 1;
        again[last] ^= 1;
        let header: [u8; HEADER] = again[..HEADER].try_into().unwrap();
        assert!(open.open(header, &mut again[HEADER..]).is_err());
    }

    #[test]
    fn sealing_stops_at_the_key_usage_limit() {
        let (mut seal, mut open) = pair(SEAL_LIMIT - 1);
        let mut last = seal.seal(&[IoSlice::new(b"last")], 4).unwrap();
        assert_eq!(open_all(&mut open, &mut last), b"last");
        let refused = seal.seal(&[IoSlice::new(b"over")], 4).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
    }
}

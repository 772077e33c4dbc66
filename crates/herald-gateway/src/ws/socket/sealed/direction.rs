//! One direction of the record layer: its key, IV and sequence number, sealing or opening
//! records.
//!
//! The AEAD key is expanded (ring's AES key schedule and GHASH table: 544 bytes) only while
//! the connection is in use: a quiet connection keeps the traffic secret alone and expands it
//! again for its next record ([`Direction::rest`], and the quiet mode of
//! [`super::SealedSocket`]).

use std::io::{self, IoSlice};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use tokio_rustls::rustls::ConnectionTrafficSecrets;
use zeroize::Zeroize;

use super::{invalid, APPLICATION_DATA, HEADER, MAX_PLAINTEXT, SEAL_LIMIT, TAG};

/// One direction's key, IV and sequence number.
pub(super) struct Direction {
    algorithm: &'static aead::Algorithm,
    /// The traffic key (16 or 32 bytes of it), zeroed on drop.
    secret: [u8; 32],
    /// The key expanded, while the connection is in use.
    key: Option<Box<LessSafeKey>>,
    iv: [u8; 12],
    seq: u64,
}

impl Drop for Direction {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Direction {
    pub(super) fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> io::Result<Self> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(invalid("a cipher suite the record layer does not know")),
        };
        if key.as_ref().len() != algorithm.key_len() || key.as_ref().len() > 32 {
            return Err(invalid("bad key"));
        }
        let mut secret = [0u8; 32];
        secret[..key.as_ref().len()].copy_from_slice(key.as_ref());
        let iv: [u8; 12] = iv.as_ref().try_into().map_err(|_| invalid("bad IV"))?;
        let mut direction = Self {
            algorithm,
            secret,
            key: None,
            iv,
            seq,
        };
        direction.key()?;
        Ok(direction)
    }

    /// The expanded key, made again from the secret after a rest.
    fn key(&mut self) -> io::Result<&LessSafeKey> {
        if self.key.is_none() {
            let secret = &self.secret[..self.algorithm.key_len()];
            let key = UnboundKey::new(self.algorithm, secret).map_err(|_| invalid("bad key"))?;
            self.key = Some(Box::new(LessSafeKey::new(key)));
        }
        Ok(self.key.as_deref().expect("expanded above"))
    }

    /// Drops the expanded key; the next record expands it again.
    pub(super) fn rest(&mut self) {
        self.key = None;
    }

    /// The key is expanded now.
    #[cfg(test)]
    pub(super) fn expanded(&self) -> bool {
        self.key.is_some()
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
    pub(super) fn seal(&mut self, bufs: &[IoSlice<'_>], take: usize) -> io::Result<Vec<u8>> {
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
                .key()?
                .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start + HEADER..])
                .map_err(|_| invalid("sealing failed"))?;
            out.extend_from_slice(tag.as_ref());
            left -= size;
        }
        Ok(out)
    }

    /// Opens one record in place: its content type and its content.
    pub(super) fn open<'a>(
        &mut self,
        header: [u8; HEADER],
        record: &'a mut [u8],
    ) -> io::Result<(u8, &'a [u8])> {
        let nonce = self.nonce();
        let plain = self
            .key()?
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

#[cfg(test)]
mod tests {
    use tokio_rustls::rustls::crypto::cipher::{AeadKey, Iv};

    use super::*;
    use crate::ws::socket::sealed::WRITE_PLAINTEXT;

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
    fn a_key_that_rested_seals_and_opens_on_in_sequence() {
        let (mut seal, mut open) = pair(0);
        let mut first = seal.seal(&[IoSlice::new(b"one")], 3).unwrap();
        assert_eq!(open_all(&mut open, &mut first), b"one");
        seal.rest();
        open.rest();
        assert!(!seal.expanded() && !open.expanded());
        let mut second = seal.seal(&[IoSlice::new(b"two")], 3).unwrap();
        assert!(seal.expanded());
        assert_eq!(open_all(&mut open, &mut second), b"two");
        assert_eq!((seal.seq, open.seq), (2, 2));
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

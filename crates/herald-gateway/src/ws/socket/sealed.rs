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
//! A connection that is quiet (a ping and its pong at most between two of its keep-alive
//! ticks, or nothing but its subscription since it opened) does not keep its keys expanded
//! either: each record it seals or opens expands the key again (about 0.4 µs) and lets it go
//! after; its third record in a row leaves the quiet mode.
//!
//! What a client sends besides application data and `close_notify` (a TLS 1.3 `KeyUpdate`,
//! which browsers do not send) closes the connection: the keys cannot follow it. For the same
//! reason a connection ends after [`SEAL_LIMIT`] records sent, where TLS would update its key.

mod direction;

use std::io::{self, IoSlice};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ExtractedSecrets;

use self::direction::Direction;

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

/// Records (sealed or opened, per call) that a quiet connection makes between two ticks.
const QUIET_OPS: u8 = 2;

const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;

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
    /// Calls that sealed or opened records since the last tick.
    ops: u8,
    /// While quiet, the calls since it went quiet: the keys rest after each.
    quiet: Option<u8>,
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
            ops: 0,
            // Quiet from the start: a connection that only subscribes rests at once.
            quiet: Some(0),
        })
    }

    /// The connection's keep-alive tick: a connection that made no more than a ping and its
    /// pong since the last one turns quiet.
    pub(super) fn tick(&mut self) {
        if self.ops <= QUIET_OPS {
            self.quiet = Some(0);
            self.rest();
        }
        self.ops = 0;
    }

    /// After a call that sealed or opened records.
    fn used(&mut self) {
        self.ops = self.ops.saturating_add(1);
        match self.quiet {
            Some(n) if n >= QUIET_OPS => self.quiet = None,
            Some(n) => {
                self.quiet = Some(n + 1);
                self.rest();
            }
            None => {}
        }
    }

    fn rest(&mut self) {
        self.seal.rest();
        self.open.rest();
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
        let used = if self.partial.is_empty() {
            let used = self.open_records(&mut cipher[..n], buf, &mut got)?;
            self.partial.extend_from_slice(&cipher[used..n]);
            used
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(&cipher[..n]);
            let used = self.open_records(&mut partial, buf, &mut got)?;
            partial.drain(..used);
            if !partial.is_empty() {
                self.partial = partial;
            }
            used
        };
        if used > 0 {
            self.used();
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
        self.used();
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
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::crypto::cipher::{AeadKey, Iv};

    use super::*;

    fn secrets() -> ExtractedSecrets {
        let one = || {
            (
                0,
                tokio_rustls::rustls::ConnectionTrafficSecrets::Aes256Gcm {
                    key: AeadKey::from([7u8; 32]),
                    iv: Iv::new([3u8; 12]),
                },
            )
        };
        ExtractedSecrets {
            tx: one(),
            rx: one(),
        }
    }

    #[tokio::test]
    async fn a_quiet_connection_lets_its_keys_rest_and_a_busy_one_keeps_them() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (_client, (server, _)) = (client.unwrap(), accepted.unwrap());
        let mut socket = SealedSocket::new(server, secrets(), Vec::new()).unwrap();
        let write = |s: &mut SealedSocket| s.try_write_vectored(&[IoSlice::new(b"frame")]);
        // Quiet from the start: a subscription's reply (and a ping, say) leave no key.
        for _ in 0..2 {
            write(&mut socket).unwrap();
            assert!(!socket.seal.expanded() && !socket.open.expanded());
        }
        // The third in a row: traffic; the key stays.
        write(&mut socket).unwrap();
        assert!(socket.seal.expanded());
        write(&mut socket).unwrap();
        assert!(socket.seal.expanded());
        // Busy since the last tick: it stays busy.
        socket.tick();
        assert!(socket.seal.expanded());
        // A ping and its pong's worth since: quiet again.
        write(&mut socket).unwrap();
        socket.tick();
        assert!(!socket.seal.expanded());
        assert_eq!(socket.quiet, Some(0));
    }
}

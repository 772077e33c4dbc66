//! RESP2, the Redis wire protocol: commands out, replies and pushes in.

use bytes::{Buf, Bytes, BytesMut};

/// A reply or push from Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$5\r\nhello` (`None` for the null bulk string).
    Bulk(Option<Bytes>),
    /// `*2\r\n...` (`None` for the null array).
    Array(Option<Vec<Value>>),
}

/// A reply that breaks the protocol: the connection cannot be trusted any more.
#[derive(Debug, thiserror::Error)]
#[error("malformed reply from redis: {0}")]
pub struct ProtocolError(&'static str);

/// Nested arrays deeper than this are refused (Herald's replies are at most 3 deep).
const MAX_DEPTH: usize = 8;
/// Bulk strings and arrays claiming more than this are refused.
const MAX_LEN: usize = 512 * 1024 * 1024;

/// Appends one command (an array of bulk strings) to `out`.
pub(crate) fn encode_command(out: &mut BytesMut, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Takes one complete value off the front of `buf`, or `Ok(None)` when more bytes are needed
/// (nothing is consumed then).
///
/// # Errors
/// [`ProtocolError`] when the bytes are not RESP.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<Value>, ProtocolError> {
    let mut at = 0;
    match parse_at(buf, &mut at, 0)? {
        Some(v) => {
            buf.advance(at);
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

fn line<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = &buf[*at..];
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *at += end + 2;
    Some(&rest[..end])
}

fn number(text: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(ProtocolError("bad number"))
}

fn length(text: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match number(text)? {
        -1 => Ok(None),
        n if (0..=MAX_LEN as i64).contains(&n) => Ok(Some(n as usize)),
        _ => Err(ProtocolError("bad length")),
    }
}

fn parse_at(buf: &[u8], at: &mut usize, depth: usize) -> Result<Option<Value>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("nested too deep"));
    }
    let Some(&kind) = buf.get(*at) else {
        return Ok(None);
    };
    *at += 1;
    let Some(text) = line(buf, at) else {
        return Ok(None);
    };
    let text_str = || String::from_utf8_lossy(text).into_owned();
    Ok(Some(match kind {
        b'+' => Value::Simple(text_str()),
        b'-' => Value::Error(text_str()),
        b':' => Value::Int(number(text)?),
        b'$' => match length(text)? {
            None => Value::Bulk(None),
            Some(n) => {
                if buf.len() < *at + n + 2 {
                    return Ok(None);
                }
                let data = Bytes::copy_from_slice(&buf[*at..*at + n]);
                *at += n + 2;
                Value::Bulk(Some(data))
            }
        },
        b'*' => match length(text)? {
            None => Value::Array(None),
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    match parse_at(buf, at, depth + 1)? {
                        Some(v) => items.push(v),
                        None => return Ok(None),
                    }
                }
                Value::Array(Some(items))
            }
        },
        _ => return Err(ProtocolError("unknown type byte")),
    }))
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &[b"PUBLISH", b"ch", b"hi"]);
        assert_eq!(&out[..], b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }

    #[test]
    fn parses_every_kind_and_waits_for_more() {
        let all = b"+OK\r\n-ERR no\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$0\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in all {
            buf.extend_from_slice(&[*b]);
            while let Some(v) = parse(&mut buf).unwrap() {
                got.push(v);
            }
        }
        assert_eq!(
            got,
            vec![
                Value::Simple("OK".into()),
                Value::Error("ERR no".into()),
                Value::Int(42),
                Value::Bulk(Some(Bytes::from_static(b"hello"))),
                Value::Bulk(None),
                Value::Array(Some(vec![
                    Value::Bulk(Some(Bytes::from_static(b"message"))),
                    Value::Bulk(Some(Bytes::from_static(b"c"))),
                    Value::Bulk(Some(Bytes::new())),
                ])),
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_garbage() {
        for bad in [&b"?x\r\n"[..], b":abc\r\n", b"$-5\r\n", b"*99999999999\r\n"] {
            assert!(parse(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(20);
        assert!(parse(&mut BytesMut::from(deep.as_bytes())).is_err());
    }
}

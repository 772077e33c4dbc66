//! How the hub frames what it fans out to event streams, and the chunks a stream writes of
//! its own.
//!
//! A publication's event (`event:` and `data:` lines) is encoded once and shared by every
//! stream, behind a short header naming its channel and position: each stream's writer reads
//! the header, moves its [`Cursor`](super::Cursor), and writes the event in an HTTP/1.1 chunk
//! with the stream's own `id:` line (the cursor holds every channel of the stream, so the id
//! is the stream's, not the publication's). Everything else the queue carries is written as it
//! is: complete chunks, and the response head.

use bytes::{BufMut, Bytes, BytesMut};
use herald_broker::Publication;
use herald_protocol::{presence::PresenceNotice, ChannelName, Epoch, EventName};

use crate::hub::Framing;

/// The first byte of a frame with a position header (a publication, or a position alone).
const POSITIONED: u8 = 0;
/// The first byte of the response head (written without it).
const HEAD: u8 = 1;
/// The event name of a publication without one: what `EventSource.onmessage` receives.
pub(crate) const DEFAULT_EVENT: &str = "message";
/// A keep-alive: a comment line, in a chunk.
pub(crate) static KEEPALIVE: &[u8] = b"2\r\n:\n\r\n";
/// The last chunk of a response.
pub(crate) static END: &[u8] = b"0\r\n\r\n";
/// What ends a chunk.
pub(crate) static CRLF: &[u8] = b"\r\n";

/// The event streams' encoders.
pub(crate) struct SseFraming;

impl Framing for SseFraming {
    fn publication(&self, p: &Publication) -> Option<Bytes> {
        Some(publication(
            &p.channel,
            p.epoch.as_ref(),
            p.offset,
            p.event.as_ref(),
            &p.data,
        ))
    }

    fn presence(&self, _: &ChannelName, _: &PresenceNotice) -> Option<Bytes> {
        // An event stream is never a presence member, and hears no joins or leaves.
        None
    }

    fn gap(
        &self,
        channel: &ChannelName,
        reason: &str,
        missing: Option<(u64, u64)>,
        epoch: Option<&Epoch>,
    ) -> Option<Bytes> {
        Some(gap(channel, reason, missing, epoch))
    }
}

/// A publication's frame: its position header, then its event.
pub(crate) fn publication(
    channel: &ChannelName,
    epoch: Option<&Epoch>,
    offset: Option<u64>,
    event: Option<&EventName>,
    data: &[u8],
) -> Bytes {
    let name = event.map_or(DEFAULT_EVENT, EventName::as_str);
    let mut out = header(channel, epoch, offset, 16 + name.len() + data.len());
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_u8(b'\n');
    put_data(&mut out, data);
    out.put_u8(b'\n');
    out.freeze()
}

/// A frame that only moves the stream's cursor: `channel` stands at `offset` of `epoch`.
pub(crate) fn position(channel: &ChannelName, epoch: Option<&Epoch>, offset: u64) -> Bytes {
    header(channel, epoch, Some(offset), 0).freeze()
}

fn header(
    channel: &ChannelName,
    epoch: Option<&Epoch>,
    offset: Option<u64>,
    more: usize,
) -> BytesMut {
    let name = channel.as_str().as_bytes();
    let epoch = epoch.map_or(&b""[..], |e| e.as_str().as_bytes());
    let mut out = BytesMut::with_capacity(13 + name.len() + epoch.len() + more);
    out.put_u8(POSITIONED);
    out.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.put_slice(name);
    out.put_u8(u8::try_from(epoch.len()).unwrap_or(u8::MAX));
    out.put_slice(epoch);
    out.put_u8(u8::from(offset.is_some()));
    out.put_u64_le(offset.unwrap_or(0));
    out
}

/// `data:` lines: one per line of `data` (JSON may span lines; a line break of any kind ends
/// a line, as SSE parsers read them).
fn put_data(out: &mut BytesMut, data: &[u8]) {
    let mut rest = data;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        out.put_slice(b"data: ");
        out.put_slice(&rest[..end]);
        out.put_u8(b'\n');
        if end == rest.len() {
            return;
        }
        let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

/// What a positioned frame says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Positioned<'a> {
    pub(crate) channel: &'a [u8],
    pub(crate) epoch: Option<&'a [u8]>,
    pub(crate) offset: Option<u64>,
    /// Where the event starts (the frame's length: a position alone).
    pub(crate) event_at: usize,
}

/// What a frame of the queue is.
pub(crate) enum Kind<'a> {
    /// A publication, or a position alone.
    Positioned(Positioned<'a>),
    /// The response head, from this index on.
    Head(usize),
    /// Bytes to write as they are.
    Raw,
}

/// Reads a frame's kind.
pub(crate) fn kind(frame: &[u8]) -> Kind<'_> {
    match frame.first() {
        Some(&POSITIONED) => positioned(frame).map_or(Kind::Raw, Kind::Positioned),
        Some(&HEAD) => Kind::Head(1),
        _ => Kind::Raw,
    }
}

fn positioned(frame: &[u8]) -> Option<Positioned<'_>> {
    let name_len = usize::from(*frame.get(1)?);
    let channel = frame.get(2..2 + name_len)?;
    let at = 2 + name_len;
    let epoch_len = usize::from(*frame.get(at)?);
    let epoch = frame.get(at + 1..at + 1 + epoch_len)?;
    let at = at + 1 + epoch_len;
    let has_offset = *frame.get(at)? == 1;
    let offset = u64::from_le_bytes(frame.get(at + 1..at + 9)?.try_into().ok()?);
    Some(Positioned {
        channel,
        epoch: (!epoch.is_empty()).then_some(epoch),
        offset: has_offset.then_some(offset),
        event_at: at + 9,
    })
}

/// Marks `head` as the response head.
pub(crate) fn head(head: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + head.len());
    out.put_u8(HEAD);
    out.put_slice(head);
    out.freeze()
}

/// `text` as one HTTP/1.1 chunk.
pub(crate) fn chunk(text: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 12);
    put_chunk_size(&mut out, text.len());
    out.put_slice(text);
    out.put_slice(CRLF);
    out.freeze()
}

/// A chunk's size line.
pub(crate) fn put_chunk_size(out: &mut BytesMut, len: usize) {
    put_number(out, len as u64, 16);
    out.put_slice(CRLF);
}

/// `n` in `radix` (10 or 16, lower case), without the formatting machinery: a stream writes
/// one or two of these per event.
pub(crate) fn put_number(out: &mut BytesMut, mut n: u64, radix: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = DIGITS[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&buf[at..]);
}

/// An event of Herald's own (`gap`, `close`): its name and a JSON object, in a chunk.
pub(crate) fn event(name: &str, data: &serde_json::Value) -> Bytes {
    let mut text = BytesMut::new();
    text.put_slice(b"event: ");
    text.put_slice(name.as_bytes());
    text.put_u8(b'\n');
    put_data(&mut text, data.to_string().as_bytes());
    text.put_u8(b'\n');
    chunk(&text)
}

/// The `gap` event: publications of `channel` were missed.
pub(crate) fn gap(
    channel: &ChannelName,
    reason: &str,
    missing: Option<(u64, u64)>,
    epoch: Option<&Epoch>,
) -> Bytes {
    let mut data = serde_json::json!({"channel": channel.as_str(), "reason": reason});
    if let Some((from, to)) = missing {
        data["missing"] = serde_json::json!({"from": from, "to": to});
    }
    if let Some(epoch) = epoch {
        data["epoch"] = epoch.as_str().into();
    }
    event("gap", &data)
}

/// The `close` event a stream ends with: why, and whether to reconnect.
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    let reconnect = herald_protocol::close::should_reconnect(code);
    event(
        "close",
        &serde_json::json!({"code": code, "reason": reason, "reconnect": reconnect}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    #[test]
    fn a_publication_is_a_header_and_an_event_with_one_data_line_per_line() {
        let epoch = Epoch::parse("e1").unwrap();
        let frame = publication(
            &channel("news"),
            Some(&epoch),
            Some(7),
            None,
            b"{\"a\":\n1,\r\n\"b\":\r2}",
        );
        let Kind::Positioned(p) = kind(&frame) else {
            panic!("a positioned frame");
        };
        assert_eq!(p.channel, b"news");
        assert_eq!(p.epoch, Some(&b"e1"[..]));
        assert_eq!(p.offset, Some(7));
        assert_eq!(
            &frame[p.event_at..],
            b"event: message\ndata: {\"a\":\ndata: 1,\ndata: \"b\":\ndata: 2}\n\n"
        );
        let named = EventName::parse("price").unwrap();
        let frame = publication(&channel("news"), None, None, Some(&named), b"3");
        let Kind::Positioned(p) = kind(&frame) else {
            panic!("a positioned frame");
        };
        assert_eq!((p.epoch, p.offset), (None, None));
        assert_eq!(&frame[p.event_at..], b"event: price\ndata: 3\n\n");
    }

    #[test]
    fn chunks_and_events_are_framed_for_http_1_1() {
        assert_eq!(
            &chunk(b"0123456789abcdefg")[..],
            b"11\r\n0123456789abcdefg\r\n"
        );
        let gap = gap(&channel("a"), "lost", Some((2, 5)), None);
        let text = std::str::from_utf8(&gap).unwrap();
        assert!(text.ends_with("\n\n\r\n"), "{text}");
        assert!(text.contains("event: gap\ndata: {"), "{text}");
        assert!(text.contains("\"missing\":{\"from\":2,\"to\":5}"), "{text}");
        assert!(matches!(kind(&gap), Kind::Raw));
        assert!(matches!(
            kind(&head(b"HTTP/1.1 200 OK\r\n\r\n")),
            Kind::Head(1)
        ));
    }
}

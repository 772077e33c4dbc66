//! Where an event stream stands in each of its channels: the `id` of its events, which the
//! browser sends back as `Last-Event-ID` when it reconnects.
//!
//! The id lists one entry per channel of the stream, in the order the request named them,
//! separated by `,`: `<epoch>:<offset>` for a channel at that position, `0` for a channel
//! that had no publication yet when the stream started (everything of its sequence is
//! after it), and nothing for a channel whose position is unknown (its namespace keeps no
//! history: nothing can be recovered).

use bytes::{BufMut, BytesMut};
use herald_protocol::{ChannelName, Epoch, Position};

/// Where a stream stands in one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Unknown: nothing to recover from.
    Unknown,
    /// Before the channel's first publication.
    Start,
    /// At a position.
    At(Position),
}

/// Why an id was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CursorError {
    #[error("the event id names {given} positions; the stream has {channels} channels")]
    Count { given: usize, channels: usize },
    #[error("bad position {0:?} in the event id: expected <epoch>:<offset>, 0, or nothing")]
    Entry(String),
}

/// Reads an id (`Last-Event-ID` or `?since=`) for a stream of `channels` channels.
///
/// # Errors
/// [`CursorError`] when it has another number of entries or an entry is not a position.
pub(crate) fn parse(text: &str, channels: usize) -> Result<Vec<Mark>, CursorError> {
    let entries: Vec<&str> = text.split(',').collect();
    if entries.len() != channels {
        return Err(CursorError::Count {
            given: entries.len(),
            channels,
        });
    }
    entries
        .into_iter()
        .map(|entry| {
            let entry = entry.trim();
            let bad = || CursorError::Entry(entry.chars().take(80).collect());
            match entry {
                "" => Ok(Mark::Unknown),
                "0" => Ok(Mark::Start),
                _ => {
                    let (epoch, offset) = entry.split_once(':').ok_or_else(bad)?;
                    let epoch = Epoch::parse(epoch).map_err(|_| bad())?;
                    let offset = offset.parse().map_err(|_| bad())?;
                    Ok(Mark::At(Position { offset, epoch }))
                }
            }
        })
        .collect()
}

/// A stream's position in each of its channels.
pub(crate) struct Cursor {
    /// Each channel, where it stands, and whether that is kept (the channel keeps history).
    channels: Vec<(ChannelName, Mark, bool)>,
}

impl Cursor {
    /// `channels` with where each stands, and whether its position is kept (a channel that
    /// keeps no history stays [`Mark::Unknown`]).
    pub(crate) fn new(channels: Vec<(ChannelName, Mark, bool)>) -> Self {
        Self { channels }
    }

    /// `channel` now stands at `offset` of `epoch` (of no epoch: before its first
    /// publication, when `offset` is 0).
    pub(crate) fn set(&mut self, channel: &[u8], epoch: Option<&[u8]>, offset: u64) {
        let Some((_, mark, true)) = self
            .channels
            .iter_mut()
            .find(|(c, _, _)| c.as_str().as_bytes() == channel)
        else {
            return;
        };
        // The same epoch as before (nearly always): the offset moves, nothing is allocated.
        if let (Mark::At(p), Some(epoch)) = (&mut *mark, epoch) {
            if p.epoch.as_str().as_bytes() == epoch {
                p.offset = offset;
                return;
            }
        }
        let epoch = epoch
            .and_then(|e| std::str::from_utf8(e).ok())
            .and_then(|e| Epoch::parse(e).ok());
        *mark = match (epoch, offset) {
            (Some(epoch), offset) => Mark::At(Position { offset, epoch }),
            (None, 0) => Mark::Start,
            (None, _) => Mark::Unknown,
        };
    }

    /// Appends the id.
    pub(crate) fn put(&self, out: &mut BytesMut) {
        for (i, (_, mark, _)) in self.channels.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            match mark {
                Mark::Unknown => {}
                Mark::Start => out.put_u8(b'0'),
                Mark::At(p) => {
                    out.put_slice(p.epoch.as_str().as_bytes());
                    out.put_u8(b':');
                    super::framing::put_number(out, p.offset, 10);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, offset: u64) -> Mark {
        Mark::At(Position {
            offset,
            epoch: Epoch::parse(epoch).unwrap(),
        })
    }

    #[test]
    fn an_id_is_read_back_as_it_was_written() {
        let names = ["a", "b", "c"].map(|n| ChannelName::parse(n).unwrap());
        let kept = names
            .into_iter()
            .map(|c| (c, Mark::Unknown, true))
            .collect();
        let mut cursor = Cursor::new(kept);
        cursor.set(b"a", Some(b"k3x9"), 12);
        cursor.set(b"c", None, 0);
        cursor.set(b"elsewhere", Some(b"zz"), 1);
        let mut id = BytesMut::new();
        cursor.put(&mut id);
        assert_eq!(&id[..], b"k3x9:12,,0");
        assert_eq!(
            parse("k3x9:12,,0", 3).unwrap(),
            [at("k3x9", 12), Mark::Unknown, Mark::Start]
        );
    }

    #[test]
    fn ids_that_do_not_fit_the_stream_are_refused() {
        assert_eq!(
            parse("k3x9:12", 2),
            Err(CursorError::Count {
                given: 1,
                channels: 2
            })
        );
        for bad in ["k3x9", "k3x9:", ":4", "k-3:1", "e:-1", "e:1:2"] {
            assert!(matches!(parse(bad, 1), Err(CursorError::Entry(_))), "{bad}");
        }
    }
}

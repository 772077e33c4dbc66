//! What an event stream writes: each frame of its queue becomes a unit (one HTTP/1.1 chunk,
//! or the response head), written many per syscall. A publication's unit is the stream's own
//! chunk head and `id:` line, then the event's shared bytes, then the chunk's end.

use std::io::{self, IoSlice};

use bytes::{BufMut, Bytes};

use super::{EventStream, WRITES_PER_WAKE};
use crate::sse::framing::{self, Kind};

/// Bytes of chunk heads made at once.
const SCRATCH: usize = 1024;
/// Slices per write syscall at most.
const SLICES_PER_WRITE: usize = 64;

/// One chunk (or the head): up to three parts, written in order.
pub(super) struct Unit {
    parts: [Bytes; 3],
}

impl Unit {
    /// Bytes written as they are.
    pub(super) fn raw(bytes: Bytes) -> Self {
        Self {
            parts: [bytes, Bytes::new(), Bytes::new()],
        }
    }

    fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }
}

impl EventStream {
    /// Makes `frame` a unit to write; a publication moves the cursor first.
    pub(super) fn unit(&mut self, frame: Bytes) {
        let p = match framing::kind(&frame) {
            Kind::Raw => return self.writing.push_back(Unit::raw(frame)),
            Kind::Head(at) => {
                self.started = true;
                return self.writing.push_back(Unit::raw(frame.slice(at..)));
            }
            Kind::Positioned(p) => p,
        };
        let event = frame.slice(p.event_at..);
        let Some(offset) = p.offset else {
            // Not sequenced: no position to give.
            if !event.is_empty() {
                self.writing.push_back(Unit::raw(framing::chunk(&event)));
            }
            return;
        };
        self.cursor.set(p.channel, p.epoch, offset);
        // `id: <cursor>\n`, and a blank line when the frame is a position alone (an event
        // with an id and no data moves the browser's last event id, and is not dispatched).
        let id = &mut self.id_line;
        id.clear();
        id.put_slice(b"id: ");
        self.cursor.put(id);
        id.put_u8(b'\n');
        if event.is_empty() {
            id.put_u8(b'\n');
        }
        let s = &mut self.scratch;
        if s.capacity() < id.len() + 16 {
            // Shared by the next few units' heads: one allocation for many.
            s.reserve(SCRATCH.max(id.len() + 16));
        }
        framing::put_chunk_size(s, id.len() + event.len());
        s.put_slice(id);
        let head = s.split().freeze();
        self.writing.push_back(Unit {
            parts: [head, event, Bytes::from_static(framing::CRLF)],
        });
    }
}

impl EventStream {
    /// Writes as much as the socket takes now, many units per syscall, refilling from the
    /// queue as it empties.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self.socket.flush_pending() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            other => other?,
        }
        for _ in 0..WRITES_PER_WAKE {
            if self.writing.is_empty() && self.ending.is_none() {
                self.take();
            }
            if self.writing.is_empty() {
                // An idle stream keeps no buffers.
                self.writing = Default::default();
                self.scratch = Default::default();
                self.id_line = Default::default();
                return Ok(());
            }
            let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
            let mut count = 0;
            let mut skip = self.written;
            'units: for unit in &self.writing {
                for part in &unit.parts {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    if count == SLICES_PER_WRITE {
                        break 'units;
                    }
                    slices[count] = IoSlice::new(&part[skip..]);
                    skip = 0;
                    count += 1;
                }
            }
            match self.socket.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let units = self.advance(n);
                    let metrics = &self.ctx.metrics;
                    metrics.socket_writes.inc();
                    metrics.bytes_written.add(n as u64);
                    metrics.frames_written.add(units);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops `n` written bytes off the front; returns how many units were completed.
    fn advance(&mut self, mut n: usize) -> u64 {
        let mut completed = 0;
        while n > 0 {
            let left = self.writing[0].len() - self.written;
            if n >= left {
                n -= left;
                self.writing.pop_front();
                self.written = 0;
                completed += 1;
            } else {
                self.written += n;
                n = 0;
            }
        }
        completed
    }
}

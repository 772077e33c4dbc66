//! A channel's history: its recent publications, kept by the broker within bounds, and read
//! back from a position.

use std::time::Duration;

use herald_protocol::Epoch;

use crate::Publication;

/// How much of a channel's history to keep: at most `size` publications (0: none), each for
/// `ttl` at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryKeep {
    /// Publications kept at most (0: no history).
    pub size: u32,
    /// How long one is kept.
    pub ttl: Duration,
}

impl HistoryKeep {
    /// Whether any history is kept.
    pub fn is_on(&self) -> bool {
        self.size > 0 && !self.ttl.is_zero()
    }
}

/// What to read of a channel's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only publications after this offset (of the current epoch); `None`: from the oldest
    /// kept (or the newest, with `reverse`).
    pub since: Option<u64>,
    /// At most this many publications.
    pub limit: usize,
    /// Newest first.
    pub reverse: bool,
    /// Publications older than this are not returned (the channel's `history_ttl`: a history
    /// that a busy channel keeps alive holds older ones until they are trimmed).
    pub max_age: Duration,
    /// Only the latest this many publications count as kept (the channel's `history_size`:
    /// Redis trims a stream approximately, and may hold a few more).
    pub window: u32,
}

/// A channel's history as read: where its stream stands, and the publications asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The offset of the channel's latest publication (0: none yet in this epoch).
    pub offset: u64,
    /// The epoch of the channel's sequence; `None` when the channel has never been published
    /// to (or its sequence is gone).
    pub epoch: Option<Epoch>,
    /// The publications, in the order asked for.
    pub publications: Vec<Publication>,
}

/// Picks from `kept` (oldest first) what `query` asks, `top` being the latest offset.
pub(crate) fn select<'a>(
    kept: impl DoubleEndedIterator<Item = &'a Publication>,
    query: &HistoryQuery,
    top: u64,
    now_us: u64,
) -> Vec<Publication> {
    let floor = top.saturating_sub(u64::from(query.window));
    let max_age = u64::try_from(query.max_age.as_micros()).unwrap_or(u64::MAX);
    let fresh = |p: &&Publication| {
        p.published_at_us
            .is_none_or(|at| now_us.saturating_sub(at) <= max_age)
    };
    let after = |p: &&Publication| match p.offset {
        Some(offset) => offset > query.since.unwrap_or(0).max(floor),
        None => true,
    };
    if query.reverse {
        kept.rev()
            .filter(fresh)
            .filter(after)
            .take(query.limit)
            .cloned()
            .collect()
    } else {
        kept.filter(fresh)
            .filter(after)
            .take(query.limit)
            .cloned()
            .collect()
    }
}

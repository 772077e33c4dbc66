//! Recovery: a subscriber that comes back from a position gets what it missed from history,
//! then what arrived live while history was read, each publication once and in offset order.
//!
//! While the history is read, the channel's live frames wait (with their offsets). [`merge`]
//! puts the two together: the history's publications after the position, then the live
//! frames that the history did not already hold. Frames without an offset (notices, or
//! publications that bypassed sequencing) keep their place among the live ones.

/// What [`merge`] makes of a history read and the live frames held meanwhile.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged<T> {
    /// What the subscriber receives, in order.
    pub frames: Vec<T>,
    /// The offset of the last publication among them (or the position's, when none).
    pub last: u64,
    /// Some publication between the position and the first one delivered is missing: the
    /// history no longer held it.
    pub gap: bool,
    /// The first run of missing offsets, `from` to `to` (both included), when some are.
    pub hole: Option<(u64, u64)>,
}

/// Merges the history read after position `since` (`history`: offsets ascending, each above
/// `since`) with the `live` frames held while it was read (in arrival order).
pub fn merge<T>(since: u64, history: Vec<(u64, T)>, live: Vec<(Option<u64>, T)>) -> Merged<T> {
    let mut frames = Vec::with_capacity(history.len() + live.len());
    let mut last = since;
    let mut hole = None;
    for (offset, frame) in history {
        if offset <= last {
            // Out of order or repeated: the history's promise was broken; keep it once.
            continue;
        }
        if offset > last + 1 {
            hole = hole.or(Some((last + 1, offset - 1)));
        }
        last = offset;
        frames.push(frame);
    }
    for (offset, frame) in live {
        match offset {
            None => frames.push(frame),
            Some(offset) if offset <= last => {}
            Some(offset) => {
                if offset > last + 1 {
                    hole = hole.or(Some((last + 1, offset - 1)));
                }
                last = offset;
                frames.push(frame);
            }
        }
    }
    Merged {
        frames,
        last,
        gap: hole.is_some(),
        hole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_then_live_once_each_in_order() {
        // Missed 41..=43; 43 and 44 arrived live while the history was read.
        let history = vec![(41, "h41"), (42, "h42"), (43, "h43")];
        let live = vec![(Some(43), "l43"), (Some(44), "l44")];
        let m = merge(40, history, live);
        assert_eq!(m.frames, ["h41", "h42", "h43", "l44"]);
        assert_eq!((m.last, m.gap), (44, false));
    }

    #[test]
    fn notices_keep_their_place_among_live_frames() {
        let live = vec![(Some(5), "l5"), (None, "gap"), (Some(6), "l6")];
        let m = merge(4, vec![], live);
        assert_eq!(m.frames, ["l5", "gap", "l6"]);
        assert!(!m.gap);
    }

    #[test]
    fn a_hole_is_reported_not_hidden() {
        let m = merge(10, vec![(13, "h13")], vec![]);
        assert!(m.gap, "11 and 12 are missing");
        assert_eq!(m.hole, Some((11, 12)));
        let m = merge(10, vec![(11, "h11")], vec![(Some(14), "l14")]);
        assert_eq!((m.frames.len(), m.gap), (2, true));
    }

    #[test]
    fn nothing_missed_delivers_only_what_is_new() {
        let m = merge(7, vec![], vec![(Some(7), "old"), (Some(8), "l8")]);
        assert_eq!(m.frames, ["l8"]);
        assert_eq!((m.last, m.gap), (8, false));
        let m: Merged<&str> = merge(7, vec![], vec![]);
        assert_eq!((m.frames.len(), m.last, m.gap), (0, 7, false));
    }

    #[test]
    fn repeated_history_entries_count_once() {
        let m = merge(1, vec![(2, "a"), (2, "b"), (3, "c")], vec![]);
        assert_eq!(m.frames, ["a", "c"]);
    }
}

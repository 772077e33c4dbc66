//! The W3C trace context that rides with a sampled publication from the node it was published
//! on to every node that delivers it.

use std::fmt;

/// A validated W3C `traceparent` value: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
/// lowercase, with neither id all zeros.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceParent(Box<str>);

impl TraceParent {
    /// Length of a version-00 `traceparent`.
    pub const LEN: usize = 55;

    /// Parses a `traceparent`; `None` when it is not a valid version-00 value (as the W3C
    /// specification asks, a receiver then starts a new trace rather than refusing anything).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != Self::LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let zeros = |s: &[u8]| s.iter().all(|&c| c == b'0');
        let (version, trace, parent, flags) = (&b[..2], &b[3..35], &b[36..52], &b[53..]);
        let valid = version == b"00"
            && hex(trace)
            && hex(parent)
            && hex(flags)
            && !zeros(trace)
            && !zeros(parent);
        valid.then(|| Self(text.into()))
    }

    /// The value, as it goes into a header or the envelope.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.0[53..], 16).unwrap_or(0)
    }

    /// The parent span id, 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.0[36..52]
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_valid_values_only() {
        let good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let t = TraceParent::parse(good).unwrap();
        assert_eq!(t.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(t.parent_id(), "b7ad6b7169203331");
        assert_eq!(t.as_str(), good);
        assert_eq!(t.flags(), 1);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
            "00-0af7651916cd43dd8448eb211c8031é-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}

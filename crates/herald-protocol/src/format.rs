//! Wire formats a subscriber can speak.

/// The encoding of a connection's frames, chosen by WebSocket subprotocol at the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// `herald.v1.json`: JSON in text frames. The default when a client asks for no subprotocol.
    Json,
    /// `herald.v1.msgpack`: MessagePack maps of the same shape, in binary frames.
    MsgPack,
}

impl WireFormat {
    /// Every format, in the order of [`WireFormat::index`].
    pub const ALL: [WireFormat; 2] = [WireFormat::Json, WireFormat::MsgPack];

    /// The WebSocket subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            WireFormat::Json => "herald.v1.json",
            WireFormat::MsgPack => "herald.v1.msgpack",
        }
    }

    /// The format named by a subprotocol, if Herald speaks it.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.subprotocol() == name)
    }

    /// A dense index, for per-format caches of encoded frames.
    pub fn index(self) -> usize {
        self as usize
    }
}

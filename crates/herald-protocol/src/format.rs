//! Wire formats a subscriber can speak.

/// The encoding of a connection's frames, chosen by WebSocket subprotocol at the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// `herald.v1.json`: JSON in text frames. The default when a client asks for no subprotocol.
    Json,
    /// `herald.v1.msgpack`: MessagePack maps of the same shape, in binary frames.
    MsgPack,
    /// The Pusher Channels protocol (connections on `/app/{key}`), encoded by `herald-pusher`.
    /// Herald's own frames are never written to these connections; this crate's encoders
    /// and decoders treat it as JSON.
    Pusher,
    /// Server-Sent Events (`GET /v1/sse`): publications as `text/event-stream` events, framed
    /// by the gateway. Nothing is read from these streams; this crate's encoders treat it as
    /// JSON.
    Sse,
}

impl WireFormat {
    /// Every format, in the order of [`WireFormat::index`].
    pub const ALL: [WireFormat; 4] = [
        WireFormat::Json,
        WireFormat::MsgPack,
        WireFormat::Pusher,
        WireFormat::Sse,
    ];

    /// Herald's own protocol's formats, negotiated by subprotocol.
    pub const NATIVE: [WireFormat; 2] = [WireFormat::Json, WireFormat::MsgPack];

    /// The WebSocket subprotocol name (Pusher's and SSE's are never negotiated).
    pub fn subprotocol(self) -> &'static str {
        match self {
            WireFormat::Json => "herald.v1.json",
            WireFormat::MsgPack => "herald.v1.msgpack",
            WireFormat::Pusher => "pusher",
            WireFormat::Sse => "sse",
        }
    }

    /// The native format named by a subprotocol, if Herald speaks it.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::NATIVE.into_iter().find(|f| f.subprotocol() == name)
    }

    /// A dense index, for per-format caches of encoded frames.
    pub fn index(self) -> usize {
        self as usize
    }
}

//! A connection's session: the one interface the socket loop (`ws`) calls, whatever protocol
//! the connection speaks. Each protocol's session lives in its own room (`native`, `pusher`).

use std::time::Duration;

use bytes::Bytes;
use herald_protocol::WireFormat;

use crate::{
    native,
    peer::{Close, Env, Peer},
    pusher,
};

/// A connection's protocol state.
pub(crate) enum Session {
    /// Herald's own protocol, in JSON or MessagePack.
    Native(native::Session),
    /// The Pusher Channels protocol.
    Pusher(Box<pusher::Session>),
    /// A Pusher connection refused as it opened (an unknown key, a protocol version Herald
    /// does not speak): it is closing, and reads nothing more.
    Refused,
}

impl Session {
    /// Handles a text frame's message.
    pub(crate) async fn on_text(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        payload: Bytes,
    ) -> Option<Close> {
        match self {
            Self::Native(s) => {
                s.on_request(env, peer, WireFormat::Json, payload).await;
                None
            }
            Self::Pusher(s) => s.on_text(env, peer, payload).await,
            Self::Refused => None,
        }
    }

    /// Handles a binary frame's message.
    pub(crate) async fn on_binary(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        payload: Bytes,
    ) -> Option<Close> {
        match self {
            Self::Native(s) => s.on_request(env, peer, WireFormat::MsgPack, payload).await,
            Self::Pusher(s) => s.on_binary(peer),
            Self::Refused => {}
        }
        None
    }

    /// When the connection's token expires (Unix seconds), if it does.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        match self {
            Self::Native(s) => s.standing().expires_at,
            _ => None,
        }
    }

    /// How long until the connection's token expires, if it does.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        match self {
            Self::Native(s) => s.standing().remaining(),
            _ => None,
        }
    }

    /// Whether the connection may be a member of presence channels, which it leaves when it
    /// ends.
    pub(crate) fn may_be_member(&self) -> bool {
        match self {
            Self::Native(s) => s.may_be_member(),
            Self::Pusher(s) => s.may_be_member(),
            Self::Refused => false,
        }
    }

    /// The user its token names (native connections: the server API finds them by it).
    pub(crate) fn user(&self) -> Option<&herald_presence_core::UserId> {
        match self {
            Self::Native(s) => s.user(),
            _ => None,
        }
    }

    /// Leaves `channels` as the server API asked: a native client is told with an
    /// `unsubscribed` notice per channel; a Pusher client, whose protocol has no such
    /// notice, stops receiving them.
    pub(crate) async fn leave(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        channels: Vec<herald_protocol::ChannelName>,
    ) {
        match self {
            Self::Native(s) => s.leave(env, peer, channels).await,
            Self::Pusher(s) => s.leave(env, peer, channels).await,
            Self::Refused => {}
        }
    }

    /// The close of a connection whose user the app terminated.
    pub(crate) fn terminated(&self) -> Close {
        pusher::terminated()
    }

    /// The close code the client gets where Herald's protocol says `herald`.
    pub(crate) fn close_code(&self, herald: u16) -> u16 {
        match self {
            Self::Native(_) => herald,
            Self::Pusher(_) | Self::Refused => pusher::close_code(herald),
        }
    }
}

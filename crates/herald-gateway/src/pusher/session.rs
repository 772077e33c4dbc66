//! A Pusher connection's session: its app, socket id, signed-in user and presence
//! memberships, and the dispatch of its messages (one file per kind beside this one).

use bytes::Bytes;
use herald_presence_core::UserId;
use herald_protocol::ChannelName;
use herald_pusher::{
    message::{self, ClientMessage},
    SocketId,
};

use super::{channel::herald_channel, frame, Refusal};
use crate::{
    config::PusherApp,
    ctx::AppSlot,
    peer::{Close, Env, Peer},
};

/// What a Pusher connection carries besides its socket.
pub(crate) struct Session {
    /// Index of its app in `pusher.apps`.
    pub(crate) app: usize,
    /// The id it was given.
    pub(crate) socket_id: SocketId,
    /// The user it signed in as (`pusher:signin`).
    pub(super) user: Option<String>,
    /// Its place under the app's `max_connections`.
    slot: Option<AppSlot>,
    /// Its presence channels, and the member it is in each.
    pub(super) presence: Vec<(ChannelName, UserId)>,
}

impl Session {
    pub(super) fn new(app: usize, socket_id: SocketId) -> Self {
        Self {
            app,
            socket_id,
            user: None,
            slot: None,
            presence: Vec::new(),
        }
    }

    /// Holds one of its app's connection slots until the connection ends.
    pub(crate) fn hold(&mut self, slot: AppSlot) {
        self.slot = Some(slot);
    }

    /// `pusher:connection_established`, the first frame of the connection.
    pub(crate) fn established(&self, activity_timeout: u64) -> Bytes {
        frame(&message::connection_established(
            &self.socket_id.to_string(),
            activity_timeout,
        ))
    }

    /// Leaves `channel`, and its presence when it is a member there.
    async fn leave_one(&mut self, env: &impl Env, peer: &mut Peer, channel: ChannelName) {
        peer.subscribed.retain(|c| *c != channel);
        let at = self.presence.iter().position(|(c, _)| *c == channel);
        let member = at.map(|at| self.presence.swap_remove(at).1);
        env.unsubscribe(peer.id, channel, member).await;
    }

    /// Leaves those of `channels` it is subscribed to (the server API's unsubscribe).
    pub(crate) async fn leave(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        channels: Vec<ChannelName>,
    ) {
        for channel in channels {
            if peer.subscribed.contains(&channel) {
                self.leave_one(env, peer, channel).await;
            }
        }
    }

    /// Whether the connection may be a member of presence channels.
    pub(crate) fn may_be_member(&self) -> bool {
        !self.presence.is_empty()
    }

    /// The connection's app.
    pub(super) fn app<'a>(&self, env: &'a impl Env) -> &'a PusherApp {
        &env.config().pusher.apps[self.app]
    }

    /// Handles one text message; a close the connection must start, if any.
    pub(crate) async fn on_text(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        payload: Bytes,
    ) -> Option<Close> {
        let decoded = std::str::from_utf8(&payload)
            .map_err(|_| Refusal::error("messages are UTF-8 text"))
            .and_then(|text| {
                ClientMessage::decode(text).map_err(|e| Refusal::error(e.to_string()))
            });
        let message = match decoded {
            Ok(m) => m,
            Err(refusal) => {
                env.metrics().bad_requests.inc();
                send(peer, &refusal.frame(""));
                return None;
            }
        };
        match message {
            ClientMessage::Ping => send(peer, &frame(message::pong())),
            ClientMessage::Pong => {}
            ClientMessage::Subscribe {
                channel,
                auth,
                channel_data,
            } => {
                let refused = self
                    .subscribe(
                        env,
                        peer,
                        &channel,
                        auth.as_deref(),
                        channel_data.as_deref(),
                    )
                    .await;
                if let Err(refusal) = refused {
                    send(peer, &refusal.frame(channel.as_str()));
                }
            }
            ClientMessage::Unsubscribe { channel } => {
                let max_len = env.config().limits.max_channel_length;
                if let Ok(name) = herald_channel(&channel, max_len) {
                    self.leave_one(env, peer, name).await;
                }
            }
            ClientMessage::Signin { auth, user_data } => {
                if let Err(refusal) = self.signin(env, peer, &auth, &user_data).await {
                    send(peer, &refusal.frame(""));
                    let Refusal::Error { code, message } = refusal else {
                        return None;
                    };
                    return Some(Close::Wire {
                        code: code.unwrap_or(herald_pusher::codes::UNAUTHORIZED),
                        reason: message.into_owned(),
                    });
                }
            }
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => {
                let sent = self
                    .client_event(env, peer, &event, &channel, data.get())
                    .await;
                if let Err(refusal) = sent {
                    send(peer, &refusal.frame(channel.as_str()));
                }
            }
        }
        None
    }

    /// A binary frame: not part of the protocol.
    pub(crate) fn on_binary(&self, peer: &Peer) {
        let refusal = Refusal::error("binary frames are not part of the Pusher protocol");
        send(peer, &refusal.frame(""));
    }
}

/// Queues a frame; a full queue evicts the connection, which the socket loop then closes.
pub(super) fn send(peer: &Peer, frame: &Bytes) {
    peer.outbound.push_frame(frame);
}

//! A native connection's session: who it is, what its token allows, and the dispatch of its
//! requests (one file per request kind beside this one). Replies go through the outbound
//! queue, in order with pushes.

use bytes::Bytes;
use herald_protocol::{
    client::{ClientRequest, Command},
    server::{self, ChannelFailure},
    ChannelName, WireFormat,
};

use crate::{
    auth::{Identity, Standing},
    config::NamespaceConfig,
    peer::{Env, Peer},
    refusal::Refusal,
};

/// What a native connection carries besides its socket.
pub(crate) struct Session {
    /// The format its frames are written in.
    pub(super) format: WireFormat,
    /// Who the client said it is when connecting.
    pub(super) identity: Option<Identity>,
    /// What its token allows, and until when; `None` for a connection without a token (most
    /// connections of an open node: nothing allocated).
    standing: Option<Box<Standing>>,
}

impl Session {
    pub(crate) fn new(format: WireFormat, identity: Option<Identity>, standing: Standing) -> Self {
        Self {
            format,
            identity,
            standing: standing.boxed(),
        }
    }

    /// The connection's standing (anonymous when it has no token).
    pub(crate) fn standing(&self) -> &Standing {
        static ANONYMOUS: Standing = Standing::anonymous();
        self.standing.as_deref().unwrap_or(&ANONYMOUS)
    }

    pub(super) fn set_standing(&mut self, standing: Standing) {
        self.standing = standing.boxed();
    }

    /// The user it connected as, if any.
    pub(crate) fn user(&self) -> Option<&herald_presence_core::UserId> {
        self.identity.as_ref().map(|i| &i.user)
    }

    /// Whether the connection may be a member of presence channels (it has a user).
    pub(crate) fn may_be_member(&self) -> bool {
        self.identity.is_some()
    }

    /// Decodes and answers one request, in `frame_format` (text frames are JSON, binary ones
    /// MessagePack).
    pub(crate) async fn on_request(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        frame_format: WireFormat,
        payload: Bytes,
    ) {
        let request = match ClientRequest::decode(frame_format, &payload) {
            Ok(r) => r,
            Err(e) => {
                env.metrics().bad_requests.inc();
                let refusal = Refusal::new(herald_protocol::ErrorCode::BadRequest, e.to_string());
                return self.refuse(peer, e.id, &refusal);
            }
        };
        let id = request.id;
        match request.command {
            Command::Subscribe {
                channels,
                token,
                recover,
            } => {
                self.subscribe(env, peer, id, channels, token.as_deref(), recover)
                    .await;
            }
            Command::Unsubscribe { channels } => self.unsubscribe(env, peer, id, channels).await,
            Command::Publish { channel, data } => {
                self.publish(env, peer, id, &channel, data).await;
            }
            Command::Presence { channel } => self.presence(env, peer, id, &channel, false).await,
            Command::PresenceStats { channel } => {
                self.presence(env, peer, id, &channel, true).await;
            }
            Command::Refresh { token } => self.refresh(env, peer, id, &token),
            Command::History(request) => self.history(env, peer, id, request).await,
        }
    }

    pub(super) fn reply(&self, peer: &Peer, frame: &Bytes) {
        // A full queue evicts the connection; the socket loop notices and closes it.
        peer.outbound.push_frame(frame);
    }

    /// The error reply of request `id`.
    pub(super) fn refuse(&self, peer: &Peer, id: Option<u64>, refusal: &Refusal) {
        let frame = server::reply_error(self.format, id, refusal.code, &refusal.reason);
        self.reply(peer, &frame);
    }
}

/// Splits names into valid channels (deduplicated, each with its namespace's options) and
/// failures.
pub(super) fn check_all(
    env: &impl Env,
    names: Vec<String>,
) -> (Vec<(ChannelName, NamespaceConfig)>, Vec<ChannelFailure>) {
    let mut valid: Vec<(ChannelName, NamespaceConfig)> = Vec::with_capacity(names.len());
    let mut failed = Vec::new();
    for name in names {
        match env.config().check_channel(&name) {
            Ok((channel, ns)) if !valid.iter().any(|(c, _)| *c == channel) => {
                valid.push((channel, *ns));
            }
            Ok(_) => {}
            Err(refusal) => failed.push(failure(name, refusal)),
        }
    }
    (valid, failed)
}

/// A channel's refusal in a subscribe or unsubscribe reply.
pub(super) fn failure(channel: impl Into<String>, refusal: Refusal) -> ChannelFailure {
    ChannelFailure::new(channel, refusal.code, refusal.reason.into_owned())
}

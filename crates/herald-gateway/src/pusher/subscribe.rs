//! `pusher:subscribe`: public channels, private and presence channels with a signed
//! authorization, cache channels, and a signed-in user's own channel.

use bytes::Bytes;
use herald_presence_core::UserId;
use herald_protocol::ChannelName;
use herald_pusher::{message::ChannelData, signature, ChannelKind, PusherChannel};

use super::{answer::Subscribed, channel::herald_channel, Refusal, Session};
use crate::{
    auth::Identity,
    hub::SubscribeRequest,
    peer::{Env, Peer},
    presence::Membership,
};

impl Session {
    pub(super) async fn subscribe(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        channel: &PusherChannel,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<(), Refusal> {
        let presence = channel.kind() == ChannelKind::Presence;
        if let Some(user) = channel.user() {
            if self.user.as_deref() != Some(user) {
                return Err(Refusal::subscription(
                    "AuthError",
                    403,
                    "a user's channel is for the connections signed in as that user",
                ));
            }
        }
        if presence && channel_data.is_none() {
            return Err(Refusal::subscription(
                "AuthError",
                401,
                "presence channels need channel_data, signed with the channel",
            ));
        }
        if channel.needs_auth() {
            let app = self.app(env);
            // Presence authorizations sign the member's data too; private ones do not.
            let text = signature::channel_auth_text(
                &self.socket_id.to_string(),
                channel.as_str(),
                channel_data.filter(|_| presence),
            );
            let checked = auth
                .ok_or(signature::AuthError::Malformed)
                .and_then(|auth| signature::verify_auth(&app.key, &app.secret, &text, auth));
            if let Err(e) = checked {
                env.metrics().families.auth_failures.inc("signature");
                let text = format!("Invalid signature: {e}");
                return Err(Refusal::subscription("AuthError", 401, text));
            }
        }
        let max_len = env.config().limits.max_channel_length;
        let name = herald_channel(channel, max_len)
            .map_err(|e| Refusal::subscription("SubscriptionError", 400, e.to_string()))?;
        let max = env.config().limits.max_subscriptions;
        if !peer.claim_subscription(&name, max, env.metrics()) {
            let text = format!("at most {max} subscriptions per connection");
            return Err(Refusal::subscription("LimitReached", 429, text));
        }
        let membership = match (presence, channel_data) {
            (true, Some(data)) => Some(self.member(env, peer, &name, data)?),
            _ => None,
        };
        let cache = channel.is_cache().then(|| env.default_event().clone());
        // A presence or cache channel is answered after a read: its frames wait in a hold
        // until then.
        let held = membership.is_some() || cache.is_some();
        let answer = Box::new(Subscribed { cache });
        let request = SubscribeRequest::new(
            peer.outbound.clone(),
            1,
            Vec::new(),
            membership,
            held,
            answer,
        );
        peer.subscribe(env, name, &request).await;
        Ok(())
    }

    /// The member a presence subscription enters as, from its signed `channel_data`.
    fn member(
        &mut self,
        env: &impl Env,
        peer: &Peer,
        channel: &ChannelName,
        data: &str,
    ) -> Result<Membership, Refusal> {
        let refuse = |text: String| Refusal::subscription("SubscriptionError", 400, text);
        let data = ChannelData::parse(data).map_err(|e| refuse(e.to_string()))?;
        let user = UserId::parse(&data.user_id).map_err(|e| refuse(format!("user_id: {e}")))?;
        let max = env.config().presence.max_info_size;
        if data.user_info.len() > max {
            return Err(refuse(format!("user_info over {max} bytes")));
        }
        if !self.presence.iter().any(|(c, _)| c == channel) {
            self.presence.push((channel.clone(), user.clone()));
        }
        Ok(Membership {
            conn: peer.id,
            identity: Identity {
                user,
                info: Bytes::from(data.user_info),
            },
            channels: vec![channel.clone()],
        })
    }
}

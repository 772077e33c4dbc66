//! `pusher:signin`: the app's server signed `user_data` (with an `id`) for this socket.

use herald_pusher::{codes, message, signature, PusherChannel};

use super::{answer::ServerMade, channel::herald_channel, frame, session::send, Refusal, Session};
use crate::{
    hub::SubscribeRequest,
    peer::{Env, Peer},
};

impl Session {
    /// Signs the connection in, once the user's channel (events for the user, and its
    /// termination) is subscribed. A refusal is a `pusher:error` 4009, and the connection
    /// closes with it, as Pusher's does.
    pub(super) async fn signin(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        auth: &str,
        user_data: &str,
    ) -> Result<(), Refusal> {
        let refuse = |text: String| {
            env.metrics().families.auth_failures.inc("signature");
            Refusal::coded(codes::UNAUTHORIZED, text)
        };
        let app = self.app(env);
        let text = signature::signin_text(&self.socket_id.to_string(), user_data);
        signature::verify_auth(&app.key, &app.secret, &text, auth)
            .map_err(|e| refuse(format!("invalid signin: {e}")))?;
        let id =
            message::user_id(user_data).ok_or_else(|| refuse("user_data needs an id".into()))?;
        let max_len = env.config().limits.max_channel_length;
        let channel = PusherChannel::server_to_user(&id)
            .map_err(|e| refuse(format!("user id: {e}")))
            .and_then(|c| {
                herald_channel(&c, max_len).map_err(|e| refuse(format!("user id: {e}")))
            })?;
        self.user = Some(id);
        // Signed in once the user's channel is subscribed: events sent to the user from then
        // on reach this connection.
        let success = frame(&message::signin_success(user_data));
        if peer.subscribed.contains(&channel) {
            send(peer, &success);
        } else {
            peer.subscribed.push(channel.clone());
            let answer = Box::new(ServerMade(success));
            let request =
                SubscribeRequest::new(peer.outbound.clone(), 1, Vec::new(), None, false, answer);
            peer.subscribe(env, channel, &request).await;
        }
        Ok(())
    }
}

//! `presence` and `presence_stats`: who is in a presence channel, cluster-wide, and how many.

use herald_protocol::{
    server::{self, ReplyOk},
    ErrorCode,
};

use super::session::Session;
use crate::{
    peer::{Env, Peer},
    refusal::Refusal,
};

impl Session {
    pub(super) async fn presence(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        name: &str,
        stats: bool,
    ) {
        let channel = match env.config().check_channel(name) {
            Ok((channel, ns)) if ns.presence => channel,
            Ok(_) => {
                let refusal = Refusal::new(ErrorCode::PermissionDenied, "not a presence channel");
                return self.refuse(peer, Some(id), &refusal);
            }
            Err(refusal) => return self.refuse(peer, Some(id), &refusal),
        };
        let frame = if stats {
            env.member_count(&channel).await.map(|count| {
                let ok = ReplyOk::PresenceStats {
                    channel: channel.as_str(),
                    count,
                };
                server::reply_ok(self.format, id, &ok)
            })
        } else {
            env.members(&channel).await.map(|members| {
                let ok = ReplyOk::Presence {
                    channel: channel.as_str(),
                    members: &members,
                };
                server::reply_ok(self.format, id, &ok)
            })
        };
        match frame {
            Ok(frame) => self.reply(peer, &frame),
            Err(e) => {
                let refusal = Refusal::new(ErrorCode::Unavailable, e.to_string());
                self.refuse(peer, Some(id), &refusal);
            }
        }
    }

    /// Replaces the connection's token: same user, new expiry and grants. A refused token
    /// leaves the connection as it was.
    pub(super) fn refresh(&mut self, env: &impl Env, peer: &Peer, id: u64, token: &str) {
        match env.auth().refresh(token, self.identity.as_ref()) {
            Ok(standing) => {
                let expires_at = standing.expires_at;
                self.set_standing(standing);
                let ok = ReplyOk::Refresh { expires_at };
                self.reply(peer, &server::reply_ok(self.format, id, &ok));
            }
            Err(denied) => {
                if let Some(reason) = denied.reason {
                    env.metrics().families.auth_failures.inc(reason);
                }
                self.refuse(peer, Some(id), &denied.refusal);
            }
        }
    }
}

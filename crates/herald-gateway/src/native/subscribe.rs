//! `subscribe` and `unsubscribe`.

use herald_protocol::{
    server::{self, ReplyOk},
    ErrorCode, WireFormat,
};

use super::session::{check_all, failure, Session};
use crate::{
    auth::may_subscribe,
    hub::{Answer, Settled, SubscribeRequest},
    peer::{Env, Peer},
    presence::Membership,
    refusal::Refusal,
};

/// Answers a subscribe request once its channels settled: one reply with every outcome.
struct Reply {
    id: u64,
    format: WireFormat,
}

impl Answer for Reply {
    fn answer(&self, settled: Settled<'_>) {
        let frame = server::reply_ok(
            self.format,
            self.id,
            &ReplyOk::Subscribe {
                subscribed: settled.subscribed,
                failed: settled.failed,
            },
        );
        // The connection reads no further request until this reply is queued.
        settled.sink.push_reply(&frame);
    }
}

impl Session {
    pub(super) async fn subscribe(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        names: Vec<String>,
        token: Option<&str>,
    ) {
        let (mut valid, mut failed) = check_all(env, names);
        let granted = match token {
            Some(token) => env.auth().channel_grant(token, self.identity.as_ref()),
            None => Ok(Vec::new()),
        };
        if let Err(denied) = &granted {
            if let Some(reason) = denied.reason {
                env.metrics().families.auth_failures.inc(reason);
            }
        }
        let max = env.config().limits.max_subscriptions;
        valid.retain(|(channel, ns)| {
            let allowed = may_subscribe(ns.subscribe, self.standing(), channel, &granted)
                .and_then(|()| match self.identity {
                    None if ns.presence => Err(Refusal::new(
                        ErrorCode::Unauthorized,
                        "presence channels need a user: connect with a token (or with ?user= on \
                         a node without auth.keys)",
                    )),
                    _ => Ok(()),
                })
                .and_then(|()| {
                    if peer.claim_subscription(channel, max, env.metrics()) {
                        Ok(())
                    } else {
                        Err(Refusal::new(
                            ErrorCode::LimitExceeded,
                            format!("at most {max} subscriptions per connection"),
                        ))
                    }
                });
            match allowed {
                Ok(()) => true,
                Err(refusal) => {
                    failed.push(failure(channel.as_str(), refusal));
                    false
                }
            }
        });
        if valid.is_empty() {
            let ok = ReplyOk::Subscribe {
                subscribed: &[],
                failed: &failed,
            };
            return self.reply(peer, &server::reply_ok(self.format, id, &ok));
        }
        let membership = self.identity.as_ref().map(|identity| Membership {
            conn: peer.id,
            identity: identity.clone(),
            channels: valid
                .iter()
                .filter(|(_, ns)| ns.presence)
                .map(|(c, _)| c.clone())
                .collect(),
        });
        let membership = membership.filter(|m| !m.channels.is_empty());
        // Replies (and what requests do, such as presence joins and leaves) follow the order
        // of the requests: the next one waits until this reply is queued.
        peer.outbound.await_reply();
        let answer = Box::new(Reply {
            id,
            format: self.format,
        });
        let request = SubscribeRequest::new(
            peer.outbound.clone(),
            valid.len(),
            failed,
            membership,
            false,
            answer,
        );
        for (channel, _) in valid {
            peer.subscribe(env, channel, &request).await;
        }
    }

    /// Unsubscribes, and replies once every shard involved has handled it: the connection then
    /// receives none of those channels' frames, and is a member of none of them, before its
    /// next request.
    pub(super) async fn unsubscribe(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        names: Vec<String>,
    ) {
        let (valid, failed) = check_all(env, names);
        let names: Vec<String> = valid.iter().map(|(c, _)| c.to_string()).collect();
        let mut shards: u64 = 0;
        for (channel, ns) in valid {
            shards |= crate::hub::Hub::shard_bit(env.shard_index(&channel));
            peer.subscribed.retain(|c| *c != channel);
            let member = match (ns.presence, &self.identity) {
                (true, Some(identity)) => Some(identity.user.clone()),
                _ => None,
            };
            env.unsubscribe(peer.id, channel, member).await;
        }
        env.sync(shards).await;
        let ok = ReplyOk::Unsubscribe {
            unsubscribed: &names,
            failed: &failed,
        };
        self.reply(peer, &server::reply_ok(self.format, id, &ok));
    }
}

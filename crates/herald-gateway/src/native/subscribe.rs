//! `subscribe` and `unsubscribe`.

use herald_broker::HistoryQuery;
use herald_protocol::{
    server::{self, Recovered, ReplyOk},
    ErrorCode, Position,
};

use super::{
    history,
    recover::{Recovering, Reply},
    session::{check_all, failure, Session},
};
use crate::{
    auth::may_subscribe,
    config::NamespaceConfig,
    hub::SubscribeRequest,
    peer::{Env, Peer},
    presence::Membership,
    refusal::Refusal,
};

impl Session {
    pub(super) async fn subscribe(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        names: Vec<String>,
        token: Option<&str>,
        recover: Vec<(String, Position)>,
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
        let (recovering, refused) = recovery(&valid, recover);
        if valid.is_empty() {
            let ok = ReplyOk::Subscribe {
                subscribed: &[],
                failed: &failed,
                recovery: &refused,
                positions: &[],
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
        let position = positioned(&valid, &recovering);
        let holds = recovering
            .iter()
            .map(|r| r.channel.clone())
            .chain(position.iter().map(|(c, _)| c.clone()))
            .collect();
        let answer = Box::new(Reply {
            id,
            format: self.format,
            recover: recovering,
            position,
            refused,
        });
        let request = SubscribeRequest::new(
            peer.outbound.clone(),
            valid.len(),
            failed,
            membership,
            false,
            answer,
        )
        .recovering(holds);
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

    /// Leaves those of `channels` the connection is subscribed to, as the server API asked,
    /// and tells the client with an `unsubscribed` notice for each.
    pub(crate) async fn leave(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        channels: Vec<herald_protocol::ChannelName>,
    ) {
        let mut shards: u64 = 0;
        let mut left = Vec::new();
        for channel in channels {
            if !peer.subscribed.contains(&channel) || left.contains(&channel) {
                continue;
            }
            shards |= crate::hub::Hub::shard_bit(env.shard_index(&channel));
            peer.subscribed.retain(|c| *c != channel);
            let presence = env
                .config()
                .namespace_of(&channel)
                .is_ok_and(|ns| ns.presence);
            let member = match (presence, &self.identity) {
                (true, Some(identity)) => Some(identity.user.clone()),
                _ => None,
            };
            env.unsubscribe(peer.id, channel.clone(), member).await;
            left.push(channel);
        }
        if left.is_empty() {
            return;
        }
        env.sync(shards).await;
        for channel in &left {
            peer.outbound
                .push_frame(&server::unsubscribed(self.format, channel));
        }
    }
}

/// The channels whose position the reply gives: those that keep history and do not recover
/// (a recovery outcome carries the position), each with the read that finds it.
fn positioned(
    valid: &[(herald_protocol::ChannelName, NamespaceConfig)],
    recovering: &[Recovering],
) -> Vec<(herald_protocol::ChannelName, HistoryQuery)> {
    valid
        .iter()
        .filter(|(c, _)| !recovering.iter().any(|r| r.channel == *c))
        .filter_map(|(c, ns)| Some((c.clone(), history::query(ns, Some(0), None, false).ok()?)))
        .collect()
}

/// Splits the positions a subscribe asked to recover from into the channels that will recover
/// and the outcomes of those that cannot (no history, not subscribed by the request).
fn recovery(
    valid: &[(herald_protocol::ChannelName, NamespaceConfig)],
    recover: Vec<(String, Position)>,
) -> (Vec<Recovering>, Vec<Recovered>) {
    let (mut recovering, mut refused) = (Vec::new(), Vec::new());
    for (name, since) in recover {
        let refuse = |reason: &str| Recovered {
            channel: name.clone(),
            recovered: false,
            reason: Some(reason.to_owned()),
            offset: 0,
            epoch: None,
        };
        let Some((channel, ns)) = valid.iter().find(|(c, _)| c.as_str() == name) else {
            refused.push(refuse("not among the channels this request subscribed"));
            continue;
        };
        match history::query(ns, None, Some(&since), false) {
            Ok(query) => recovering.push(Recovering {
                channel: channel.clone(),
                since,
                query,
            }),
            Err(refusal) => refused.push(refuse(&refusal.reason)),
        }
    }
    (recovering, refused)
}

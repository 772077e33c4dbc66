//! The native protocol's requests: subscribe, unsubscribe, publish, presence queries, token
//! refresh.

use bytes::Bytes;
use herald_protocol::{
    client::{ClientRequest, Command},
    server::{self, ChannelFailure, ReplyOk},
    ChannelName, ErrorCode, WireFormat,
};

use super::connection::Connection;
use crate::{
    auth::may_subscribe,
    config::NamespaceConfig,
    hub::{Hub, SubscribeRequest},
    presence::Membership,
    telemetry::PublishPath,
};

impl Connection {
    /// Decodes and answers one request. Replies go through the outbound queue, in order with
    /// pushes.
    pub(super) async fn on_request(&mut self, frame_format: WireFormat, payload: Bytes) {
        let request = match ClientRequest::decode(frame_format, &payload) {
            Ok(r) => r,
            Err(e) => {
                self.ctx.metrics.bad_requests.inc();
                self.reply_error(e.id, ErrorCode::BadRequest, &e.to_string());
                return;
            }
        };
        match request.command {
            Command::Subscribe { channels, token } => {
                self.subscribe(request.id, channels, token.as_deref()).await;
            }
            Command::Unsubscribe { channels } => self.unsubscribe(request.id, channels).await,
            Command::Publish { channel, data } => self.publish(request.id, &channel, data).await,
            Command::Presence { channel } => self.presence(request.id, &channel, false).await,
            Command::PresenceStats { channel } => self.presence(request.id, &channel, true).await,
            Command::Refresh { token } => self.refresh(request.id, &token),
        }
    }

    fn reply(&self, frame: &Bytes) {
        // A full queue evicts the connection; the loop notices and closes it.
        self.outbound.push_frame(frame);
    }

    fn reply_error(&self, id: Option<u64>, code: ErrorCode, message: &str) {
        self.reply(&server::reply_error(self.format, id, code, message));
    }

    /// Splits names into valid channels (deduplicated, each with its namespace's options) and
    /// failures.
    fn check_all(
        &self,
        names: Vec<String>,
    ) -> (Vec<(ChannelName, NamespaceConfig)>, Vec<ChannelFailure>) {
        let mut valid: Vec<(ChannelName, NamespaceConfig)> = Vec::with_capacity(names.len());
        let mut failed = Vec::new();
        for name in names {
            match self.ctx.check_channel(&name) {
                Ok((channel, ns)) if !valid.iter().any(|(c, _)| *c == channel) => {
                    valid.push((channel, *ns));
                }
                Ok(_) => {}
                Err((code, message)) => failed.push(ChannelFailure::new(name, code, message)),
            }
        }
        (valid, failed)
    }

    async fn subscribe(&mut self, id: u64, names: Vec<String>, token: Option<&str>) {
        let (mut valid, mut failed) = self.check_all(names);
        let granted = match token {
            Some(token) => self.ctx.auth.channel_grant(token, self.identity.as_ref()),
            None => Ok(Vec::new()),
        };
        if let Err((_, reason)) = &granted {
            self.ctx.metrics.families.auth_failures.inc(reason);
        }
        valid.retain(|(channel, ns)| {
            let allowed =
                may_subscribe(ns.subscribe, self.session(), channel, &granted).and_then(|()| {
                    match self.identity {
                        None if ns.presence => Err((
                            ErrorCode::Unauthorized,
                            "presence channels need a user: connect with a token (or with ?user= on a node \
                         without auth.keys)"
                            .into(),
                        )),
                        _ => Ok(()),
                    }
                });
            let allowed = allowed.and_then(|()| {
                if self.subscribed.contains(channel) {
                    return Ok(());
                }
                let max = self.ctx.config.limits.max_subscriptions;
                if self.subscribed.len() >= max {
                    self.ctx.metrics.families.limit_hits.inc("max_subscriptions");
                    return Err((
                        ErrorCode::LimitExceeded,
                        format!("at most {max} subscriptions per connection"),
                    ));
                }
                self.subscribed.push(channel.clone());
                Ok(())
            });
            match allowed {
                Ok(()) => true,
                Err((code, message)) => {
                    failed.push(ChannelFailure::new(channel.as_str(), code, message));
                    false
                }
            }
        });
        let membership = self.identity.as_ref().map(|identity| Membership {
            presence: self.ctx.presence.clone(),
            conn: self.id,
            identity: identity.clone(),
            channels: valid
                .iter()
                .filter(|(_, ns)| ns.presence)
                .map(|(c, _)| c.clone())
                .collect(),
        });
        let membership = membership.filter(|m| !m.channels.is_empty());
        let request =
            SubscribeRequest::new(id, self.outbound.clone(), valid.len(), failed, membership);
        for (channel, _) in valid {
            self.shards |= Hub::shard_bit(self.ctx.hub.shard_index(&channel));
            self.ctx.hub.subscribe(self.id, channel, &request).await;
        }
    }

    /// Unsubscribes, and replies once every shard involved has handled it: the connection then
    /// receives none of those channels' frames, and is a member of none of them, before its
    /// next request.
    async fn unsubscribe(&mut self, id: u64, names: Vec<String>) {
        let (valid, failed) = self.check_all(names);
        let names: Vec<String> = valid.iter().map(|(c, _)| c.to_string()).collect();
        let mut shards: u64 = 0;
        for (channel, ns) in valid {
            shards |= Hub::shard_bit(self.ctx.hub.shard_index(&channel));
            self.subscribed.retain(|c| *c != channel);
            let member = match (ns.presence, &self.identity) {
                (true, Some(identity)) => Some(identity.user.clone()),
                _ => None,
            };
            self.ctx.hub.unsubscribe(self.id, channel, member).await;
        }
        let hub = &self.ctx.hub;
        for shard in hub.shards_in(shards) {
            hub.sync(shard).await;
        }
        let ok = ReplyOk::Unsubscribe {
            unsubscribed: &names,
            failed: &failed,
        };
        self.reply(&server::reply_ok(self.format, id, &ok));
    }

    async fn publish(&mut self, id: u64, name: &str, data: Bytes) {
        let (channel, namespace) = match self.ctx.check_channel(name) {
            Ok(found) => found,
            Err((code, message)) => return self.reply_error(Some(id), code, &message),
        };
        if !namespace.publish {
            return self.reply_error(
                Some(id),
                ErrorCode::PermissionDenied,
                "clients may not publish in this namespace",
            );
        }
        if let Err((code, message)) = self.ctx.check_depth(&data) {
            self.ctx.metrics.families.limit_hits.inc("max_json_depth");
            return self.reply_error(Some(id), code, &message);
        }
        let rate = self.ctx.config.limits.publish_rate;
        if !self.take_publish_token(rate) {
            return self.reply_error(
                Some(id),
                ErrorCode::LimitExceeded,
                &format!("at most {rate} publications per second per connection"),
            );
        }
        match self
            .ctx
            .publish(channel, data, PublishPath::Client, None, Default::default())
            .await
        {
            Ok(published) => {
                let ok = ReplyOk::Publish {
                    message_id: published.id.to_string(),
                    offset: published.offset,
                };
                self.reply(&server::reply_ok(self.format, id, &ok));
            }
            Err(e) => self.reply_error(Some(id), crate::broker_error_code(&e), &e.to_string()),
        }
    }

    async fn presence(&mut self, id: u64, name: &str, stats: bool) {
        let channel = match self.ctx.check_channel(name) {
            Ok((channel, ns)) if ns.presence => channel,
            Ok(_) => {
                return self.reply_error(
                    Some(id),
                    ErrorCode::PermissionDenied,
                    "not a presence channel",
                )
            }
            Err((code, message)) => return self.reply_error(Some(id), code, &message),
        };
        let presence = &self.ctx.presence;
        let frame = if stats {
            presence.count(&channel).await.map(|count| {
                let ok = ReplyOk::PresenceStats {
                    channel: channel.as_str(),
                    count,
                };
                server::reply_ok(self.format, id, &ok)
            })
        } else {
            presence.members(&channel).await.map(|members| {
                let ok = ReplyOk::Presence {
                    channel: channel.as_str(),
                    members: &members,
                };
                server::reply_ok(self.format, id, &ok)
            })
        };
        match frame {
            Ok(frame) => self.reply(&frame),
            Err(e) => self.reply_error(Some(id), ErrorCode::Unavailable, &e.to_string()),
        }
    }

    /// Replaces the connection's token: same user, new expiry and grants. A refused token
    /// leaves the connection as it was.
    fn refresh(&mut self, id: u64, token: &str) {
        match self.ctx.auth.refresh(token, self.identity.as_ref()) {
            Ok(session) => {
                let expires_at = session.expires_at;
                self.set_session(session);
                self.reply(&server::reply_ok(
                    self.format,
                    id,
                    &ReplyOk::Refresh { expires_at },
                ));
            }
            Err((code, message, reason)) => {
                if let Some(reason) = reason {
                    self.ctx.metrics.families.auth_failures.inc(reason);
                }
                self.reply_error(Some(id), code, &message);
            }
        }
    }
}

//! The messages of a Pusher connection: pings, subscriptions with signed authorizations, and
//! clear errors for what this node does not serve.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ChannelName, ConnAddress, EventName};
use herald_pusher::{
    codes,
    message::{self, ClientMessage},
    signature,
    webhook::{self, EventKind},
    ChannelKind, PusherChannel,
};

use super::connection::Connection;
use herald_presence_core::UserId;
use herald_pusher::message::ChannelData;

use crate::{
    auth::Identity,
    hub::{Hub, SubscribeRequest},
    presence::Membership,
    telemetry::PublishPath,
};

impl Connection {
    /// Handles one text message of a Pusher client.
    pub(super) async fn on_pusher(&mut self, payload: Bytes) {
        let decoded = std::str::from_utf8(&payload)
            .map_err(|_| "messages are UTF-8 text".to_owned())
            .and_then(|text| ClientMessage::decode(text).map_err(|e| e.to_string()));
        let message = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.ctx.metrics.bad_requests.inc();
                return self.pusher_error(None, &e);
            }
        };
        match message {
            ClientMessage::Ping => self.pusher_send(message::pong()),
            ClientMessage::Pong => {}
            ClientMessage::Subscribe {
                channel,
                auth,
                channel_data,
            } => {
                self.pusher_subscribe(channel, auth.as_deref(), channel_data.as_deref())
                    .await;
            }
            ClientMessage::Unsubscribe { channel } => {
                let max_len = self.ctx.config.limits.max_channel_length;
                if let Ok(name) = crate::pusher::herald_channel(&channel, max_len) {
                    self.subscribed.retain(|c| *c != name);
                    let member = self.pusher.as_mut().and_then(|p| {
                        let at = p.presence.iter().position(|(c, _)| *c == name)?;
                        Some(p.presence.swap_remove(at).1)
                    });
                    self.ctx.hub.unsubscribe(self.id, name, member).await;
                }
            }
            ClientMessage::Signin { auth, user_data } => self.signin(&auth, &user_data).await,
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(&event, &channel, data.get()).await,
        }
    }

    pub(super) fn pusher_error(&self, code: Option<u16>, text: &str) {
        self.pusher_send(&message::error(code, text));
    }

    fn pusher_send(&self, text: &str) {
        self.outbound.push_frame(&crate::pusher::frame(text));
    }

    /// `pusher:signin`: the app's server signed `user_data` (with an `id`) for this socket.
    /// A refusal closes the connection with 4009, as Pusher does.
    async fn signin(&mut self, auth: &str, user_data: &str) {
        let Some(conn) = self.pusher.as_ref() else {
            return;
        };
        let app = crate::pusher::app(&self.ctx.config.pusher, conn);
        let text = signature::signin_text(&conn.socket_id.to_string(), user_data);
        let checked = signature::verify_auth(&app.key, &app.secret, &text, auth)
            .map_err(|e| format!("invalid signin: {e}"))
            .and_then(|()| {
                message::user_id(user_data).ok_or_else(|| "user_data needs an id".to_owned())
            });
        let max_len = self.ctx.config.limits.max_channel_length;
        let checked = checked.and_then(|id| {
            // The user's channel: events for the user, and its termination.
            let channel = PusherChannel::server_to_user(&id)
                .map_err(|e| e.to_string())
                .and_then(|c| crate::pusher::herald_channel(&c, max_len))
                .map_err(|e| format!("user id: {e}"))?;
            Ok((id, channel))
        });
        match checked {
            Ok((id, channel)) => {
                if let Some(conn) = self.pusher.as_mut() {
                    conn.user = Some(id);
                }
                // Signed in once the user's channel is subscribed: events sent to the user
                // from then on reach this connection.
                let success = crate::pusher::frame(&message::signin_success(user_data));
                if self.subscribed.contains(&channel) {
                    self.outbound.push_frame(&success);
                } else {
                    self.subscribed.push(channel.clone());
                    let request = SubscribeRequest::server_made(self.outbound.clone(), success);
                    self.shards |= Hub::shard_bit(self.ctx.hub.shard_index(&channel));
                    self.ctx.hub.subscribe(self.id, channel, &request).await;
                }
            }
            Err(text) => {
                self.ctx.metrics.families.auth_failures.inc("signature");
                self.pusher_error(Some(codes::UNAUTHORIZED), &text);
                self.start_close_as(codes::UNAUTHORIZED, &text);
            }
        }
    }

    /// Relays a `client-` event to the channel's other subscribers, cluster-wide.
    async fn client_event(&mut self, event: &str, channel: &PusherChannel, data: &str) {
        let app = self.pusher.as_ref().map(|c| c.app);
        if !app.is_some_and(|a| self.ctx.config.pusher.apps[a].client_events) {
            return self.pusher_error(
                None,
                "client events are not enabled for this app (client_events in its pusher.apps entry)",
            );
        }
        if !channel.allows_client_events() {
            return self.pusher_error(
                None,
                "client events are allowed on private and presence channels only",
            );
        }
        let max_len = self.ctx.config.limits.max_channel_length;
        let Ok(name) = crate::pusher::herald_channel(channel, max_len) else {
            return self.pusher_error(None, "invalid channel name");
        };
        if !self.subscribed.contains(&name) {
            return self.pusher_error(None, "subscribe to the channel before sending on it");
        }
        let Ok(event) = EventName::parse(event) else {
            return self.pusher_error(None, "event names are 1 to 200 bytes");
        };
        let Some(conn) = self.pusher.as_ref() else {
            return;
        };
        // The app's own limits, where it has them.
        let (app, pusher) = (
            &self.ctx.config.pusher.apps[conn.app],
            &self.ctx.config.pusher,
        );
        let max = app.max_event_size.unwrap_or(pusher.max_event_size);
        let rate = app.client_event_rate.unwrap_or(pusher.client_event_rate);
        if data.len() > max {
            return self.pusher_error(None, &format!("data over {max} bytes"));
        }
        if let Err((_, message)) = self.ctx.check_depth(data.as_bytes()) {
            self.ctx.metrics.families.limit_hits.inc("max_json_depth");
            return self.pusher_error(None, &message);
        }
        // On a presence channel, receivers learn who sent it (Pusher's `user_id`).
        let user = conn
            .presence
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, u)| u.as_str().to_owned());
        // The `client_event` webhook, sent once the event is published.
        let hook = self
            .ctx
            .webhooks
            .as_ref()
            .filter(|h| h.wants(EventKind::ClientEvent))
            .map(|_| {
                webhook::Event::client_event(
                    channel.as_str(),
                    event.as_str(),
                    data,
                    &conn.socket_id.to_string(),
                    user.as_deref(),
                )
            });
        if !self.take_publish_token(rate) {
            let text = format!("client event rejected: at most {rate} per second");
            return self.pusher_error(Some(codes::CLIENT_EVENT_RATE_LIMIT), &text);
        }
        let meta = PublishMeta {
            event: Some(event),
            exclude: Some(ConnAddress {
                node: self.ctx.node_id.tag(),
                conn: self.id,
            }),
            user,
            ..Default::default()
        };
        let data = Bytes::copy_from_slice(data.as_bytes());
        let published = self
            .ctx
            .publish(name, data, PublishPath::Client, None, meta)
            .await;
        match published {
            Ok(_) => {
                if let (Some(hooks), Some(hook)) = (&self.ctx.webhooks, hook) {
                    hooks.emit(hook);
                }
            }
            Err(e) => self.pusher_error(None, &format!("client event not sent: {e}")),
        }
    }

    async fn pusher_subscribe(
        &mut self,
        channel: PusherChannel,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) {
        let Some(conn) = self.pusher.as_ref() else {
            return;
        };
        let refuse = |this: &Self, kind: &str, text: &str, status: u16| {
            let frame = message::subscription_error(channel.as_str(), kind, text, status);
            this.pusher_send(&frame);
        };
        let presence = channel.kind() == ChannelKind::Presence;
        if let Some(user) = channel.user() {
            if conn.user.as_deref() != Some(user) {
                return refuse(
                    self,
                    "AuthError",
                    "a user's channel is for the connections signed in as that user",
                    403,
                );
            }
        }
        if presence && channel_data.is_none() {
            return refuse(
                self,
                "AuthError",
                "presence channels need channel_data, signed with the channel",
                401,
            );
        }
        if channel.needs_auth() {
            let app = crate::pusher::app(&self.ctx.config.pusher, conn);
            // Presence authorizations sign the member's data too; private ones do not.
            let text = signature::channel_auth_text(
                &conn.socket_id.to_string(),
                channel.as_str(),
                channel_data.filter(|_| presence),
            );
            let checked = auth
                .ok_or(signature::AuthError::Malformed)
                .and_then(|auth| signature::verify_auth(&app.key, &app.secret, &text, auth));
            if let Err(e) = checked {
                self.ctx.metrics.families.auth_failures.inc("signature");
                return refuse(self, "AuthError", &format!("Invalid signature: {e}"), 401);
            }
        }
        let max_len = self.ctx.config.limits.max_channel_length;
        let name = match crate::pusher::herald_channel(&channel, max_len) {
            Ok(name) => name,
            Err(e) => return refuse(self, "SubscriptionError", &e, 400),
        };
        if !self.subscribed.contains(&name) {
            let max = self.ctx.config.limits.max_subscriptions;
            if self.subscribed.len() >= max {
                self.ctx
                    .metrics
                    .families
                    .limit_hits
                    .inc("max_subscriptions");
                let text = format!("at most {max} subscriptions per connection");
                return refuse(self, "LimitReached", &text, 429);
            }
            self.subscribed.push(name.clone());
        }
        let membership = match (presence, channel_data) {
            (true, Some(data)) => match self.presence_member(&name, data) {
                Ok(m) => Some(m),
                Err(text) => return refuse(self, "SubscriptionError", &text, 400),
            },
            _ => None,
        };
        let cache = channel.is_cache().then(|| crate::pusher::PusherCache {
            broker: self.ctx.broker.clone(),
            default_event: self.ctx.pusher_event.clone(),
        });
        let request = SubscribeRequest::pusher(self.outbound.clone(), membership, cache);
        self.shards |= Hub::shard_bit(self.ctx.hub.shard_index(&name));
        self.ctx.hub.subscribe(self.id, name, &request).await;
    }
}

impl Connection {
    /// The member a presence subscription enters as, from its signed `channel_data`.
    fn presence_member(&mut self, channel: &ChannelName, data: &str) -> Result<Membership, String> {
        let data = ChannelData::parse(data).map_err(|e| e.to_string())?;
        let user = UserId::parse(&data.user_id).map_err(|e| format!("user_id: {e}"))?;
        let max = self.ctx.config.presence.max_info_size;
        if data.user_info.len() > max {
            return Err(format!("user_info over {max} bytes"));
        }
        if let Some(p) = self.pusher.as_mut() {
            if !p.presence.iter().any(|(c, _)| c == channel) {
                p.presence.push((channel.clone(), user.clone()));
            }
        }
        Ok(Membership {
            presence: self.ctx.presence.clone(),
            conn: self.id,
            identity: Identity {
                user,
                info: Bytes::from(data.user_info),
            },
            channels: vec![channel.clone()],
        })
    }
}

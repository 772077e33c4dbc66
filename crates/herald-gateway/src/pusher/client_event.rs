//! A `client-` event: relayed to the channel's other subscribers, cluster-wide.

use bytes::Bytes;
use herald_broker::PublishMeta;
use herald_protocol::{ConnAddress, EventName};
use herald_pusher::{
    codes,
    webhook::{self, EventKind},
    PusherChannel,
};

use super::{channel::herald_channel, Refusal, Session};
use crate::{
    peer::{Env, Peer},
    telemetry::PublishPath,
};

impl Session {
    pub(super) async fn client_event(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        event: &str,
        channel: &PusherChannel,
        data: &str,
    ) -> Result<(), Refusal> {
        let app = self.app(env);
        if !app.client_events {
            return Err(Refusal::error(
                "client events are not enabled for this app (client_events in its pusher.apps entry)",
            ));
        }
        if !channel.allows_client_events() {
            return Err(Refusal::error(
                "client events are allowed on private and presence channels only",
            ));
        }
        let max_len = env.config().limits.max_channel_length;
        let name =
            herald_channel(channel, max_len).map_err(|_| Refusal::error("invalid channel name"))?;
        if !peer.subscribed.contains(&name) {
            return Err(Refusal::error(
                "subscribe to the channel before sending on it",
            ));
        }
        let event = EventName::parse(event)
            .map_err(|_| Refusal::error("event names are 1 to 200 bytes"))?;
        // The app's own limits, where it has them.
        let pusher = &env.config().pusher;
        let max = app.max_event_size.unwrap_or(pusher.max_event_size);
        let rate = app.client_event_rate.unwrap_or(pusher.client_event_rate);
        if data.len() > max {
            return Err(Refusal::error(format!("data over {max} bytes")));
        }
        env.config()
            .check_depth(data.as_bytes())
            .map_err(|refusal| {
                env.metrics().families.limit_hits.inc("max_json_depth");
                Refusal::error(refusal.reason)
            })?;
        // On a presence channel, receivers learn who sent it (Pusher's `user_id`).
        let user = self
            .presence
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, u)| u.as_str().to_owned());
        // The `client_event` webhook, sent once the event is published.
        let hook = env.wants_webhook(EventKind::ClientEvent).then(|| {
            webhook::Event::client_event(
                channel.as_str(),
                event.as_str(),
                data,
                &self.socket_id.to_string(),
                user.as_deref(),
            )
        });
        if !peer.take_publish_token(rate, env.metrics()) {
            return Err(Refusal::coded(
                codes::CLIENT_EVENT_RATE_LIMIT,
                format!("client event rejected: at most {rate} per second"),
            ));
        }
        let meta = PublishMeta {
            event: Some(event),
            exclude: Some(ConnAddress {
                node: env.node_tag(),
                conn: peer.id,
            }),
            user,
            ..Default::default()
        };
        let data = Bytes::copy_from_slice(data.as_bytes());
        env.publish(name, data, PublishPath::Client, meta)
            .await
            .map_err(|e| Refusal::error(format!("client event not sent: {e}")))?;
        if let Some(hook) = hook {
            env.emit_webhook(hook);
        }
        Ok(())
    }
}

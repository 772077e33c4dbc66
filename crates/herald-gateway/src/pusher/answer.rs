//! How Pusher subscriptions are answered: one message per channel, `subscription_succeeded`
//! (with the member list on a presence channel, then the last event or `pusher:cache_miss` on
//! a cache channel) or `subscription_error`.

use bytes::Bytes;
use herald_protocol::{
    presence::Member, server::ChannelFailure, ChannelName, ErrorCode, EventName,
};
use herald_pusher::message;

use super::{channel::pusher_name, frame};
use crate::hub::{Answer, Reads, Settled};

/// Answers a client's subscription.
pub(crate) struct Subscribed {
    /// For a `cache-` channel: the event name of a last publication without one.
    pub(crate) cache: Option<EventName>,
}

impl Answer for Subscribed {
    fn answer(&self, settled: Settled<'_>) {
        for channel in settled.subscribed {
            let Ok(name) = ChannelName::parse(channel) else {
                continue;
            };
            let me = settled
                .membership
                .filter(|m| m.channels.contains(&name))
                .map(|m| crate::presence::member(&m.identity.user, &m.identity.info));
            match settled.hold {
                // A presence or cache channel: its answer needs a read, and its frames wait
                // in the hold meanwhile.
                Some(hold) => {
                    let (hold, cache) = (hold.clone(), self.cache.clone());
                    let reads = settled.reads.clone();
                    tokio::spawn(async move {
                        hold.release(&after_read(&name, me, cache, &reads).await);
                    });
                }
                None => {
                    let text = message::subscription_succeeded(&pusher_name(&name), "{}");
                    settled.sink.push_frame(&frame(&text));
                }
            }
        }
        for failure in settled.failed {
            settled
                .sink
                .push_frame(&frame(&subscription_failed(failure)));
        }
    }
}

/// Sends `then` once a subscription the server makes for a connection (a user's channel at
/// sign-in) settles, so that what follows it is received.
pub(crate) struct ServerMade(pub(crate) Bytes);

impl Answer for ServerMade {
    fn answer(&self, settled: Settled<'_>) {
        settled.sink.push_frame(&self.0);
    }
}

/// The frames that answer a presence or cache subscription, read from the presence table and
/// the broker.
async fn after_read(
    channel: &ChannelName,
    me: Option<Member>,
    cache: Option<EventName>,
    reads: &Reads,
) -> Vec<Bytes> {
    let data = match me {
        Some(me) => match reads.presence.members(channel).await {
            Ok(mut members) => {
                // The table may not have this member yet: it is one.
                if !members.iter().any(|x| x.user == me.user) {
                    members.push(me);
                }
                let infos: Vec<(String, String)> = members
                    .iter()
                    .map(|x| (x.user.clone(), x.info.to_string()))
                    .collect();
                message::presence_data(infos.iter().map(|(u, i)| (u.as_str(), i.as_str())))
            }
            Err(e) => {
                let text = message::subscription_error(
                    &pusher_name(channel),
                    "SubscriptionError",
                    &format!("presence table unavailable: {e}"),
                    503,
                );
                return vec![frame(&text)];
            }
        },
        None => "{}".to_owned(),
    };
    let name = pusher_name(channel);
    let mut frames = vec![frame(&message::subscription_succeeded(&name, &data))];
    let Some(default_event) = cache else {
        return frames;
    };
    let last = reads.broker.last(channel).await.ok().flatten();
    let text = match last
        .as_ref()
        .and_then(|p| std::str::from_utf8(&p.data).ok().map(|d| (p, d)))
    {
        Some((p, data)) => {
            let event = p.event.as_ref().unwrap_or(&default_event);
            message::event(event.as_str(), &name, data, p.user.as_deref())
        }
        None => message::cache_miss(&name),
    };
    frames.push(frame(&text));
    frames
}

/// The `pusher:subscription_error` of a channel the broker refused.
fn subscription_failed(failure: &ChannelFailure) -> String {
    let name = ChannelName::parse(&failure.channel)
        .map(|c| pusher_name(&c).into_owned())
        .unwrap_or_else(|_| failure.channel.clone());
    let status = if failure.code == ErrorCode::Unavailable.code() {
        503
    } else {
        500
    };
    message::subscription_error(&name, "SubscriptionError", &failure.message, status)
}

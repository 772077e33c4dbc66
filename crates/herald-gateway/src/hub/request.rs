//! A subscribe request in flight: its channels settle in their shards, possibly at different
//! times; the reply goes out when the last one has.

use std::sync::{Arc, Mutex};

use herald_protocol::{
    server::{self, ChannelFailure, ReplyOk},
    ChannelName, WireFormat,
};

use crate::{
    outbound::{Hold, Outbound, Subscriber},
    presence::Membership,
    pusher::PusherCache,
};

struct Progress {
    remaining: usize,
    subscribed: Vec<String>,
    failed: Vec<ChannelFailure>,
}

/// Collects the outcome of each channel of one subscribe request.
pub(crate) struct SubscribeRequest {
    id: u64,
    sink: Outbound,
    progress: Mutex<Progress>,
    membership: Option<Membership>,
    /// A Pusher `cache-` channel's last event follows its subscription.
    cache: Option<PusherCache>,
    /// Where the channel's frames wait until a Pusher answer that needs a read is out.
    hold: Option<Arc<Hold>>,
    /// A subscription the server makes for a connection: instead of a reply, this frame is
    /// sent when it settles.
    server_made: Option<bytes::Bytes>,
    /// The connection awaits this reply before it reads another request
    /// ([`Outbound::await_reply`]).
    awaited: bool,
}

impl SubscribeRequest {
    /// A request waiting for `pending` channels; `failed` already holds those refused before
    /// reaching the hub. Replies at once when nothing is pending; else the connection reads no
    /// further request until the reply is queued, so that replies (and what requests do, such
    /// as presence joins and leaves) follow the order of the requests.
    pub(crate) fn new(
        id: u64,
        sink: Outbound,
        pending: usize,
        failed: Vec<ChannelFailure>,
        membership: Option<Membership>,
    ) -> Arc<Self> {
        let awaited = pending > 0;
        if awaited {
            sink.await_reply();
        }
        let request = Arc::new(Self {
            awaited,
            id,
            sink,
            membership,
            cache: None,
            hold: None,
            server_made: None,
            progress: Mutex::new(Progress {
                remaining: pending,
                subscribed: Vec::with_capacity(pending),
                failed,
            }),
        });
        if pending == 0 {
            request.reply(&request.lock());
        }
        request
    }

    /// A Pusher subscription of one channel; `cache` for a `cache-` channel. A presence or
    /// cache channel is answered after a read: its frames wait in a hold until then.
    pub(crate) fn pusher(
        sink: Outbound,
        membership: Option<Membership>,
        cache: Option<PusherCache>,
    ) -> Arc<Self> {
        let hold = (membership.is_some() || cache.is_some()).then(|| Hold::new(&sink));
        Arc::new(Self {
            id: 0,
            sink,
            membership,
            cache,
            hold,
            server_made: None,
            awaited: false,
            progress: Mutex::new(Progress {
                remaining: 1,
                subscribed: Vec::with_capacity(1),
                failed: Vec::new(),
            }),
        })
    }

    /// A subscription the server makes for a connection (a Pusher user's channel at sign-in):
    /// `then` is sent when it settles (so that what follows it is received), and no reply.
    pub(crate) fn server_made(sink: Outbound, then: bytes::Bytes) -> Arc<Self> {
        Arc::new(Self {
            id: 0,
            sink,
            membership: None,
            cache: None,
            hold: None,
            server_made: Some(then),
            awaited: false,
            progress: Mutex::new(Progress {
                remaining: 1,
                subscribed: Vec::with_capacity(1),
                failed: Vec::new(),
            }),
        })
    }

    /// What the hub pushes the request's channels into.
    pub(crate) fn subscriber(&self) -> Subscriber {
        self.hold
            .clone()
            .map_or_else(|| (&self.sink).into(), Subscriber::Held)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the outcome for `channel`: `Ok(true)` when the connection now receives it,
    /// `Ok(false)` when it unsubscribed before the subscription settled (the request succeeded
    /// and was undone: no presence membership). The last one sends the reply.
    pub(crate) fn settle(&self, channel: &ChannelName, outcome: Result<bool, ChannelFailure>) {
        let mut p = self.lock();
        match outcome {
            Ok(receiving) => {
                p.subscribed.push(channel.to_string());
                if let Some(m) = self
                    .membership
                    .as_ref()
                    .filter(|m| receiving && m.channels.contains(channel))
                {
                    m.presence.enter(m.conn, &m.identity, channel.clone());
                }
            }
            Err(failure) => p.failed.push(failure),
        }
        p.remaining = p.remaining.saturating_sub(1);
        if p.remaining == 0 {
            self.reply(&p);
        }
    }

    fn reply(&self, p: &Progress) {
        if let Some(then) = &self.server_made {
            self.sink.push_frame(then);
            return;
        }
        if herald_hub::Sink::format(&self.sink) == WireFormat::Pusher {
            // A Pusher subscribe names one channel; each outcome is a message of its own.
            for channel in &p.subscribed {
                let Ok(name) = ChannelName::parse(channel) else {
                    continue;
                };
                let membership = self
                    .membership
                    .as_ref()
                    .filter(|m| m.channels.contains(&name));
                match &self.hold {
                    Some(hold) => {
                        crate::pusher::answer_after_read(
                            hold,
                            &name,
                            membership,
                            self.cache.as_ref(),
                        );
                    }
                    None => crate::pusher::subscribed(&self.sink, &name),
                }
            }
            for failure in &p.failed {
                let text = crate::pusher::subscription_failed(failure);
                self.sink.push_frame(&crate::pusher::frame(&text));
            }
            return;
        }
        let frame = server::reply_ok(
            herald_hub::Sink::format(&self.sink),
            self.id,
            &ReplyOk::Subscribe {
                subscribed: &p.subscribed,
                failed: &p.failed,
            },
        );
        if self.awaited {
            self.sink.push_reply(&frame);
        } else {
            self.sink.push_frame(&frame);
        }
    }
}

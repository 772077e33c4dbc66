//! How the hub frames what it fans out to Pusher connections.

use bytes::Bytes;
use herald_broker::Publication;
use herald_protocol::{
    presence::{Change, PresenceNotice},
    ChannelName, Epoch, EventName,
};
use herald_pusher::message;

use super::{channel::pusher_name, frame, TERMINATE};

/// The Pusher encoders.
pub(crate) struct PusherFraming {
    /// The event name Pusher clients see for a publication without one (`pusher.default_event`).
    pub(crate) default_event: EventName,
}

impl crate::hub::Framing for PusherFraming {
    fn publication(&self, p: &Publication) -> Option<Bytes> {
        // Pusher's events carry text: binary data cannot reach its clients.
        let data = std::str::from_utf8(&p.data).ok()?;
        let event = p.event.as_ref().unwrap_or(&self.default_event);
        let channel = pusher_name(&p.channel);
        let text = message::event(event.as_str(), &channel, data, p.user.as_deref());
        Some(frame(&text))
    }

    /// `member_added` / `member_removed`, on `presence-` channels only.
    fn presence(&self, channel: &ChannelName, notice: &PresenceNotice) -> Option<Bytes> {
        if !channel.as_str().starts_with("presence-") {
            return None;
        }
        let user = &notice.member.user;
        let text = match notice.change {
            Change::Join => {
                message::member_added(channel.as_str(), user, &notice.member.info.to_string())
            }
            Change::Leave => message::member_removed(channel.as_str(), user),
        };
        Some(frame(&text))
    }

    /// Pusher clients get no gap notices.
    fn gap(
        &self,
        _channel: &ChannelName,
        _reason: &str,
        _missing: Option<(u64, u64)>,
        _epoch: Option<&Epoch>,
    ) -> Option<Bytes> {
        None
    }

    /// As with Pusher, a member's own connections never hear that their user was added.
    fn tells_own_joins(&self) -> bool {
        false
    }

    /// `terminate_connections`: the event on a user's channel that ends their connections.
    fn terminates(&self, p: &Publication) -> bool {
        herald_pusher::channel::is_user_channel(p.channel.as_str())
            && p.event.as_ref().is_some_and(|e| e.as_str() == TERMINATE)
    }
}

//! What a hub shard is asked to do.

use std::sync::Arc;

use herald_broker::{BrokerError, Publication};
use herald_presence_core::UserId;
use herald_protocol::{presence::PresenceNotice, ChannelName, ConnId};

use super::SubscribeRequest;
use crate::outbound::Subscriber;

/// What a shard task is asked to do.
pub(crate) enum ShardCommand {
    /// Subscribe a connection to a channel of this shard.
    Subscribe {
        conn: ConnId,
        sink: Subscriber,
        channel: ChannelName,
        request: Arc<SubscribeRequest>,
    },
    /// Unsubscribe a connection from a channel of this shard; `member`, the user it leaves
    /// the channel's presence as. The shard makes the exit: a join comes from the shard too
    /// (when the subscription settles), so an exit made anywhere else could precede it.
    Unsubscribe {
        conn: ConnId,
        channel: ChannelName,
        member: Option<UserId>,
    },
    /// A connection is gone; `presence` when it may be a member of presence channels, which
    /// it then leaves (made here for the same reason as an unsubscribe's exit).
    Disconnect { conn: ConnId, presence: bool },
    /// A publication from the broker.
    /// Boxed: a command is as large as its largest kind, and every connection's task holds
    /// one while it sends it (its disconnect); a publication is several hundred bytes.
    Publication(Box<Publication>),
    /// The broker lost and regained `channel`: tell its subscribers they may have missed some.
    Gap {
        channel: ChannelName,
        reason: &'static str,
    },
    /// Notices of any channel may have been missed: a gap notice to every channel held.
    GapAll { reason: &'static str },
    /// A member joined or left presence channel `channel`.
    Presence {
        channel: ChannelName,
        notice: PresenceNotice,
    },
    /// Answered once the commands sent before it are handled (what they report to the
    /// presence table included).
    Sync(tokio::sync::oneshot::Sender<()>),
    /// A repair's history read, back from the broker (boxed: it is large, and rare).
    Repaired(Box<super::shard_task::Repaired>),
    /// The broker's answer to a subscribe this shard asked for.
    BrokerSubscribed {
        channel: ChannelName,
        error: Option<BrokerError>,
    },
}

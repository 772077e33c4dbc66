//! Pusher channels as Herald channels: the name mapping (`herald-pusher` keeps it, with the
//! user channels' namespace) within the node's `limits.max_channel_length`.

use herald_protocol::{ChannelError, ChannelName};
use herald_pusher::PusherChannel;

/// The Herald channel of a Pusher channel.
///
/// # Errors
/// When the Herald name is longer than `max_len` (a user's channel, whose id is hex-encoded).
pub(crate) fn herald_channel(
    channel: &PusherChannel,
    max_len: usize,
) -> Result<ChannelName, ChannelError> {
    ChannelName::parse_with_max(&channel.herald_name(), max_len)
}

/// The name Pusher clients know a Herald channel by.
pub(crate) fn pusher_name(channel: &ChannelName) -> std::borrow::Cow<'_, str> {
    herald_pusher::channel::pusher_name(channel.as_str())
}

//! Pusher channel names and types.

use std::fmt;

/// What a channel's prefix makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// Anyone with the app key may subscribe.
    Public,
    /// `private-`: a subscription needs an authorization signed for the socket and channel.
    Private,
    /// `private-encrypted-`: private, and the payloads are end-to-end encrypted (the server
    /// passes them through).
    PrivateEncrypted,
    /// `presence-`: private, with a member list.
    Presence,
    /// `#server-to-user-{id}`: events for a signed-in user; only that user's connections may
    /// subscribe.
    ServerToUser,
}

/// A valid Pusher channel name: 1 to 164 of `A-Z a-z 0-9 _ - = @ , . ;`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PusherChannel(String);

/// Why a channel name was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// Empty or longer than [`PusherChannel::MAX_LEN`].
    #[error("channel names are 1 to 164 characters")]
    Length,
    /// A character Pusher does not allow.
    #[error("channel names may contain only letters, digits and _ - = @ , . ;")]
    Character,
}

impl PusherChannel {
    /// The longest name Pusher allows.
    pub const MAX_LEN: usize = 164;
    /// The prefix of a user's channel.
    pub const SERVER_TO_USER: &'static str = "#server-to-user-";

    /// The channel of events for user `id`.
    ///
    /// # Errors
    /// [`ChannelNameError`] when the id makes no valid name.
    pub fn server_to_user(id: &str) -> Result<Self, ChannelNameError> {
        Self::parse(&format!("{}{id}", Self::SERVER_TO_USER))
    }

    /// The user of a `#server-to-user-` channel.
    pub fn user(&self) -> Option<&str> {
        self.0.strip_prefix(Self::SERVER_TO_USER)
    }

    /// The name Herald knows this channel by: the same, except a user's channel, which is
    /// `pusher-user:{hex of the id}` ([`USER_NAMESPACE`]).
    pub fn herald_name(&self) -> std::borrow::Cow<'_, str> {
        match self.user() {
            Some(user) => {
                let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
                format!("{USER_NAMESPACE}{hex}").into()
            }
            None => self.0.as_str().into(),
        }
    }

    /// Validates a name.
    ///
    /// # Errors
    /// [`ChannelNameError`] with the reason.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(ChannelNameError::Length);
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b);
        // `#server-to-user-` channels carry a user id, which may hold other characters.
        let checked = name.strip_prefix(Self::SERVER_TO_USER).unwrap_or(name);
        if checked.is_empty()
            || !checked
                .bytes()
                .all(|b| allowed(b) || name != checked && !b.is_ascii_control())
        {
            return Err(ChannelNameError::Character);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The channel's type, from its prefix.
    pub fn kind(&self) -> ChannelKind {
        if self.0.starts_with(Self::SERVER_TO_USER) {
            ChannelKind::ServerToUser
        } else if self.0.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if self.0.starts_with("private-") {
            ChannelKind::Private
        } else if self.0.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        }
    }

    /// Whether a subscription needs a signed authorization (a user's channel needs the user
    /// signed in instead).
    pub fn needs_auth(&self) -> bool {
        !matches!(self.kind(), ChannelKind::Public | ChannelKind::ServerToUser)
    }

    /// Whether clients may send `client-` events on it (private and presence channels).
    pub fn allows_client_events(&self) -> bool {
        matches!(self.kind(), ChannelKind::Private | ChannelKind::Presence)
    }

    /// Whether the last event is kept and delivered on subscribe (`cache-` and the cache
    /// variants of the other types).
    pub fn is_cache(&self) -> bool {
        [
            "cache-",
            "private-cache-",
            "private-encrypted-cache-",
            "presence-cache-",
        ]
        .iter()
        .any(|p| self.0.starts_with(p))
    }
}

impl fmt::Display for PusherChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PusherChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The Herald namespace of users' channels: Pusher names hold no `:`, and Herald's own
/// clients cannot subscribe to a namespace the node does not configure.
pub const USER_NAMESPACE: &str = "pusher-user:";

/// Whether a Herald channel name is a Pusher user's channel.
pub fn is_user_channel(herald: &str) -> bool {
    herald.starts_with(USER_NAMESPACE)
}

/// The name Pusher clients know a Herald channel by ([`PusherChannel::herald_name`] undone).
pub fn pusher_name(herald: &str) -> std::borrow::Cow<'_, str> {
    let Some(hex) = herald.strip_prefix(USER_NAMESPACE) else {
        return herald.into();
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    match bytes.and_then(|b| String::from_utf8(b).ok()) {
        Some(user) => format!("{}{user}", PusherChannel::SERVER_TO_USER).into(),
        None => herald.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_channels_map_both_ways() {
        let pusher = PusherChannel::server_to_user("ann b").unwrap();
        let herald = pusher.herald_name();
        assert_eq!(herald, "pusher-user:616e6e2062");
        assert!(is_user_channel(&herald));
        assert_eq!(pusher_name(&herald), "#server-to-user-ann b");
        let plain = PusherChannel::parse("news").unwrap();
        assert_eq!(plain.herald_name(), "news");
        assert!(!is_user_channel("news"));
        assert_eq!(pusher_name("news"), "news");
        assert_eq!(pusher_name("pusher-user:zz"), "pusher-user:zz");
    }

    #[test]
    fn kinds_come_from_prefixes() {
        let kind = |n: &str| PusherChannel::parse(n).unwrap().kind();
        assert_eq!(kind("news"), ChannelKind::Public);
        assert_eq!(kind("cache-news"), ChannelKind::Public);
        assert_eq!(kind("private-user.1"), ChannelKind::Private);
        assert_eq!(kind("private-encrypted-x"), ChannelKind::PrivateEncrypted);
        assert_eq!(kind("presence-room-1"), ChannelKind::Presence);
        assert!(PusherChannel::parse("presence-cache-x").unwrap().is_cache());
        assert!(!PusherChannel::parse("news").unwrap().is_cache());
        assert!(PusherChannel::parse("private-x")
            .unwrap()
            .allows_client_events());
        assert!(!PusherChannel::parse("private-encrypted-x")
            .unwrap()
            .allows_client_events());
        assert!(!PusherChannel::parse("news").unwrap().allows_client_events());
    }

    #[test]
    fn names_are_checked() {
        assert!(PusherChannel::parse("a-Z_0=9@,.;").is_ok());
        assert_eq!(PusherChannel::parse(""), Err(ChannelNameError::Length));
        assert_eq!(
            PusherChannel::parse(&"x".repeat(165)),
            Err(ChannelNameError::Length)
        );
        assert!(PusherChannel::parse(&"x".repeat(164)).is_ok());
        let user = PusherChannel::server_to_user("ann@example.com").unwrap();
        assert_eq!(user.kind(), ChannelKind::ServerToUser);
        assert_eq!(user.user(), Some("ann@example.com"));
        assert!(!user.needs_auth());
        assert_eq!(
            PusherChannel::parse("#server-to-user-"),
            Err(ChannelNameError::Character)
        );
        for bad in [
            "a b",
            "a:b",
            "a/b",
            "é",
            "a{b}",
            "#other",
            "#server-to-user-a\nb",
        ] {
            assert_eq!(
                PusherChannel::parse(bad),
                Err(ChannelNameError::Character),
                "{bad}"
            );
        }
    }
}

//! Presence notices: a member joined or left a presence channel.
//!
//! They travel through the broker on the channel's own pub/sub channel, as the MessagePack
//! array `[2, "join" | "leave", user, info]` (`info` is JSON text), written by Herald's Redis
//! presence functions, and reach clients as `{"join":{..}}` or `{"leave":{..}}` pushes.

use serde::Serialize;

/// The tag of a presence notice in the broker's MessagePack form (publications are `1`).
pub const TAG: u8 = 2;

/// Whether the member joined or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The member's first connection on any node entered the channel.
    Join,
    /// The member's last connection on any node left the channel.
    Leave,
}

impl Change {
    /// `"join"` or `"leave"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Join => "join",
            Change::Leave => "leave",
        }
    }
}

/// One member of a presence channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The user id.
    pub user: String,
    /// What the user's connection said about itself (JSON; `null` when nothing).
    pub info: serde_json::Value,
}

/// A member joined or left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceNotice {
    /// Joined or left.
    pub change: Change,
    /// Who.
    pub member: Member,
}

/// Why a presence notice from the broker was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Not `[2, kind, user, info]`.
    #[error("bad presence notice: {0}")]
    Shape(#[from] rmp_serde::decode::Error),
    /// A kind other than join or leave.
    #[error("unknown presence change {0:?}")]
    Kind(String),
    /// `info` is not JSON.
    #[error("presence info is not JSON: {0}")]
    Info(#[from] serde_json::Error),
    /// The event's channel is not a valid channel name.
    #[error("bad channel in a presence event: {0}")]
    Channel(String),
}

impl PresenceNotice {
    /// The broker form, `[2, kind, user, info]`.
    pub fn to_broker(&self) -> Vec<u8> {
        let info = self.member.info.to_string();
        rmp_serde::to_vec(&(TAG, self.change.as_str(), &self.member.user, info))
            .expect("tuples of strings always serialise")
    }

    /// Decodes the broker form.
    ///
    /// # Errors
    /// [`NoticeError`] for anything but `[2, "join" | "leave", user, info-as-JSON]`.
    pub fn from_broker(message: &[u8]) -> Result<Self, NoticeError> {
        let (_, kind, user, info): (u8, String, String, String) = rmp_serde::from_slice(message)?;
        Self::from_parts(kind, user, info)
    }

    /// The cluster-wide event form, `[2, kind, user, info, channel]`: on a Redis Cluster the
    /// presence table publishes every notice on one channel, so the channel rides along.
    pub fn to_event(&self, channel: &crate::ChannelName) -> Vec<u8> {
        let info = self.member.info.to_string();
        let event = (
            TAG,
            self.change.as_str(),
            &self.member.user,
            info,
            channel.as_str(),
        );
        rmp_serde::to_vec(&event).expect("tuples of strings always serialise")
    }

    /// Decodes the event form.
    ///
    /// # Errors
    /// [`NoticeError`] for anything but `[2, "join" | "leave", user, info-as-JSON, channel]`
    /// with a valid channel name.
    pub fn from_event(message: &[u8]) -> Result<(crate::ChannelName, Self), NoticeError> {
        let (_, kind, user, info, channel): (u8, String, String, String, String) =
            rmp_serde::from_slice(message)?;
        let channel =
            crate::ChannelName::parse(&channel).map_err(|e| NoticeError::Channel(e.to_string()))?;
        Ok((channel, Self::from_parts(kind, user, info)?))
    }

    fn from_parts(kind: String, user: String, info: String) -> Result<Self, NoticeError> {
        let change = match kind.as_str() {
            "join" => Change::Join,
            "leave" => Change::Leave,
            _ => return Err(NoticeError::Kind(kind)),
        };
        let info = if info.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&info)?
        };
        Ok(Self {
            change,
            member: Member { user, info },
        })
    }
}

/// Whether a MessagePack array's first element is the presence tag.
pub(crate) fn is_notice(message: &[u8]) -> bool {
    let first = match message.first() {
        Some(0x90..=0x9f) => message.get(1),
        Some(0xdc) => message.get(3),
        Some(0xdd) => message.get(5),
        _ => None,
    };
    first == Some(&TAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_broker_form() {
        let n = PresenceNotice {
            change: Change::Leave,
            member: Member {
                user: "u1".into(),
                info: serde_json::json!({"name": "Ann"}),
            },
        };
        let wire = n.to_broker();
        assert!(is_notice(&wire));
        assert_eq!(PresenceNotice::from_broker(&wire).unwrap(), n);
        let channel = crate::ChannelName::parse("room:1").unwrap();
        let event = n.to_event(&channel);
        assert_eq!(PresenceNotice::from_event(&event).unwrap(), (channel, n));
        let bad = rmp_serde::to_vec(&(2u8, "join", "u", "null", "")).unwrap();
        assert!(matches!(
            PresenceNotice::from_event(&bad),
            Err(NoticeError::Channel(_))
        ));
    }

    #[test]
    fn refuses_unknown_kinds_and_bad_info() {
        let bad = rmp_serde::to_vec(&(2u8, "wave", "u", "null")).unwrap();
        assert!(matches!(
            PresenceNotice::from_broker(&bad),
            Err(NoticeError::Kind(_))
        ));
        let bad = rmp_serde::to_vec(&(2u8, "join", "u", "{")).unwrap();
        assert!(matches!(
            PresenceNotice::from_broker(&bad),
            Err(NoticeError::Info(_))
        ));
        let bad = rmp_serde::to_vec(&(2u8, "join")).unwrap();
        assert!(PresenceNotice::from_broker(&bad).is_err());
    }
}

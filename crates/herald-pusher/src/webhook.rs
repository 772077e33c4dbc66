//! Webhooks: the events Pusher sends to an app's URL, and the body that carries them.
//!
//! A request is `POST`ed with `Content-Type: application/json`, `X-Pusher-Key` (the app key)
//! and `X-Pusher-Signature` ([`crate::signature::webhook_signature`] of the body), and its
//! body is `{"time_ms":…,"events":[…]}`.

use serde::{Deserialize, Serialize};

/// Which channels a webhook hears of: patterns where `*` stands for any run of characters
/// (`presence-*`, `private-orders-*`, `*-admin`, or a name). No pattern: every channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelFilter(Vec<String>);

impl ChannelFilter {
    /// A filter of `patterns`.
    ///
    /// # Errors
    /// A pattern that is empty, or has a character no channel name has (Pusher's: letters,
    /// digits and `_-=@,.;`), naming it.
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        for p in patterns {
            let valid = |b: u8| b.is_ascii_alphanumeric() || b"_-=@,.;*".contains(&b);
            if p.is_empty() || !p.bytes().all(valid) {
                return Err(PatternError(p.clone()));
            }
        }
        Ok(Self(patterns.to_vec()))
    }

    /// Whether events of `channel` go to this webhook.
    pub fn matches(&self, channel: &str) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|p| glob(p.as_bytes(), channel.as_bytes()))
    }
}

/// A channel pattern that no channel name can match.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a channel pattern: a channel name, with `*` for any run of characters")]
pub struct PatternError(pub String);

/// `*` matches any run of bytes, every other byte itself.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((p, rest)) => name
            .split_first()
            .is_some_and(|(n, tail)| n == p && glob(rest, tail)),
    }
}

/// The kinds of webhook events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A channel got its first subscriber, cluster-wide.
    ChannelOccupied,
    /// A channel lost its last subscriber, cluster-wide.
    ChannelVacated,
    /// A user joined a presence channel (their first connection in it).
    MemberAdded,
    /// A user left a presence channel (their last connection in it).
    MemberRemoved,
    /// A client sent a `client-` event.
    ClientEvent,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 5] = [
        EventKind::ChannelOccupied,
        EventKind::ChannelVacated,
        EventKind::MemberAdded,
        EventKind::MemberRemoved,
        EventKind::ClientEvent,
    ];

    /// The `name` of events of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ChannelOccupied => "channel_occupied",
            EventKind::ChannelVacated => "channel_vacated",
            EventKind::MemberAdded => "member_added",
            EventKind::MemberRemoved => "member_removed",
            EventKind::ClientEvent => "client_event",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One webhook event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub name: EventKind,
    /// On which channel.
    pub channel: String,
    /// The member (member events), or the sender of a client event on a presence channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The client event's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The client event's data, as the client sent it (a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The sender of a client event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
}

impl Event {
    /// `channel_occupied` or `channel_vacated` of `channel`.
    pub fn occupancy(occupied: bool, channel: &str) -> Self {
        let name = if occupied {
            EventKind::ChannelOccupied
        } else {
            EventKind::ChannelVacated
        };
        Self::bare(name, channel)
    }

    /// `member_added` or `member_removed` of `user_id` in `channel`.
    pub fn member(added: bool, channel: &str, user_id: &str) -> Self {
        let name = if added {
            EventKind::MemberAdded
        } else {
            EventKind::MemberRemoved
        };
        Self {
            user_id: Some(user_id.to_owned()),
            ..Self::bare(name, channel)
        }
    }

    /// A `client_event` sent by `socket_id` (a member `user_id` on presence channels).
    pub fn client_event(
        channel: &str,
        event: &str,
        data: &str,
        socket_id: &str,
        user_id: Option<&str>,
    ) -> Self {
        Self {
            user_id: user_id.map(str::to_owned),
            event: Some(event.to_owned()),
            data: Some(data.to_owned()),
            socket_id: Some(socket_id.to_owned()),
            ..Self::bare(EventKind::ClientEvent, channel)
        }
    }

    fn bare(name: EventKind, channel: &str) -> Self {
        Self {
            name,
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
        }
    }

    /// The event as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }

    /// Parses an event from JSON text.
    ///
    /// # Errors
    /// When the text is not an event.
    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }
}

/// The body of one webhook request.
pub fn body<'a>(time_ms: u64, events: impl IntoIterator<Item = &'a Event>) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: u64,
        events: Vec<&'a Event>,
    }
    let body = Body {
        time_ms,
        events: events.into_iter().collect(),
    };
    serde_json::to_string(&body).expect("bodies always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{verify, webhook_signature};

    #[test]
    fn events_have_pushers_fields_and_round_trip() {
        let occupied = Event::occupancy(true, "news");
        assert_eq!(
            occupied.to_json(),
            r#"{"name":"channel_occupied","channel":"news"}"#
        );
        let member = Event::member(false, "presence-room", "7");
        assert_eq!(
            member.to_json(),
            r#"{"name":"member_removed","channel":"presence-room","user_id":"7"}"#
        );
        let client = Event::client_event("private-a", "client-typing", "{}", "1.2", None);
        assert_eq!(
            client.to_json(),
            r#"{"name":"client_event","channel":"private-a","event":"client-typing","data":"{}","socket_id":"1.2"}"#
        );
        for e in [occupied, member, client] {
            assert_eq!(Event::from_json(e.to_json().as_bytes()).unwrap(), e);
        }
        assert!(Event::from_json(br#"{"name":"nope","channel":"a"}"#).is_err());
    }

    #[test]
    fn kinds_parse_by_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("channel_existence"), None);
    }

    #[test]
    fn a_body_carries_the_time_and_the_events_and_is_signed_by_its_hmac() {
        let events = [Event::occupancy(true, "a"), Event::occupancy(false, "a")];
        let text = body(1_327_078_148_132, &events);
        assert_eq!(
            text,
            r#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"a"},{"name":"channel_vacated","channel":"a"}]}"#
        );
        let signature = webhook_signature("secret", &text);
        assert!(verify("secret", &text, &signature));
        assert!(!verify("other", &text, &signature));
    }

    #[test]
    fn channel_filters_match_patterns() {
        let all = ChannelFilter::default();
        assert!(all.matches("anything"));
        let f =
            ChannelFilter::new(&["presence-*".into(), "*-admin".into(), "news".into()]).unwrap();
        for yes in ["presence-room", "presence-", "ops-admin", "news"] {
            assert!(f.matches(yes), "{yes}");
        }
        for no in ["private-room", "news-2", "admin-ops", "xpresence-a"] {
            assert!(!f.matches(no), "{no}");
        }
        assert!(ChannelFilter::new(&["".into()]).is_err());
        assert!(ChannelFilter::new(&["bad channel".into()]).is_err());
    }
}

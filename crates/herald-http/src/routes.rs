//! Route shapes answered by more than one deployable.

/// What a presence route asks for, with the channel name percent-decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum PresenceQuery {
    /// `GET /v1/channels/{channel}/presence`: the member list.
    Members(String),
    /// `GET /v1/channels/{channel}/presence/stats`: the member count.
    Stats(String),
}

impl PresenceQuery {
    /// Recognises the presence routes; `None` for any other path (or a channel that is not
    /// UTF-8 once decoded).
    pub fn route(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v1/channels/")?;
        let decode = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        if let Some(raw) = rest.strip_suffix("/presence/stats") {
            return decode(raw).map(Self::Stats);
        }
        rest.strip_suffix("/presence")
            .and_then(decode)
            .map(Self::Members)
    }

    /// The channel name asked about.
    pub fn channel(&self) -> &str {
        match self {
            Self::Members(c) | Self::Stats(c) => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_presence_routes() {
        assert_eq!(
            PresenceQuery::route("/v1/channels/room%3A1/presence"),
            Some(PresenceQuery::Members("room:1".into()))
        );
        assert_eq!(
            PresenceQuery::route("/v1/channels/a/b/presence/stats"),
            Some(PresenceQuery::Stats("a/b".into()))
        );
        assert_eq!(PresenceQuery::route("/v1/channels/%FF/presence"), None);
        assert_eq!(PresenceQuery::route("/v1/channels/x"), None);
        assert_eq!(PresenceQuery::route("/v1/publish"), None);
    }
}

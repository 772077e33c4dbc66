//! `history`: a channel's kept publications, read back from a position (the WebSocket request
//! here; `GET /v1/history` in `http/history.rs`). The checks and the reply are shared.

use herald_broker::{History, HistoryQuery};
use herald_protocol::{
    server::{self, HistoryItem, ReplyOk},
    ChannelName, ErrorCode, Position,
};

use super::session::Session;
use crate::{
    auth::may_subscribe,
    config::NamespaceConfig,
    peer::{Env, Peer},
    refusal::Refusal,
};

/// The most publications one read returns.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// What to ask the broker, from a request's `limit`, `since` and `reverse`: at most the
/// namespace's history size and [`MAX_LIMIT`].
///
/// # Errors
/// [`ErrorCode::PermissionDenied`] when the namespace keeps no history.
pub(crate) fn query(
    ns: &NamespaceConfig,
    limit: Option<u32>,
    since: Option<&Position>,
    reverse: bool,
) -> Result<HistoryQuery, Refusal> {
    if !ns.history().is_on() {
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            "this namespace keeps no history (history_size = 0)",
        ));
    }
    let most = ns.history_size.min(MAX_LIMIT);
    let limit = limit.unwrap_or(most).min(most);
    Ok(HistoryQuery {
        since: since.map(|p| p.offset),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        reverse,
        max_age: ns.history_ttl,
        window: ns.history_size,
    })
}

/// Refuses a read from `since` that the history cannot continue: another epoch, or
/// publications after it that are no longer kept.
///
/// # Errors
/// [`ErrorCode::PositionLost`], saying which.
pub(crate) fn check_continues(
    since: Option<&Position>,
    history: &History,
    query: &HistoryQuery,
) -> Result<(), Refusal> {
    let Some(since) = since else {
        return Ok(());
    };
    if history.epoch.as_ref() != Some(&since.epoch) {
        let now = history.epoch.as_ref().map_or("none", |e| e.as_str());
        return Err(Refusal::new(
            ErrorCode::PositionLost,
            format!("epoch changed: the channel's is now {now}"),
        ));
    }
    if since.offset > history.offset {
        return Err(Refusal::new(
            ErrorCode::PositionLost,
            format!(
                "offset {} is past the channel's latest, {}",
                since.offset, history.offset
            ),
        ));
    }
    // Oldest first, the first one returned must follow `since` at once; newest first, the
    // read reaches back to it unless it stopped at the limit.
    let offsets = history.publications.iter().filter_map(|p| p.offset);
    let first = if query.reverse {
        offsets.min()
    } else {
        offsets.clone().next()
    };
    let full = history.publications.len() >= query.limit;
    let missing = match first {
        None => history.offset > since.offset,
        Some(first) if query.reverse => first > since.offset + 1 && !full,
        Some(first) => first > since.offset + 1,
    };
    if missing {
        return Err(Refusal::new(
            ErrorCode::PositionLost,
            "publications after this position are no longer kept",
        ));
    }
    Ok(())
}

/// The publications of a history read, as a reply lists them.
pub(crate) fn items(history: &History) -> Vec<HistoryItem<'_>> {
    history
        .publications
        .iter()
        .map(|p| HistoryItem {
            data: &p.data,
            offset: p.offset,
            event: p.event.as_ref().map(|e| e.as_str()),
        })
        .collect()
}

/// The body of a history reply (the WebSocket reply's `ok`, the HTTP API's body).
pub(crate) fn body<'a>(
    channel: &'a ChannelName,
    history: &'a History,
    items: &'a [HistoryItem<'a>],
) -> ReplyOk<'a> {
    ReplyOk::History {
        channel: channel.as_str(),
        offset: history.offset,
        epoch: history.epoch.as_ref().map(|e| e.as_str()),
        publications: items,
    }
}

impl Session {
    pub(super) async fn history(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        request: herald_protocol::client::HistoryRequest,
    ) {
        let since = request.since.as_ref();
        let checked = env
            .config()
            .check_channel(&request.channel)
            .and_then(|(channel, ns)| {
                // Who may subscribe may read.
                may_subscribe(ns.subscribe, self.standing(), &channel, &Ok(Vec::new()))?;
                Ok((channel, query(ns, request.limit, since, request.reverse)?))
            });
        let (channel, query) = match checked {
            Ok(checked) => checked,
            Err(refusal) => return self.refuse(peer, Some(id), &refusal),
        };
        let read = env
            .history(&channel, query)
            .await
            .map_err(|e| Refusal::broker(&e))
            .and_then(|history| check_continues(since, &history, &query).map(|()| history));
        match read {
            Ok(history) => {
                let items = items(&history);
                let frame = server::reply_ok(self.format, id, &body(&channel, &history, &items));
                self.reply(peer, &frame);
            }
            Err(refusal) => self.refuse(peer, Some(id), &refusal),
        }
    }
}

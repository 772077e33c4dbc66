//! A stream's start, once its channels are subscribed: the response head, what each channel
//! missed since the position the client came back with (from history, before anything
//! newer, each publication once), or a `gap` event where history cannot say, then live.
//!
//! Every channel's frames wait in a hold from the subscription on, as a native recovery's
//! do (`native/recover.rs`); one task reads every channel's history at once, queues the head
//! and the recovered events, then releases the holds.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use herald_broker::{BrokerError, History, HistoryQuery};
use herald_http::reply::ApiError;
use herald_protocol::{ChannelName, ErrorCode};
use http::HeaderValue;

use super::{cursor::Mark, framing, request};
use crate::{
    hub::{Answer, HistoryReads, Settled},
    native::history::check_continues,
    outbound::{Hold, Outbound},
};

/// A channel that keeps history: where the stream resumes it from, and how it is read.
pub(crate) struct Resume {
    pub(crate) channel: ChannelName,
    pub(crate) mark: Mark,
    pub(crate) query: HistoryQuery,
}

/// Starts a stream once its channels settled.
pub(crate) struct Start {
    pub(crate) origin: Option<HeaderValue>,
    pub(crate) retry: Duration,
    pub(crate) resume: Vec<Resume>,
}

impl Answer for Start {
    fn answer(&self, settled: Settled<'_>) {
        if let Some(failure) = settled.failed.first() {
            let e = ApiError::new(
                ErrorCode::Unavailable,
                format!("channel {}: {}", failure.channel, failure.message),
            );
            settled
                .sink
                .push_frame(&request::refusal(&e, self.origin.as_ref()));
            settled.sink.terminate();
            return;
        }
        let hold_of = |channel: &ChannelName| {
            let hold = settled.recovering.iter().find(|(c, _)| c == channel);
            hold.map(|(_, h)| h.clone())
        };
        let work = self
            .resume
            .iter()
            .filter_map(|r| {
                let resume = Resume {
                    channel: r.channel.clone(),
                    mark: r.mark.clone(),
                    query: r.query,
                };
                Some((resume, hold_of(&r.channel)?))
            })
            .collect();
        let task = Task {
            sink: settled.sink.clone(),
            head: request::stream_head(self.origin.as_ref(), self.retry),
            reads: settled.reads.history.clone(),
            others: settled.hold.cloned(),
        };
        tokio::spawn(task.run(work));
    }
}

struct Task {
    sink: Outbound,
    head: Bytes,
    reads: Arc<HistoryReads>,
    /// The hold of the channels that keep no history.
    others: Option<Arc<Hold>>,
}

impl Task {
    async fn run(self, work: Vec<(Resume, Arc<Hold>)>) {
        let reads: Vec<_> = work
            .iter()
            .map(|(r, _)| {
                let (reads, channel, query) = (self.reads.clone(), r.channel.clone(), r.query);
                tokio::spawn(async move { reads.read(&channel, query).await })
            })
            .collect();
        self.sink.push_frame(&self.head);
        let mut holds = Vec::with_capacity(work.len());
        for ((resume, hold), read) in work.into_iter().zip(reads) {
            let read = read.await.unwrap_or(Err(BrokerError::Closed));
            self.resume(&resume, read, &hold);
            holds.push(hold);
        }
        for hold in holds.iter().chain(&self.others) {
            hold.release(&[]);
        }
    }

    /// Puts what `r` missed into its hold, or tells the client it cannot be recovered and
    /// moves the stream to where the channel stands.
    fn resume(&self, r: &Resume, read: Result<History, BrokerError>, hold: &Hold) {
        let history = match read {
            Ok(history) => history,
            Err(e) => {
                let reason = format!("history unavailable: {e}");
                self.sink
                    .push_frame(&framing::gap(&r.channel, &reason, None, None));
                return;
            }
        };
        let since = match &r.mark {
            Mark::Unknown => None,
            Mark::Start => Some(0),
            // The same sequence: what is still kept is delivered, after a gap event when
            // some of it is gone.
            Mark::At(position)
                if history.epoch.as_ref() == Some(&position.epoch)
                    && position.offset <= history.offset =>
            {
                Some(position.offset)
            }
            Mark::At(position) => {
                let reason = match check_continues(Some(position), &history, &r.query) {
                    Err(refusal) => refusal.reason.into_owned(),
                    Ok(()) => "the position is not in the channel's sequence".to_owned(),
                };
                let epoch = history.epoch.as_ref();
                self.sink
                    .push_frame(&framing::gap(&r.channel, &reason, None, epoch));
                None
            }
        };
        let Some(since) = since else {
            // From where the channel stands: what the hold took up to there is left out.
            hold.recover(history.offset, Vec::new());
            let at = framing::position(&r.channel, history.epoch.as_ref(), history.offset);
            self.sink.push_frame(&at);
            return;
        };
        let frames = history
            .publications
            .iter()
            .filter_map(|p| {
                let frame = framing::publication(
                    &p.channel,
                    p.epoch.as_ref().or(history.epoch.as_ref()),
                    p.offset,
                    p.event.as_ref(),
                    &p.data,
                );
                Some((p.offset?, frame))
            })
            .collect();
        if hold.recover(since, frames) {
            let reason = "publications after this position are no longer kept";
            let missing = (
                since + 1,
                history.publications.first().and_then(|p| p.offset),
            );
            let missing = missing.1.map(|first| (missing.0, first.saturating_sub(1)));
            let gap = framing::gap(&r.channel, reason, missing, history.epoch.as_ref());
            self.sink.push_frame(&gap);
        }
    }
}

//! History reads shared between the clients that recover the same channel at once: after a
//! drain or a network blip thousands of clients come back within a second, and one read per
//! client would be thousands of reads of the same few publications.
//!
//! A read serves every client that asked before it started (each asked once its
//! subscription was live, so the read misses nothing it needs); it reads from the lowest
//! position asked, and each client takes what follows its own. One read per channel runs at a
//! time, and the next starts [`SPACING`] after the last began, with everyone who asked
//! meanwhile: at most 1 s / [`SPACING`] reads per channel and second, whatever the storm.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use herald_broker::{BrokerError, History, HistoryQuery, SharedBroker};
use herald_protocol::ChannelName;
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// The least time between the starts of two reads of one channel.
const SPACING: Duration = Duration::from_millis(25);

type Answer = oneshot::Sender<Result<History, BrokerError>>;

/// The node's shared history reads.
pub(crate) struct HistoryReads {
    broker: SharedBroker,
    metrics: Arc<Metrics>,
    /// Per channel with a read running or due: who waits for the next one.
    waiting: Mutex<HashMap<ChannelName, Vec<(HistoryQuery, Answer)>>>,
}

impl HistoryReads {
    pub(crate) fn new(broker: SharedBroker, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            broker,
            metrics,
            waiting: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelName, Vec<(HistoryQuery, Answer)>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `channel`'s history as `query` asks (oldest first), sharing the read with other
    /// callers of the moment.
    ///
    /// # Errors
    /// The broker's, as [`herald_broker::Broker::history`].
    pub(crate) async fn read(
        self: &Arc<Self>,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> Result<History, BrokerError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut waiting = self.lock();
            match waiting.get_mut(channel) {
                Some(queue) => {
                    queue.push((query, tx));
                    false
                }
                None => {
                    waiting.insert(channel.clone(), vec![(query, tx)]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(self.clone().run(channel.clone()));
        }
        rx.await.unwrap_or(Err(BrokerError::Closed))
    }

    /// Reads for whoever waits on `channel`, until nobody does.
    async fn run(self: Arc<Self>, channel: ChannelName) {
        loop {
            let began = tokio::time::Instant::now();
            let batch = {
                let mut waiting = self.lock();
                match waiting.get_mut(&channel) {
                    Some(queue) if !queue.is_empty() => std::mem::take(queue),
                    _ => {
                        waiting.remove(&channel);
                        return;
                    }
                }
            };
            let widest = widest(&batch);
            self.metrics.history_reads.inc();
            let read = self.broker.history(&channel, widest).await;
            for (query, answer) in batch {
                let _ = answer.send(read.as_ref().map(|h| narrowed(h, &query)).map_err(copy));
            }
            tokio::time::sleep_until(began + SPACING).await;
        }
    }
}

/// One query that reads what every query of `batch` needs: from the lowest position, far
/// enough for the one that starts highest to get as many as it asked.
///
/// A query for the position alone (limit 0) needs nothing more than any read returns.
fn widest(batch: &[(HistoryQuery, Answer)]) -> HistoryQuery {
    let mut reads = batch.iter().map(|(q, _)| q).filter(|q| q.limit > 0);
    let Some(first) = reads.next() else {
        return batch[0].0;
    };
    let mut widest = *first;
    let mut highest = widest.since.unwrap_or(0);
    for q in reads {
        widest.since = match (widest.since, q.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        highest = highest.max(q.since.unwrap_or(0));
        widest.limit = widest.limit.max(q.limit);
        widest.window = widest.window.max(q.window);
        widest.max_age = widest.max_age.max(q.max_age);
    }
    let spread = highest.saturating_sub(widest.since.unwrap_or(0));
    widest.limit = widest
        .limit
        .saturating_add(usize::try_from(spread).unwrap_or(usize::MAX));
    widest
}

/// What `query` asks of a wider read: the publications after its own position, at most its
/// limit.
fn narrowed(read: &History, query: &HistoryQuery) -> History {
    let since = query.since.unwrap_or(0);
    History {
        offset: read.offset,
        epoch: read.epoch.clone(),
        publications: read
            .publications
            .iter()
            .filter(|p| p.offset.is_none_or(|o| o > since))
            .take(query.limit)
            .cloned()
            .collect(),
    }
}

/// A broker error for each waiter (the type is not `Clone`: its sources are kept).
fn copy(e: &BrokerError) -> BrokerError {
    match e {
        BrokerError::Unavailable(m) => BrokerError::Unavailable(m),
        BrokerError::Uncertain(m) => BrokerError::Uncertain(m),
        BrokerError::Refused(m) => BrokerError::Refused(m.clone()),
        BrokerError::Unexpected(m) => BrokerError::Unexpected(m),
        BrokerError::Malformed(e) => {
            BrokerError::Refused(format!("the kept publication is malformed: {e}"))
        }
        BrokerError::Closed => BrokerError::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(since: Option<u64>, limit: usize) -> HistoryQuery {
        HistoryQuery {
            since,
            limit,
            reverse: false,
            max_age: Duration::from_secs(60),
            window: 1000,
        }
    }

    #[test]
    fn one_read_covers_every_position_asked() {
        let ask = |q| (q, oneshot::channel().0);
        let w = widest(&[ask(query(Some(90), 100)), ask(query(Some(5), 100))]);
        assert_eq!(
            (w.since, w.limit),
            (Some(5), 185),
            "far enough for the one at 90"
        );
        let w = widest(&[ask(query(Some(90), 10)), ask(query(None, 10))]);
        assert_eq!((w.since, w.limit), (None, 100));
        let w = widest(&[ask(query(None, 0)), ask(query(Some(40), 10))]);
        assert_eq!(
            (w.since, w.limit),
            (Some(40), 10),
            "a position asks for nothing more"
        );
        let w = widest(&[ask(query(None, 0)), ask(query(None, 0))]);
        assert_eq!(w.limit, 0);
    }

    #[test]
    fn each_takes_what_follows_its_own_position() {
        let channel = ChannelName::parse("c").unwrap();
        let publication = |offset| herald_broker::Publication {
            channel: channel.clone(),
            data: bytes::Bytes::from_static(b"1"),
            offset: Some(offset),
            id: herald_protocol::MessageId::new(),
            published_at_us: None,
            trace: None,
            event: None,
            exclude: None,
            user: None,
            epoch: None,
            direct: false,
        };
        let read = History {
            offset: 9,
            epoch: None,
            publications: (3..=9).map(publication).collect(),
        };
        let mine = narrowed(&read, &query(Some(6), 2));
        let offsets: Vec<_> = mine.publications.iter().filter_map(|p| p.offset).collect();
        assert_eq!((offsets, mine.offset), (vec![7, 8], 9));
    }
}

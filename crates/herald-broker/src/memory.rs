//! The embedded in-memory broker.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex as StdMutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use herald_protocol::{ChannelName, Epoch, MessageId};
use tokio::sync::Mutex;

use crate::{
    BoxFuture, Broker, BrokerError, History, HistoryKeep, HistoryQuery, Inbox, Publication,
    PublishMeta, Published, CACHE_TTL,
};

/// An in-process bus that one or several nodes join. Offsets are kept per channel on the bus,
/// so every node sees the same sequence, as they would through Redis. A channel idle for the
/// bus's offset TTL is forgotten, as its keys expire on Redis: its next publication starts
/// again at offset 1 in a new epoch.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<BusInner>,
}

#[derive(Default)]
struct BusInner {
    /// How long a channel's sequence outlives its last publication (`None`: forever).
    offset_ttl: Option<Duration>,
    /// Which nodes subscribe each channel. A plain mutex, never held across `.await`, so that
    /// subscription changes apply synchronously, in call order.
    routes: StdMutex<Routes>,
    /// Per-channel sequences, with their history. Held across delivery so that every node
    /// receives a channel's publications in offset order.
    streams: Mutex<Streams>,
    /// The last publication of channels published with `PublishMeta::cache`, and when.
    last: StdMutex<HashMap<ChannelName, (Publication, std::time::Instant)>>,
}

/// The bus's channel sequences, and when idle ones were last looked for.
#[derive(Default)]
struct Streams {
    by_channel: HashMap<ChannelName, Stream>,
    swept: Option<Instant>,
}

/// A channel's sequence on the bus: its last offset, its epoch (made with it), the
/// publications kept as its history, oldest first, and when it was last published to.
struct Stream {
    offset: u64,
    epoch: Epoch,
    kept: VecDeque<Publication>,
    touched: Instant,
}

impl Stream {
    fn new() -> Self {
        Self {
            offset: 0,
            epoch: Epoch::random(),
            kept: VecDeque::new(),
            touched: Instant::now(),
        }
    }

    /// Keeps `publication` within `keep`'s bounds, and drops what falls out of them.
    fn keep(&mut self, publication: &Publication, keep: HistoryKeep) {
        if !keep.is_on() {
            self.kept.clear();
            return;
        }
        self.kept.push_back(publication.clone());
        let size = usize::try_from(keep.size).unwrap_or(usize::MAX);
        while self.kept.len() > size {
            self.kept.pop_front();
        }
        let ttl = u64::try_from(keep.ttl.as_micros()).unwrap_or(u64::MAX);
        let now = crate::now_us();
        while self.kept.front().is_some_and(|p| {
            p.published_at_us
                .is_some_and(|at| now.saturating_sub(at) > ttl)
        }) {
            self.kept.pop_front();
        }
    }
}

/// A node subscribed to a channel: its id on the bus and where its publications go.
type Route = (u64, Arc<dyn Inbox>);

#[derive(Default)]
struct Routes {
    channels: HashMap<ChannelName, Vec<Route>>,
    inboxes: HashMap<u64, Arc<dyn Inbox>>,
    next_node: u64,
}

impl MemoryBus {
    /// A new, empty bus whose channels are never forgotten.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty bus that forgets a channel `offset_ttl` after its last publication
    /// (`Duration::ZERO`: never).
    pub fn with_offset_ttl(offset_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(BusInner {
                offset_ttl: (!offset_ttl.is_zero()).then_some(offset_ttl),
                ..BusInner::default()
            }),
        }
    }

    /// Joins a node whose publications arrive in `inbox`. The node leaves when the returned
    /// broker is dropped.
    pub fn join(&self, inbox: Arc<dyn Inbox>) -> MemoryBroker {
        let mut routes = self.inner.routes.lock().expect("routes lock");
        let node = routes.next_node;
        routes.next_node += 1;
        routes.inboxes.insert(node, inbox);
        MemoryBroker {
            bus: self.clone(),
            node,
        }
    }
}

impl Streams {
    /// Forgets the channels idle for `ttl` (`None`: never), looking at most every quarter of
    /// it (and at least every minute); gives the map's memory back when most of it went.
    fn sweep(&mut self, ttl: Option<Duration>, now: Instant) {
        let Some(ttl) = ttl else {
            return;
        };
        let every = (ttl / 4).min(Duration::from_secs(60));
        if self.swept.is_some_and(|at| now.duration_since(at) < every) {
            return;
        }
        self.swept = Some(now);
        let map = &mut self.by_channel;
        map.retain(|_, s| now.duration_since(s.touched) < ttl);
        if map.capacity() > 64 && map.len() < map.capacity() / 4 {
            map.shrink_to_fit();
        }
    }
}

/// One node's handle on a [`MemoryBus`].
pub struct MemoryBroker {
    bus: MemoryBus,
    node: u64,
}

impl MemoryBroker {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.bus.inner.routes.lock().expect("routes lock")
    }
}

impl Drop for MemoryBroker {
    fn drop(&mut self) {
        let node = self.node;
        let mut routes = self.routes();
        routes.inboxes.remove(&node);
        routes.channels.retain(|_, nodes| {
            nodes.retain(|(n, _)| *n != node);
            !nodes.is_empty()
        });
    }
}

impl Broker for MemoryBroker {
    fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        meta: PublishMeta,
    ) -> BoxFuture<'static, Result<Published, BrokerError>> {
        let inner = self.bus.inner.clone();
        let cache = meta.cache;
        Box::pin(async move {
            let mut streams = inner.streams.lock().await;
            let now = Instant::now();
            streams.sweep(inner.offset_ttl, now);
            let stream = streams
                .by_channel
                .entry(channel.clone())
                .or_insert_with(Stream::new);
            stream.offset += 1;
            stream.touched = now;
            let (offset, epoch) = (Some(stream.offset), stream.epoch.clone());
            let id = MessageId::new();
            let targets: Vec<Arc<dyn Inbox>> = {
                let routes = inner.routes.lock().expect("routes lock");
                routes
                    .channels
                    .get(&channel)
                    .map(|nodes| nodes.iter().map(|(_, inbox)| inbox.clone()).collect())
                    .unwrap_or_default()
            };
            let publication = Publication {
                channel,
                data,
                offset,
                id,
                published_at_us: Some(crate::now_us()),
                trace: meta.trace,
                event: meta.event,
                exclude: meta.exclude,
                user: meta.user,
                epoch: Some(epoch.clone()),
                direct: false,
            };
            stream.keep(&publication, meta.history);
            if cache {
                let mut last = inner.last.lock().expect("last lock");
                last.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                last.insert(
                    publication.channel.clone(),
                    (publication.clone(), std::time::Instant::now()),
                );
            }
            for inbox in targets {
                inbox.deliver(publication.clone()).await;
            }
            drop(streams);
            Ok(Published {
                id,
                offset,
                epoch: Some(epoch),
            })
        })
    }

    fn last(
        &self,
        channel: &ChannelName,
    ) -> BoxFuture<'static, Result<Option<Publication>, BrokerError>> {
        let last = self.bus.inner.last.lock().expect("last lock");
        let found = last
            .get(channel)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone());
        Box::pin(async move { Ok(found) })
    }

    fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, BrokerError>> {
        let (inner, channel) = (self.bus.inner.clone(), channel.clone());
        Box::pin(async move {
            let streams = inner.streams.lock().await;
            Ok(match streams.by_channel.get(&channel) {
                None => History {
                    offset: 0,
                    epoch: None,
                    publications: Vec::new(),
                },
                Some(stream) => History {
                    offset: stream.offset,
                    epoch: Some(stream.epoch.clone()),
                    publications: crate::history::select(
                        stream.kept.iter(),
                        &query,
                        stream.offset,
                        crate::now_us(),
                    ),
                },
            })
        })
    }

    fn occupied(&self, prefix: &str) -> BoxFuture<'static, Result<Vec<ChannelName>, BrokerError>> {
        let channels = self
            .routes()
            .channels
            .iter()
            .filter(|(c, nodes)| !nodes.is_empty() && c.as_str().starts_with(prefix))
            .map(|(c, _)| c.clone())
            .collect();
        Box::pin(async move { Ok(channels) })
    }

    fn subscribe(&self, channel: &ChannelName) -> BoxFuture<'static, Result<(), BrokerError>> {
        let node = self.node;
        let mut routes = self.routes();
        let Some(inbox) = routes.inboxes.get(&node).cloned() else {
            return Box::pin(async { Err(BrokerError::Closed) });
        };
        let nodes = routes.channels.entry(channel.clone()).or_default();
        if !nodes.iter().any(|(n, _)| *n == node) {
            nodes.push((node, inbox));
        }
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, channel: &ChannelName) {
        let node = self.node;
        let mut routes = self.routes();
        if let Some(nodes) = routes.channels.get_mut(channel) {
            nodes.retain(|(n, _)| *n != node);
            if nodes.is_empty() {
                routes.channels.remove(channel);
            }
        }
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn stats(&self) -> crate::BrokerStats {
        crate::BrokerStats::default()
    }
}

#[cfg(test)]
mod tests;

//! The embedded in-memory broker.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex},
};

use bytes::Bytes;
use herald_protocol::{ChannelName, MessageId};
use tokio::sync::Mutex;

use crate::{
    BoxFuture, Broker, BrokerError, Inbox, Publication, PublishMeta, Published, CACHE_TTL,
};

/// An in-process bus that one or several nodes join. Offsets are kept per channel on the bus,
/// so every node sees the same sequence, as they would through Redis.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<BusInner>,
}

#[derive(Default)]
struct BusInner {
    /// Which nodes subscribe each channel. A plain mutex, never held across `.await`, so that
    /// subscription changes apply synchronously, in call order.
    routes: StdMutex<Routes>,
    /// Per-channel offsets. Held across delivery so that every node receives a channel's
    /// publications in offset order.
    offsets: Mutex<HashMap<ChannelName, u64>>,
    /// The last publication of channels published with `PublishMeta::cache`, and when.
    last: StdMutex<HashMap<ChannelName, (Publication, std::time::Instant)>>,
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
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
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
            let mut offsets = inner.offsets.lock().await;
            let counter = offsets.entry(channel.clone()).or_insert(0);
            *counter += 1;
            let offset = Some(*counter);
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
                direct: false,
            };
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
            drop(offsets);
            Ok(Published { id, offset })
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
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(StdMutex<Vec<Publication>>);

    impl Inbox for Recorder {
        fn deliver(&self, p: Publication) -> BoxFuture<'_, ()> {
            self.0.lock().unwrap().push(p);
            Box::pin(async {})
        }

        fn presence(
            &self,
            _: ChannelName,
            _: herald_protocol::presence::PresenceNotice,
        ) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }

        fn gap(&self, _: ChannelName, _: &'static str) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[tokio::test]
    async fn delivers_to_subscribed_nodes_only_with_shared_offsets() {
        let bus = MemoryBus::new();
        let (ra, rb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let a = bus.join(ra.clone());
        let b = bus.join(rb.clone());
        a.subscribe(&ch("news")).await.unwrap();
        b.subscribe(&ch("news")).await.unwrap();
        b.subscribe(&ch("other")).await.unwrap();

        let p1 = a
            .publish(ch("news"), Bytes::from_static(b"1"), PublishMeta::default())
            .await
            .unwrap();
        let p2 = b
            .publish(ch("news"), Bytes::from_static(b"2"), PublishMeta::default())
            .await
            .unwrap();
        b.publish(
            ch("other"),
            Bytes::from_static(b"3"),
            PublishMeta::default(),
        )
        .await
        .unwrap();
        assert_eq!((p1.offset, p2.offset), (Some(1), Some(2)));

        let offsets = |r: &Recorder| -> Vec<(String, Option<u64>)> {
            r.0.lock()
                .unwrap()
                .iter()
                .map(|p| (p.channel.to_string(), p.offset))
                .collect()
        };
        assert_eq!(
            offsets(&ra),
            vec![("news".into(), Some(1)), ("news".into(), Some(2))]
        );
        assert_eq!(offsets(&rb).len(), 3);

        a.unsubscribe(&ch("news"));
        a.publish(ch("news"), Bytes::from_static(b"4"), PublishMeta::default())
            .await
            .unwrap();
        assert_eq!(offsets(&ra).len(), 2, "unsubscribed nodes receive nothing");
        assert_eq!(offsets(&rb).len(), 4);
        drop(b);
        let p = a
            .publish(
                ch("other"),
                Bytes::from_static(b"5"),
                PublishMeta::default(),
            )
            .await
            .unwrap();
        assert_eq!(p.offset, Some(2));
        assert_eq!(offsets(&rb).len(), 4, "a dropped node receives nothing");
    }
}

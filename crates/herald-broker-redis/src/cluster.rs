//! Redis Cluster with sharded pub/sub: one publish and one subscriber connection per master.
//!
//! A publication goes to the master owning its channel's slot (`FCALL herald_spublish`, which
//! `SPUBLISH`es inside that shard only). A channel is `SSUBSCRIBE`d on its owner's subscriber
//! connection. A manager task reads the topology (`CLUSTER SLOTS`) every few seconds and
//! whenever a link reports trouble; when a channel's owner changes (failover, slot migration)
//! it is adopted by the new owner's connection, and its subscribers get a gap notice once the
//! new subscription is confirmed.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use bytes::Bytes;
use herald_broker::{BrokerStats, Inbox};
use herald_protocol::ChannelName;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    layout::{Flavor, Layout},
    publisher::Publisher,
    slot::slot,
    subscriber::{self, Event},
    topology::Topology,
    Endpoint, RedisOptions, Shared,
};

mod broker;

/// How often the topology is read when nothing asks for it.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The two connections to one master.
struct Link {
    publisher: Publisher,
    subscriber: mpsc::UnboundedSender<subscriber::Command>,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

#[derive(Default)]
struct State {
    topology: Option<Topology>,
    links: HashMap<Endpoint, Link>,
    /// Every channel the node subscribes, and the master whose connection holds it.
    channels: HashMap<ChannelName, Endpoint>,
    /// Counters of links that were retired.
    retired: BrokerStats,
}

struct Inner {
    options: RedisOptions,
    layout: Layout,
    inbox: Arc<dyn Inbox>,
    events: mpsc::UnboundedSender<Event>,
    refresh: Notify,
    state: Mutex<State>,
    stop: CancellationToken,
}

/// A node's link to a Redis Cluster.
pub struct RedisClusterBroker {
    inner: Arc<Inner>,
    ttl: Bytes,
    _stop: DropGuard,
}

impl RedisClusterBroker {
    /// Starts the topology manager; links to the masters follow once the topology is known.
    /// `options.endpoints` are the seed nodes.
    pub fn start(options: RedisOptions, inbox: Arc<dyn Inbox>) -> Self {
        let stop = CancellationToken::new();
        let (events, events_rx) = mpsc::unbounded_channel();
        let ttl = Bytes::from(options.offset_ttl.as_secs().to_string());
        let inner = Arc::new(Inner {
            layout: Layout::new(&options.prefix),
            options,
            inbox,
            events,
            refresh: Notify::new(),
            state: Mutex::new(State::default()),
            stop: stop.clone(),
        });
        if inner.options.presence_events {
            crate::presence_events::start(
                inner.options.endpoints.clone(),
                inner.options.connector(),
                &inner.options.prefix,
                inner.inbox.clone(),
                stop.child_token(),
            );
        }
        tokio::spawn(manage(inner.clone(), events_rx));
        Self {
            inner,
            ttl,
            _stop: stop.drop_guard(),
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn link(&self, channel: &ChannelName) -> Option<(Endpoint, Publisher, Arc<Shared>)> {
        let state = self.state();
        let owner = state
            .topology
            .as_ref()?
            .owner(slot(channel.as_str().as_bytes()))?;
        let link = state.links.get(owner)?;
        Some((owner.clone(), link.publisher.clone(), link.shared.clone()))
    }

    /// Sends `command` (about `channel`) to the master of its slot, and waits for the reply.
    async fn ask(
        &self,
        channel: &ChannelName,
        command: Bytes,
    ) -> Result<crate::resp::Value, herald_broker::BrokerError> {
        let Some((_, publisher, _)) = self.link(channel) else {
            self.refresh.notify_one();
            return Err(herald_broker::BrokerError::Unavailable(
                "cluster topology not known yet",
            ));
        };
        crate::publisher::reply_within(publisher.send(command), self.options.timeout).await
    }

    fn publisher_at(&self, addr: &str) -> Option<Publisher> {
        let state = self.state();
        state
            .links
            .iter()
            .find(|(e, _)| format!("{}:{}", e.host, e.port) == addr)
            .map(|(_, l)| l.publisher.clone())
    }

    fn start_link(&self, endpoint: &Endpoint) -> Link {
        let stop = self.stop.child_token();
        let shared = Arc::new(Shared::default());
        let publisher = Publisher::start(
            endpoint.clone(),
            self.options.connector(),
            shared.clone(),
            stop.clone(),
        );
        let subscriber = subscriber::start(
            subscriber::Setup {
                endpoint: endpoint.clone(),
                connector: self.options.connector(),
                flavor: Flavor::Sharded,
                layout: self.layout.clone(),
                inbox: self.inbox.clone(),
                shared: shared.clone(),
                events: Some(self.events.clone()),
            },
            stop.clone(),
        );
        Link {
            publisher,
            subscriber,
            shared,
            _stop: stop.drop_guard(),
        }
    }

    /// Brings links and channel placement in line with `topology`.
    fn apply(&self, topology: Topology, lost: &mut HashSet<ChannelName>) {
        let mut state = self.state();
        for master in &topology.masters {
            if !state.links.contains_key(master) {
                tracing::info!(redis = %master, "new cluster master");
                let link = self.start_link(master);
                state.links.insert(master.clone(), link);
            }
        }
        let mut moves = Vec::new();
        for (channel, holder) in &state.channels {
            let Some(owner) = topology.owner(slot(channel.as_str().as_bytes())) else {
                continue;
            };
            if owner != holder || lost.contains(channel) {
                moves.push((channel.clone(), holder.clone(), owner.clone()));
            }
        }
        lost.clear();
        for (channel, from, to) in moves {
            if from != to {
                if let Some(old) = state.links.get(&from) {
                    let _ = old.subscriber.send(subscriber::Command::Unsubscribe {
                        channel: channel.clone(),
                    });
                }
            }
            if let Some(new) = state.links.get(&to) {
                let _ = new.subscriber.send(subscriber::Command::Subscribe {
                    channel: channel.clone(),
                    ack: None,
                });
            }
            tracing::info!(%channel, from = %from, to = %to, "channel moved to its new master");
            state.channels.insert(channel, to);
        }
        let gone: Vec<Endpoint> = state
            .links
            .keys()
            .filter(|e| !topology.masters.contains(e))
            .cloned()
            .collect();
        for endpoint in gone {
            if let Some(link) = state.links.remove(&endpoint) {
                tracing::info!(redis = %endpoint, "master left the cluster topology");
                state.retired = state.retired.plus(link.shared.stats());
            }
        }
        state.topology = Some(topology);
    }
}

async fn manage(inner: Arc<Inner>, mut events: mpsc::UnboundedReceiver<Event>) {
    let mut lost = HashSet::new();
    loop {
        let nodes: Vec<Endpoint> = {
            let state = inner.state();
            state
                .topology
                .iter()
                .flat_map(|t| t.masters.iter().cloned())
                .chain(inner.options.endpoints.iter().cloned())
                .collect()
        };
        match Topology::fetch(&nodes, &inner.options.connector()).await {
            Ok(topology) => inner.apply(topology, &mut lost),
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster topology"),
        }
        // Wait for a reason to look again, then let a burst of reports settle.
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = inner.refresh.notified() => {}
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
            event = events.recv() => match event {
                Some(Event::Lost(channel)) => { lost.insert(channel); }
                Some(Event::Refresh) => {}
                None => return,
            },
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(event) = events.try_recv() {
            if let Event::Lost(channel) = event {
                lost.insert(channel);
            }
        }
    }
}

/// `MOVED 3999 127.0.0.1:6381` -> `127.0.0.1:6381`.
fn moved_to(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("MOVED ")
        .or_else(|| message.strip_prefix("ASK "))?;
    rest.split_whitespace().nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redirections() {
        assert_eq!(
            moved_to("MOVED 3999 127.0.0.1:6381"),
            Some("127.0.0.1:6381")
        );
        assert_eq!(moved_to("ASK 3999 10.0.0.1:7000"), Some("10.0.0.1:7000"));
        assert_eq!(moved_to("ERR other"), None);
    }
}

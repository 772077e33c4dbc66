//! The cluster broker's operations: publish to the channel's master (following one `MOVED`),
//! read a cache channel's last publication, list the occupied channels of every master, and
//! subscribe on the owner's subscriber connection.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use herald_broker::{
    BoxFuture, Broker, BrokerError, BrokerStats, History, HistoryQuery, Publication, PublishMeta,
    Published,
};
use herald_protocol::{ChannelName, Epoch, MessageId};

use super::{moved_to, RedisClusterBroker};
use crate::{
    layout::PublishFunction,
    resp::Value,
    subscriber::{self},
    topology::Topology,
};

impl Broker for RedisClusterBroker {
    fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        meta: PublishMeta,
    ) -> BoxFuture<'static, Result<Published, BrokerError>> {
        let inner = self.inner.clone();
        let id = MessageId::new();
        let command = inner.layout.publish_command(
            PublishFunction::Sharded,
            &channel,
            &data,
            id,
            &self.ttl,
            &meta,
        );
        let timeout = inner.options.timeout;
        Box::pin(async move {
            let Some((_, mut publisher, _)) = inner.link(&channel) else {
                inner.refresh.notify_one();
                return Err(BrokerError::Unavailable("cluster topology not known yet"));
            };
            // One retry at the node a MOVED names: the first attempt was not executed.
            for attempt in 0..2 {
                let sent = publisher.send(command.clone());
                let reply = crate::publisher::reply_within(sent, timeout).await?;
                match reply {
                    Value::Array(_) => {
                        return crate::envelope::position_of(id, &reply)
                            .ok_or(BrokerError::Unexpected("FCALL"));
                    }
                    Value::Error(message) => {
                        inner.refresh.notify_one();
                        match moved_to(&message).and_then(|a| inner.publisher_at(a)) {
                            Some(next) if attempt == 0 => publisher = next,
                            _ if message.starts_with("MOVED")
                                || message.starts_with("ASK")
                                || message.starts_with("CLUSTERDOWN")
                                || message.starts_with("TRYAGAIN") =>
                            {
                                return Err(BrokerError::Unavailable("cluster is reconfiguring"))
                            }
                            _ => return Err(BrokerError::Refused(message)),
                        }
                    }
                    _ => return Err(BrokerError::Unexpected("FCALL")),
                }
            }
            Err(BrokerError::Unavailable("cluster is reconfiguring"))
        })
    }

    fn last(
        &self,
        channel: &ChannelName,
    ) -> BoxFuture<'static, Result<Option<Publication>, BrokerError>> {
        let inner = self.inner.clone();
        let (channel, command) = (channel.clone(), inner.layout.last_command(channel));
        Box::pin(async move {
            let reply = inner.ask(&channel, command).await?;
            crate::envelope::last_of(&channel, reply)
        })
    }

    fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, BrokerError>> {
        let inner = self.inner.clone();
        let (channel, command) = (
            channel.clone(),
            inner.layout.history_command(channel, &query),
        );
        Box::pin(async move {
            let reply = inner.ask(&channel, command).await?;
            crate::envelope::history_of(&channel, reply)
        })
    }

    fn new_epoch(
        &self,
        channel: &ChannelName,
        seen: &Epoch,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        let inner = self.inner.clone();
        let (channel, command) = (
            channel.clone(),
            inner.layout.new_epoch_command(channel, seen),
        );
        Box::pin(async move {
            match inner.ask(&channel, command).await? {
                Value::Error(message) => Err(BrokerError::Refused(message)),
                _ => Ok(()),
            }
        })
    }

    fn occupied(&self, prefix: &str) -> BoxFuture<'static, Result<Vec<ChannelName>, BrokerError>> {
        // Every master, for the shard channels of its slots.
        let command = self.inner.layout.occupied_command(true, prefix);
        let sent: Result<Vec<_>, BrokerError> = self
            .inner
            .state()
            .links
            .values()
            .map(|link| link.publisher.send(command.clone()))
            .collect();
        let (layout, timeout) = (self.inner.layout.clone(), self.inner.options.timeout);
        Box::pin(async move {
            let sent = sent?;
            if sent.is_empty() {
                return Err(BrokerError::Unavailable("cluster topology not known yet"));
            }
            let mut channels = Vec::new();
            for answer in sent {
                let reply = crate::publisher::reply_within(Ok(answer), timeout).await?;
                channels.extend(
                    layout
                        .channels_in(&reply)
                        .ok_or_else(|| BrokerError::Unexpected("PUBSUB SHARDCHANNELS"))?,
                );
            }
            Ok(channels)
        })
    }

    fn subscribe(&self, channel: &ChannelName) -> BoxFuture<'static, Result<(), BrokerError>> {
        let inner = self.inner.clone();
        let Some((owner, _, shared)) = inner.link(channel) else {
            return Box::pin(async {
                Err(BrokerError::Unavailable("cluster topology not known yet"))
            });
        };
        if !shared.subscriber_up.load(Ordering::Relaxed) {
            return Box::pin(async { Err(BrokerError::Unavailable("redis is not connected")) });
        }
        let (ack, answer) = tokio::sync::oneshot::channel();
        let sent = {
            let mut state = inner.state();
            state.channels.insert(channel.clone(), owner.clone());
            state.links.get(&owner).map(|l| {
                l.subscriber.send(subscriber::Command::Subscribe {
                    channel: channel.clone(),
                    ack: Some(ack),
                })
            })
        };
        let channel = channel.clone();
        let timeout = inner.options.timeout;
        Box::pin(async move {
            let result = async {
                sent.ok_or(BrokerError::Closed)?
                    .map_err(|_| BrokerError::Closed)?;
                tokio::time::timeout(timeout, answer)
                    .await
                    .map_err(|_| {
                        BrokerError::Unavailable("redis did not confirm the subscription")
                    })?
                    .map_err(|_| BrokerError::Closed)?
            }
            .await;
            if result.is_err() {
                let mut state = inner.state();
                if state.channels.get(&channel) == Some(&owner) {
                    state.channels.remove(&channel);
                }
            }
            result
        })
    }

    fn unsubscribe(&self, channel: &ChannelName) {
        let mut state = self.inner.state();
        if let Some(holder) = state.channels.remove(channel) {
            if let Some(link) = state.links.get(&holder) {
                let _ = link.subscriber.send(subscriber::Command::Unsubscribe {
                    channel: channel.clone(),
                });
            }
        }
    }

    fn is_ready(&self) -> bool {
        let state = self.inner.state();
        state.topology.as_ref().is_some_and(Topology::is_complete)
            && !state.links.is_empty()
            && state.links.values().all(|l| {
                l.shared.publisher_up.load(Ordering::Relaxed)
                    && l.shared.subscriber_up.load(Ordering::Relaxed)
            })
    }

    fn stats(&self) -> BrokerStats {
        let state = self.inner.state();
        state
            .links
            .values()
            .map(|l| l.shared.stats())
            .fold(state.retired, BrokerStats::plus)
    }
}

//! The hub at run time: one task per shard, each on a thread of its own, owning a
//! [`HubShard`] and fed by a bounded command channel. Channels are assigned to shards by hash,
//! so a channel's publications are always handled by one task, in order.

mod command;
mod framing;
mod history_reads;
mod request;
mod shard_task;
mod thread;

use std::sync::Arc;

use herald_broker::{BoxFuture, Inbox, Publication};
use herald_hub::shard_of;
use herald_presence_core::UserId;
use herald_protocol::{presence::PresenceNotice, ChannelName, ConnId};
use tokio::sync::mpsc;

pub(crate) use command::ShardCommand;
pub(crate) use framing::{Framing, Framings};
pub(crate) use history_reads::HistoryReads;
pub(crate) use request::{Answer, Reads, Settled, SubscribeRequest};
pub(crate) use shard_task::{spawn_shards, ShardEnv};

/// Capacity of each shard's command channel. Senders wait when it is full, so a busy shard
/// slows its producers (connections, the broker) instead of queueing without bound.
const SHARD_QUEUE: usize = 4096;

/// The handle that connections and the broker use to reach the shards.
#[derive(Clone)]
pub(crate) struct Hub {
    shards: Arc<[mpsc::Sender<ShardCommand>]>,
}

impl Hub {
    /// The handle and the receivers for [`spawn_shards`].
    pub(crate) fn new(count: usize) -> (Self, Vec<mpsc::Receiver<ShardCommand>>) {
        let (senders, receivers) = (0..count.max(1))
            .map(|_| mpsc::channel(SHARD_QUEUE))
            .unzip::<_, _, Vec<_>, Vec<_>>();
        (
            Self {
                shards: senders.into(),
            },
            receivers,
        )
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub(crate) fn shard_index(&self, channel: &ChannelName) -> usize {
        shard_of(channel, self.shards.len())
    }

    /// The bit of `shard` in a set of shards (a `u64`, bit `i % 64` for shard `i`).
    pub(crate) fn shard_bit(shard: usize) -> u64 {
        1 << (shard % 64)
    }

    /// The shards in `set` ([`Hub::shard_bit`]).
    pub(crate) fn shards_in(&self, set: u64) -> impl Iterator<Item = usize> {
        (0..self.shards.len()).filter(move |s| set & Self::shard_bit(*s) != 0)
    }

    async fn send(&self, shard: usize, command: ShardCommand) {
        // A send fails only once the node is stopping and its shards are gone.
        let _ = self.shards[shard].send(command).await;
    }

    /// Subscribes `conn` to `channel` for `request`, whose sink receives the channel's frames.
    pub(crate) async fn subscribe(
        &self,
        conn: ConnId,
        channel: ChannelName,
        request: &Arc<SubscribeRequest>,
    ) {
        let shard = self.shard_index(&channel);
        let command = ShardCommand::Subscribe {
            conn,
            sink: request.subscriber(&channel),
            channel,
            request: request.clone(),
        };
        self.send(shard, command).await;
    }

    /// Unsubscribes `conn` from `channel`; `member` is the user it leaves the channel's
    /// presence as, if it is one.
    pub(crate) async fn unsubscribe(
        &self,
        conn: ConnId,
        channel: ChannelName,
        member: Option<UserId>,
    ) {
        let shard = self.shard_index(&channel);
        let command = ShardCommand::Unsubscribe {
            conn,
            channel,
            member,
        };
        self.send(shard, command).await;
    }

    /// Resolves once `shard` has handled every command sent to it before this call.
    pub(crate) async fn sync(&self, shard: usize) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(shard, ShardCommand::Sync(tx)).await;
        // An error: the shard is gone, the node stopping.
        let _ = rx.await;
    }

    /// `conn` is gone from `shard`; with `presence`, it leaves the presence channels it is in.
    pub(crate) async fn disconnect(&self, conn: ConnId, shard: usize, presence: bool) {
        self.send(shard, ShardCommand::Disconnect { conn, presence })
            .await;
    }

    pub(crate) fn weak(&self, shard: usize) -> mpsc::WeakSender<ShardCommand> {
        self.shards[shard].downgrade()
    }
}

impl Inbox for Hub {
    fn deliver(&self, publication: Publication) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let shard = self.shard_index(&publication.channel);
            self.send(shard, ShardCommand::Publication(Box::new(publication)))
                .await;
        })
    }

    fn presence(&self, channel: ChannelName, notice: PresenceNotice) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let shard = self.shard_index(&channel);
            self.send(shard, ShardCommand::Presence { channel, notice })
                .await;
        })
    }

    fn presence_lost(&self, reason: &'static str) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Every shard tells every channel it holds: clients query presence again.
            for shard in 0..self.shards.len() {
                self.send(shard, ShardCommand::GapAll { reason }).await;
            }
        })
    }

    fn gap(&self, channel: ChannelName, reason: &'static str) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let shard = self.shard_index(&channel);
            self.send(shard, ShardCommand::Gap { channel, reason })
                .await;
        })
    }
}

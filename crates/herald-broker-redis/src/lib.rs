//! Herald's Redis broker.
//!
//! A node keeps two connections to Redis (to each master of a Redis Cluster, see
//! [`RedisClusterBroker`]), whatever its number of clients: a pipelined publish connection,
//! and a pub/sub connection subscribed to exactly the channels that have local subscribers. Publications are sequenced by the `herald_publish` Redis function (installed on
//! connecting), which increments the channel's offset and publishes the envelope atomically, so
//! every node sees the same offsets. Both connections reconnect with jittered backoff; after a
//! reconnect every channel is subscribed again and its local subscribers get a gap notice. A
//! stalled Redis is noticed by timeouts (requests, PINGs), and nothing queues without bound
//! while it is away: publishes fail at once. In sentinel mode every connection is opened to
//! the master the sentinels name (`sentinel`), and follows their failovers.
//!
//! Speaks RESP2 itself (see `resp`) rather than through a client library: the broker needs to
//! see every disconnect and every subscription confirmation to keep its no-silent-loss
//! promise, and that is most of what a client library would hide. May depend on tokio and
//! herald-broker; never on the gateway.

mod cluster;
mod conn;
mod envelope;
mod layout;
mod presence;
mod presence_events;
mod publisher;
mod resp;
mod sentinel;
mod settings;
mod slot;
mod subscriber;
mod tls;
mod topology;
mod url;
mod webhooks;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use herald_broker::{
    BoxFuture, Broker, BrokerError, BrokerStats, History, HistoryQuery, Inbox, Publication,
    PublishMeta, Published,
};
use herald_protocol::{ChannelName, Epoch, MessageId};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use cluster::RedisClusterBroker;
pub use conn::LinkError;
pub use presence::{JoinOutcome, PresenceError, RedisPresence, TableMode};
pub use resp::ProtocolError;
pub use settings::{RedisMode, RedisSetting, RedisSettings, SettingError};
pub use tls::{TlsConfig, TlsError};
pub use url::{Endpoint, SentinelUrl, UrlError};
pub use webhooks::WebhookEntry;

use layout::{Layout, PublishFunction};
use publisher::Publisher;
use resp::Value;

/// How to reach Redis and lay things out in it.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// The Redis server; in cluster mode, the seed nodes.
    pub endpoints: Vec<Endpoint>,
    /// Prefix of every key and channel, so that deployments can share a Redis.
    pub prefix: String,
    /// How long any request may wait for Redis before the connection is considered stalled.
    pub timeout: Duration,
    /// How long a channel's offset counter lives after its last publication (0: forever).
    pub offset_ttl: Duration,
    /// TLS settings for `rediss://` endpoints (the Mozilla roots when `None`).
    pub tls: Option<TlsConfig>,
    /// Cluster mode: also receive the presence table's notices (they travel on one channel of
    /// their own there). Set it on nodes with presence channels.
    pub presence_events: bool,
    /// Replicas a publication must reach before it is acknowledged (Redis `WAIT`, within a
    /// quarter of `timeout`; 0: none). With 1 or more, a failover loses no acknowledged
    /// publication; a publication that did not reach them in time fails as uncertain.
    pub wait_replicas: u32,
    /// Sentinel mode: the sentinels say which server `endpoints[0]` (the master's credentials)
    /// is; see [`RedisOptions::with_sentinels`].
    pub(crate) sentinel: Option<Arc<sentinel::Sentinels>>,
}

impl RedisOptions {
    /// Options for `endpoints`, with TLS set up (trusting `tls_ca_file`, else the Mozilla
    /// roots) when any of them is `rediss://`. Offsets never expire: set `offset_ttl` after.
    ///
    /// # Errors
    /// [`TlsError`] when the CA file cannot be used.
    pub fn new(
        endpoints: Vec<Endpoint>,
        prefix: &str,
        timeout: Duration,
        tls_ca_file: Option<&std::path::Path>,
    ) -> Result<Self, TlsError> {
        let tls = if endpoints.iter().any(|e| e.tls) {
            Some(TlsConfig::new(tls_ca_file)?)
        } else {
            None
        };
        Ok(Self {
            endpoints,
            prefix: prefix.to_owned(),
            timeout,
            offset_ttl: Duration::ZERO,
            tls,
            presence_events: false,
            wait_replicas: 0,
            sentinel: None,
        })
    }

    /// Options for a Sentinel deployment: every connection asks `url`'s sentinels (with
    /// `sentinel_password`) for the master and connects there.
    ///
    /// # Errors
    /// When the CA file cannot be read.
    pub fn with_sentinels(
        url: SentinelUrl,
        sentinel_password: Option<&str>,
        prefix: &str,
        timeout: Duration,
        tls_ca_file: Option<&std::path::Path>,
    ) -> Result<Self, TlsError> {
        let sentinels = url
            .sentinels
            .into_iter()
            .map(|e| Endpoint {
                password: sentinel_password.map(str::to_owned),
                ..e
            })
            .collect();
        let mut options = Self::new(vec![url.redis], prefix, timeout, tls_ca_file)?;
        options.sentinel = Some(sentinel::Sentinels::new(sentinels, url.master));
        Ok(options)
    }

    /// Whether `prefix` can prefix Herald's keys: non-empty, without braces (they would
    /// change Redis Cluster hash slots) or whitespace.
    ///
    /// # Errors
    /// Why it cannot.
    pub fn check_prefix(prefix: &str) -> Result<(), &'static str> {
        if prefix.is_empty() || prefix.contains(['{', '}']) || prefix.contains(char::is_whitespace)
        {
            Err("must be non-empty, without braces or spaces")
        } else {
            Ok(())
        }
    }

    pub(crate) fn connector(&self) -> conn::Connector {
        conn::Connector {
            timeout: self.timeout,
            tls: self.tls.clone(),
            wait_replicas: self.wait_replicas,
            locate: self.sentinel.clone().map(|s| s as Arc<dyn conn::Locate>),
        }
    }
}

/// State shared by the broker handle and its connection tasks.
#[derive(Default)]
pub(crate) struct Shared {
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    malformed: AtomicU64,
    reconnects: AtomicU64,
    gaps: AtomicU64,
    publish_writes: AtomicU64,
    publish_commands: AtomicU64,
}

impl Shared {
    pub(crate) fn stats(&self) -> BrokerStats {
        BrokerStats {
            malformed: self.malformed.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            publish_writes: self.publish_writes.load(Ordering::Relaxed),
            publish_commands: self.publish_commands.load(Ordering::Relaxed),
        }
    }
}

/// A node's link to standalone Redis.
pub struct RedisBroker {
    layout: Layout,
    publisher: Publisher,
    subscriber: mpsc::UnboundedSender<subscriber::Command>,
    shared: Arc<Shared>,
    timeout: Duration,
    ttl: Bytes,
    _stop: DropGuard,
}

impl RedisBroker {
    /// Starts the connection tasks (they run until the broker is dropped). Returns at once:
    /// the broker reports not ready until both connections are up. Uses the first endpoint.
    ///
    /// # Panics
    /// When `options.endpoints` is empty.
    pub fn start(options: RedisOptions, inbox: Arc<dyn Inbox>) -> Self {
        let endpoint = options.endpoints.first().expect("one endpoint").clone();
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared::default());
        let layout = Layout::new(&options.prefix);
        let publisher = Publisher::start(
            endpoint.clone(),
            options.connector(),
            shared.clone(),
            stop.clone(),
        );
        let subscriber = subscriber::start(
            subscriber::Setup {
                endpoint,
                connector: options.connector(),
                flavor: layout::Flavor::Plain,
                layout: layout.clone(),
                inbox,
                shared: shared.clone(),
                events: None,
            },
            stop.clone(),
        );
        Self {
            layout,
            publisher,
            subscriber,
            shared,
            timeout: options.timeout,
            ttl: Bytes::from(options.offset_ttl.as_secs().to_string()),
            _stop: stop.drop_guard(),
        }
    }
}

impl Broker for RedisBroker {
    fn publish(
        &self,
        channel: ChannelName,
        data: Bytes,
        meta: PublishMeta,
    ) -> BoxFuture<'static, Result<Published, BrokerError>> {
        let id = MessageId::new();
        let command = self.layout.publish_command(
            PublishFunction::Plain,
            &channel,
            &data,
            id,
            &self.ttl,
            &meta,
        );
        let sent = self.publisher.send(command);
        let timeout = self.timeout;
        Box::pin(async move {
            let reply = crate::publisher::reply_within(sent, timeout).await?;
            match reply {
                Value::Error(message) => Err(BrokerError::Refused(message)),
                reply => envelope::position_of(id, &reply).ok_or(BrokerError::Unexpected("FCALL")),
            }
        })
    }

    fn last(
        &self,
        channel: &ChannelName,
    ) -> BoxFuture<'static, Result<Option<Publication>, BrokerError>> {
        let sent = self.publisher.send(self.layout.last_command(channel));
        let (channel, timeout) = (channel.clone(), self.timeout);
        Box::pin(async move {
            let reply = crate::publisher::reply_within(sent, timeout).await?;
            envelope::last_of(&channel, reply)
        })
    }

    fn history(
        &self,
        channel: &ChannelName,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<History, BrokerError>> {
        let sent = self
            .publisher
            .send(self.layout.history_command(channel, &query));
        let (channel, timeout) = (channel.clone(), self.timeout);
        Box::pin(async move {
            let reply = crate::publisher::reply_within(sent, timeout).await?;
            envelope::history_of(&channel, reply)
        })
    }

    fn new_epoch(
        &self,
        channel: &ChannelName,
        seen: &Epoch,
    ) -> BoxFuture<'static, Result<(), BrokerError>> {
        let sent = self
            .publisher
            .send(self.layout.new_epoch_command(channel, seen));
        let timeout = self.timeout;
        Box::pin(async move {
            match crate::publisher::reply_within(sent, timeout).await? {
                Value::Error(message) => Err(BrokerError::Refused(message)),
                _ => Ok(()),
            }
        })
    }

    fn occupied(&self, prefix: &str) -> BoxFuture<'static, Result<Vec<ChannelName>, BrokerError>> {
        let sent = self
            .publisher
            .send(self.layout.occupied_command(false, prefix));
        let (layout, timeout) = (self.layout.clone(), self.timeout);
        Box::pin(async move {
            let reply = crate::publisher::reply_within(sent, timeout).await?;
            layout
                .channels_in(&reply)
                .ok_or_else(|| BrokerError::Unexpected("PUBSUB CHANNELS"))
        })
    }

    fn subscribe(&self, channel: &ChannelName) -> BoxFuture<'static, Result<(), BrokerError>> {
        if !self.shared.subscriber_up.load(Ordering::Relaxed) {
            return Box::pin(async { Err(BrokerError::Unavailable("redis is not connected")) });
        }
        let (ack, answer) = tokio::sync::oneshot::channel();
        let sent = self.subscriber.send(subscriber::Command::Subscribe {
            channel: channel.clone(),
            ack: Some(ack),
        });
        let timeout = self.timeout;
        Box::pin(async move {
            sent.map_err(|_| BrokerError::Closed)?;
            tokio::time::timeout(timeout, answer)
                .await
                .map_err(|_| BrokerError::Unavailable("redis did not confirm the subscription"))?
                .map_err(|_| BrokerError::Closed)?
        })
    }

    fn unsubscribe(&self, channel: &ChannelName) {
        let _ = self.subscriber.send(subscriber::Command::Unsubscribe {
            channel: channel.clone(),
        });
    }

    fn is_ready(&self) -> bool {
        self.shared.publisher_up.load(Ordering::Relaxed)
            && self.shared.subscriber_up.load(Ordering::Relaxed)
    }

    fn stats(&self) -> BrokerStats {
        self.shared.stats()
    }
}

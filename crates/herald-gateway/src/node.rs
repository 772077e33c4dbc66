//! One gateway node's life, from start to drained exit: it builds what its tasks share
//! ([`NodeCtx`]) and wires the hub, the broker, presence, webhooks and both listeners.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use herald_broker::{Inbox, MemoryBus, SharedBroker};
use herald_broker_redis::{RedisBroker, RedisClusterBroker, RedisPresence, TableMode};
use herald_protocol::{EventName, NodeId, WireFormat};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub(crate) use crate::ctx::NodeCtx;
use crate::{
    api,
    auth::Auth,
    cluster,
    config::{BrokerKind, GatewayConfig, RedisMode},
    hub::{spawn_shards, Framings, Hub, ShardEnv},
    metrics::Metrics,
    native::NativeFraming,
    presence::{EmitHook, Presence, Store},
    pusher::PusherFraming,
    telemetry::Telemetry,
    webhooks::{Queue, Webhooks},
    ws, GatewayError,
};

/// The node's two bound listeners. Bind them first (port 0 works) to learn the addresses.
pub struct Listeners {
    websocket: TcpListener,
    api: TcpListener,
}

impl Listeners {
    /// Binds `listen.websocket` and `listen.api`.
    ///
    /// # Errors
    /// When either address cannot be bound.
    pub async fn bind(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind { addr, source })
        };
        Ok(Self {
            websocket: bind(config.listen.websocket).await?,
            api: bind(config.listen.api).await?,
        })
    }

    /// The WebSocket listener's address.
    pub fn websocket_addr(&self) -> SocketAddr {
        self.websocket.local_addr().expect("bound listener")
    }

    /// The HTTP API listener's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr().expect("bound listener")
    }
}

/// Runs a node with the broker its configuration names until `shutdown` is cancelled, then
/// drains it: not ready, stop accepting, close clients with 4000 spread over
/// `shutdown.drain_window`, and return within `shutdown.grace_period`.
///
/// # Errors
/// [`GatewayError`] when the node cannot start.
pub async fn run(
    config: GatewayConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let config = config.with_demo_namespace();
    match config.broker.kind {
        BrokerKind::Memory => {
            let bus = MemoryBus::with_offset_ttl(config.broker.memory.offset_ttl);
            run_on_bus(config, listeners, &bus, shutdown).await
        }
        BrokerKind::Redis => {
            let redis = &config.broker.redis;
            let mut options = redis.options()?;
            let mode = redis.mode;
            // Nodes without presence channels keep no presence table in Redis (nor a
            // connection for it).
            // Pusher's `presence-` channels are presence channels whatever the namespaces say.
            let any_presence = config.channels.presence
                || config.namespaces.values().any(|n| n.presence)
                || !config.pusher.apps.is_empty();
            let table = match mode {
                RedisMode::Standalone | RedisMode::Sentinel => TableMode::Standalone,
                RedisMode::Cluster => TableMode::Cluster,
            };
            options.presence_events = any_presence && mode == RedisMode::Cluster;
            let hooks = config.pusher.apps.iter().any(|a| !a.webhooks.is_empty());
            let tables = RedisTables {
                presence: any_presence.then(|| RedisPresence::new(&options, table)),
                webhooks: hooks.then(|| {
                    let readers = (0..Webhooks::count(&config.pusher))
                        .map(|_| RedisPresence::new(&options, table))
                        .collect();
                    (RedisPresence::new(&options, table), readers)
                }),
            };
            run_with(
                config,
                listeners,
                shutdown,
                tables,
                move |inbox| match mode {
                    RedisMode::Standalone | RedisMode::Sentinel => {
                        Arc::new(RedisBroker::start(options, inbox))
                    }
                    RedisMode::Cluster => Arc::new(RedisClusterBroker::start(options, inbox)),
                },
            )
            .await
        }
    }
}

/// [`run`] on a shared in-memory bus: several nodes in one process form a cluster.
///
/// # Errors
/// As [`run`].
pub async fn run_on_bus(
    config: GatewayConfig,
    listeners: Listeners,
    bus: &MemoryBus,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    run_with(
        config.with_demo_namespace(),
        listeners,
        shutdown,
        RedisTables::default(),
        |inbox| Arc::new(bus.join(inbox)),
    )
    .await
}

/// The clients of the presence table in Redis a node uses, if any.
#[derive(Default)]
struct RedisTables {
    /// Reports and queries (none: the table is in the process).
    presence: Option<RedisPresence>,
    /// The webhook queue's writer, and a reader per webhook, when some app has webhooks.
    webhooks: Option<(RedisPresence, Vec<RedisPresence>)>,
}

async fn run_with(
    config: GatewayConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
    redis: RedisTables,
    connect: impl FnOnce(Arc<dyn Inbox>) -> SharedBroker,
) -> Result<(), GatewayError> {
    let node_id = NodeId::random();
    let node_name = config
        .node
        .id
        .as_ref()
        .map_or_else(|| node_id.to_string(), ToString::to_string);
    let metrics = Arc::new(Metrics::default());
    let telemetry = Arc::new(Telemetry::start(
        &config.telemetry,
        &node_name,
        metrics.trace_exports_failed.clone(),
    )?);
    let (hub, receivers) = Hub::new(config.shard_count());
    let (inbox, control) = cluster::split(Arc::new(hub.clone()));
    let broker = connect(inbox);

    let background = TaskTracker::new();
    let stop_background = CancellationToken::new();
    // Whichever way this function returns, the shards and the other background tasks stop.
    let _stop_background = stop_background.clone().drop_guard();
    // Validated with the configuration; a configuration built by hand falls back.
    let pusher_event = EventName::parse(&config.pusher.default_event)
        .unwrap_or_else(|_| EventName::parse("message").expect("a valid name"));
    let queue = match redis.webhooks {
        Some((writer, readers)) => Queue::Redis {
            writer: Arc::new(writer),
            readers,
            consumer: node_id.to_string(),
        },
        None => Queue::Embedded,
    };
    let webhooks = Webhooks::start(
        &config.pusher,
        queue,
        metrics.clone(),
        &stop_background,
        &background,
    );
    let store = match redis.presence {
        Some(redis) => Store::Redis(Arc::new(redis)),
        None => Store::embedded(
            config.presence.lease,
            Arc::new(hub.clone()),
            webhooks
                .clone()
                .map(|hooks| -> EmitHook { Arc::new(move |e| hooks.emit(e)) }),
        ),
    };
    let presence = Presence::start(
        node_id,
        store,
        webhooks.is_some(),
        (config.presence.lease, config.presence.heartbeat_interval),
        metrics.clone(),
        stop_background.clone(),
        &background,
    );
    let occupancy = webhooks.as_ref().is_some_and(|w| {
        use herald_pusher::webhook::EventKind;
        w.wants(EventKind::ChannelOccupied) || w.wants(EventKind::ChannelVacated)
    });
    let shard_env = ShardEnv {
        broker: broker.clone(),
        metrics: metrics.clone(),
        telemetry: telemetry.clone(),
        framings: Framings::new(
            Arc::new(NativeFraming(WireFormat::Json)),
            Arc::new(NativeFraming(WireFormat::MsgPack)),
            Arc::new(PusherFraming {
                default_event: pusher_event.clone(),
            }),
            Arc::new(crate::sse::SseFraming),
        ),
        history_of: {
            let config = config.clone();
            Arc::new(move |channel: &herald_protocol::ChannelName| {
                config
                    .namespace_of(channel)
                    .map(|ns| ns.history())
                    .unwrap_or_default()
            })
        },
        history_reads: crate::hub::HistoryReads::new(broker.clone(), metrics.clone()),
        node_tag: node_id.tag(),
        reports: presence.reports(),
        occupancy,
        // Pusher's `subscription_count`, cluster-wide.
        counting: config.pusher.subscription_count,
        presence: presence.clone(),
    };
    spawn_shards(&hub, receivers, &shard_env, &background, &stop_background)
        .map_err(GatewayError::HubThread)?;
    let auth = Auth::new(&config.auth, config.presence.max_info_size)?;
    let tls = match (
        &config.websocket.tls_cert_file,
        &config.websocket.tls_key_file,
    ) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    if config.auth.anonymous {
        tracing::warn!(
            "auth.anonymous = true: connections without a token are accepted; set it to false \
             (with auth.keys) on a node that faces the internet"
        );
    }
    let config_apps = config.pusher.apps.len();
    let cluster = Arc::new(cluster::Cluster::new(
        broker.clone(),
        metrics.clone(),
        node_name.clone(),
        node_id.tag(),
    ));
    let ctx = Arc::new(NodeCtx {
        config,
        node_id,
        node_name,
        hub,
        broker,
        metrics,
        presence,
        auth,
        tls,
        telemetry: telemetry.clone(),
        pusher_event,
        webhooks,
        draining: AtomicBool::new(false),
        next_conn: AtomicU64::new(1),
        app_slots: (0..config_apps).map(|_| AtomicUsize::new(0)).collect(),
        slots: AtomicUsize::new(0),
        cluster,
    });
    tracing::info!(
        node_id = %ctx.node_name,
        websocket = %listeners.websocket_addr(),
        api = %listeners.api_addr(),
        shards = ctx.hub.shard_count(),
        "gateway listening"
    );
    crate::pusher::log_apps(&ctx.config.pusher);
    background.spawn(cluster::run(
        ctx.cluster.clone(),
        control,
        {
            let ctx = ctx.clone();
            move || ctx.state()
        },
        stop_background.clone(),
    ));
    let websocket = listeners.websocket_addr();
    background.spawn(api::serve(
        listeners.api,
        ctx.clone(),
        websocket,
        stop_background.clone(),
    ));

    let connections = TaskTracker::new();
    let kill = CancellationToken::new();
    let stops = ws::Stops::following(&shutdown, &kill, &stop_background, &background);
    // The accept loop runs as a task on the runtime's worker, not on the thread that waits
    // for the node to end: a connection it spawns then starts on the same thread, with no
    // wake-up of another one per connection.
    let accepting = tokio::spawn(ws::serve(
        listeners.websocket,
        ctx.clone(),
        connections.clone(),
        shutdown.clone(),
        stops,
    ));
    if let Err(e) = accepting.await {
        tracing::error!(error = %e, "the WebSocket accept loop failed");
    }

    // Draining: the accept loop has stopped; each connection closes itself at a random moment
    // of the drain window.
    let started = Instant::now();
    ctx.draining.store(true, Ordering::Relaxed);
    // The other nodes' `GET /v1/info` says so at once.
    background.spawn({
        let ctx = ctx.clone();
        async move { ctx.cluster.announce(ctx.state()).await }
    });
    let shutdown_config = &ctx.config.shutdown;
    let margin = (shutdown_config.grace_period / 10).min(Duration::from_secs(1));
    let deadline = started + shutdown_config.grace_period.saturating_sub(margin);
    tracing::info!(
        connections = ctx.metrics.connections.get(),
        drain_window = ?shutdown_config.drain_window,
        "draining"
    );
    connections.close();
    if tokio::time::timeout_at(deadline.into(), connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = ctx.metrics.connections.get(),
            "grace period over: dropping the remaining connections"
        );
        kill.cancel();
        let _ = tokio::time::timeout(margin / 2, connections.wait()).await;
    }
    stop_background.cancel();
    background.close();
    let _ = tokio::time::timeout(margin / 2, background.wait()).await;
    // The spans of the last deliveries go out before the process ends.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    tracing::info!(elapsed = ?started.elapsed(), "drained");
    Ok(())
}

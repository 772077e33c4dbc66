//! Server-Sent Events: `GET /v1/sse` on the WebSocket listener, for clients that cannot hold a
//! WebSocket (proxies that drop upgrades) or only listen. A stream subscribes to the channels
//! its request names, under the same rules as a WebSocket (token, `Origin`, limits), and
//! receives each publication as an event whose `id` is its position, so that a browser's
//! `EventSource` resumes by itself, from history, with `Last-Event-ID`.
//!
//! This room holds the protocol: the request and its refusals (`request.rs`), the event id
//! (`cursor.rs`), the framing (`framing.rs`) and the start of a stream (`answer.rs`). The
//! socket loop that writes a stream lives with the other socket loops, in `ws/`.

mod answer;
pub(crate) mod cursor;
pub(crate) mod framing;
pub(crate) mod request;

use std::sync::Arc;

use herald_http::reply::ApiError;
use herald_protocol::{ChannelName, ErrorCode, WireFormat};
use http::{HeaderValue, StatusCode};

pub(crate) use cursor::Cursor;
pub(crate) use framing::SseFraming;
pub(crate) use request::Request;

use crate::{
    auth::{may_subscribe, Standing, UpgradeRefusal},
    config::NamespaceConfig,
    ctx::{ConnectionSlot, NodeCtx},
    hub::SubscribeRequest,
    native::history,
    outbound::Outbound,
    peer::Peer,
};
use answer::{Resume, Start};
use cursor::Mark;

/// A stream admitted and subscribed: its connection, where it stands, what its token allows.
pub(crate) struct Opened {
    pub(crate) peer: Peer,
    pub(crate) cursor: Cursor,
    pub(crate) standing: Standing,
    /// The user its token names, if any.
    pub(crate) user: Option<herald_presence_core::UserId>,
    pub(crate) slot: ConnectionSlot,
}

/// A refusal, before the stream starts.
pub(crate) struct Refused {
    pub(crate) error: ApiError,
    pub(crate) origin: Option<HeaderValue>,
}

fn refused(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// Admits `req` and subscribes its channels; the stream's queue gets its head (or a refusal
/// from the broker) once they have settled.
///
/// # Errors
/// [`Refused`]: the node draining or full, the `Origin`, the token, a channel, the
/// subscription limit, or the position to resume from.
pub(crate) async fn open(ctx: &Arc<NodeCtx>, req: &Request) -> Result<Opened, Refused> {
    let origin = req.origin().cloned();
    match admit(ctx, req) {
        Ok((channels, marks, (standing, user), slot)) => {
            let peer = subscribe(ctx, &channels, &marks, origin).await;
            let cursor = channels
                .into_iter()
                .zip(marks)
                .map(|((channel, ns), mark)| (channel, mark, ns.history().is_on()));
            let cursor = Cursor::new(cursor.collect());
            Ok(Opened {
                peer,
                cursor,
                standing,
                user,
                slot,
            })
        }
        Err(error) => Err(Refused {
            error,
            origin: allowed_origin(ctx, origin),
        }),
    }
}

/// The `Origin` to answer with CORS headers: one the allow-list admits.
fn allowed_origin(ctx: &NodeCtx, origin: Option<HeaderValue>) -> Option<HeaderValue> {
    let origins = &ctx.config.websocket.allowed_origins;
    origin.filter(|o| origins.is_empty() || origins.iter().any(|a| a.as_bytes() == o.as_bytes()))
}

type Admitted = (
    Vec<(ChannelName, NamespaceConfig)>,
    Vec<Mark>,
    (Standing, Option<herald_presence_core::UserId>),
    ConnectionSlot,
);

fn admit(ctx: &Arc<NodeCtx>, req: &Request) -> Result<Admitted, ApiError> {
    // Only a GET gets here (`ws/sniff.rs`); other methods are refused with 405 by the
    // listener's HTTP side.
    if ctx.is_draining() {
        return Err(refused(
            ErrorCode::Unavailable,
            "node is shutting down; connect to another",
        ));
    }
    if req.origin().is_some() && allowed_origin(ctx, req.origin().cloned()).is_none() {
        ctx.metrics.families.limit_hits.inc("origin");
        let mut e = refused(ErrorCode::PermissionDenied, "origin not allowed");
        e.status = StatusCode::FORBIDDEN;
        return Err(e);
    }
    // A stream is never a presence member: its user only lets the server API find it.
    let (identity, standing) = match ctx.auth.admit(&req.headers, req.query.as_deref()) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            ctx.metrics.families.auth_failures.inc(refusal.reason());
            return Err(match refusal {
                UpgradeRefusal::BadRequest(text) => refused(ErrorCode::BadRequest, text),
                UpgradeRefusal::Unauthorized(_, text) => refused(ErrorCode::Unauthorized, text),
            });
        }
    };
    let names = req.params("channel");
    if names.is_empty() {
        return Err(refused(
            ErrorCode::BadRequest,
            "name at least one channel: ?channel=<name> (repeat it for several)",
        ));
    }
    let max = ctx.config.limits.max_subscriptions;
    let mut channels: Vec<(ChannelName, NamespaceConfig)> = Vec::new();
    for name in names {
        let (channel, ns) = ctx
            .config
            .check_channel(&name)
            .map_err(|r| refused(r.code, format!("channel {name}: {}", r.reason)))?;
        if channels.iter().any(|(c, _)| *c == channel) {
            continue;
        }
        may_subscribe(ns.subscribe, &standing, &channel, &Ok(Vec::new()))
            .map_err(|r| refused(r.code, format!("channel {name}: {}", r.reason)))?;
        channels.push((channel, *ns));
    }
    if channels.len() > max {
        ctx.metrics.families.limit_hits.inc("max_subscriptions");
        return Err(refused(
            ErrorCode::LimitExceeded,
            format!("at most {max} channels per stream (limits.max_subscriptions)"),
        ));
    }
    let marks = match req.since() {
        None => vec![Mark::Unknown; channels.len()],
        Some(since) => cursor::parse(&since, channels.len())
            .map_err(|e| refused(ErrorCode::BadRequest, e.to_string()))?,
    };
    let Some(slot) = ctx.claim_slot() else {
        ctx.metrics.families.limit_hits.inc("max_connections");
        return Err(refused(
            ErrorCode::Unavailable,
            "node is full (limits.max_connections); connect to another",
        ));
    };
    let user = identity.map(|i| i.user);
    Ok((channels, marks, (standing, user), slot))
}

/// Subscribes a new stream's channels; every one waits in a hold until [`Start`] is done.
async fn subscribe(
    ctx: &Arc<NodeCtx>,
    channels: &[(ChannelName, NamespaceConfig)],
    marks: &[Mark],
    origin: Option<HeaderValue>,
) -> Peer {
    let outbound = Outbound::new(WireFormat::Sse, ctx.config.websocket.outbound_queue_bytes);
    let mut peer = Peer::new(ctx.next_conn_id(), outbound);
    let mut resume = Vec::new();
    for ((channel, ns), mark) in channels.iter().zip(marks) {
        let query = match mark {
            Mark::Unknown => history::query(ns, Some(0), None, false),
            Mark::Start => history::query(ns, None, None, false),
            Mark::At(position) => history::query(ns, None, Some(position), false),
        };
        if let Ok(query) = query {
            resume.push(Resume {
                channel: channel.clone(),
                mark: mark.clone(),
                query,
            });
        }
    }
    let holds = resume.iter().map(|r| r.channel.clone()).collect();
    let start = Box::new(Start {
        origin,
        retry: ctx.config.sse.retry,
        resume,
    });
    let request = SubscribeRequest::new(
        peer.outbound.clone(),
        channels.len(),
        Vec::new(),
        None,
        true,
        start,
    )
    .recovering(holds);
    for (channel, _) in channels {
        peer.subscribed.push(channel.clone());
        peer.subscribe(&**ctx, channel.clone(), &request).await;
    }
    peer
}

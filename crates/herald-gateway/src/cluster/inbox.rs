//! The node's inbox: control messages go to the control task, everything else to the hub.

use std::sync::Arc;

use herald_broker::{BoxFuture, Inbox, Publication};
use herald_protocol::{presence::PresenceNotice, ChannelName};
use tokio::sync::mpsc;

use super::{control::Control, CONTROL_CHANNEL};

/// Control messages waiting for the control task, at most. The broker waits when it is full.
const QUEUE: usize = 256;

/// Splits what the broker delivers between the control task and `hub`.
pub(crate) struct Split {
    hub: Arc<dyn Inbox>,
    control: mpsc::Sender<Control>,
}

/// An inbox for the broker, and where the control task reads its messages.
pub(crate) fn split(hub: Arc<dyn Inbox>) -> (Arc<dyn Inbox>, mpsc::Receiver<Control>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Arc::new(Split { hub, control: tx }), rx)
}

impl Inbox for Split {
    fn deliver(&self, publication: Publication) -> BoxFuture<'_, ()> {
        if publication.channel.as_str() != CONTROL_CHANNEL {
            return self.hub.deliver(publication);
        }
        Box::pin(async move {
            match serde_json::from_slice::<Control>(&publication.data) {
                // The control task ended with the node: nothing is left to do.
                Ok(control) => drop(self.control.send(control).await),
                Err(e) => tracing::warn!(error = %e, "malformed control message dropped"),
            }
        })
    }

    fn gap(&self, channel: ChannelName, reason: &'static str) -> BoxFuture<'_, ()> {
        if channel.as_str() == CONTROL_CHANNEL {
            // Heartbeats come again; a disconnect or unsubscribe sent meanwhile is lost.
            tracing::warn!(reason, "control messages may have been missed");
            return Box::pin(async {});
        }
        self.hub.gap(channel, reason)
    }

    fn presence(&self, channel: ChannelName, notice: PresenceNotice) -> BoxFuture<'_, ()> {
        self.hub.presence(channel, notice)
    }

    fn presence_lost(&self, reason: &'static str) -> BoxFuture<'_, ()> {
        self.hub.presence_lost(reason)
    }
}

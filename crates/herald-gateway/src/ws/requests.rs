//! The native protocol's requests: subscribe, unsubscribe, publish.

use bytes::Bytes;
use herald_protocol::{
    client::{ClientRequest, Command},
    server::{self, ChannelFailure, ReplyOk},
    ChannelName, ErrorCode, WireFormat,
};

use super::connection::Connection;
use crate::hub::SubscribeRequest;

impl Connection {
    /// Decodes and answers one request. Replies go through the outbound queue, in order with
    /// pushes.
    pub(super) async fn on_request(&mut self, frame_format: WireFormat, payload: Bytes) {
        let request = match ClientRequest::decode(frame_format, &payload) {
            Ok(r) => r,
            Err(e) => {
                self.ctx.metrics.bad_requests.inc();
                self.reply_error(e.id, ErrorCode::BadRequest, &e.to_string());
                return;
            }
        };
        match request.command {
            Command::Subscribe { channels } => self.subscribe(request.id, channels).await,
            Command::Unsubscribe { channels } => self.unsubscribe(request.id, channels).await,
            Command::Publish { channel, data } => self.publish(request.id, &channel, data).await,
        }
    }

    fn reply(&self, frame: &Bytes) {
        // A full queue evicts the connection; the loop notices and closes it.
        self.outbound.push_frame(frame);
    }

    fn reply_error(&self, id: Option<u64>, code: ErrorCode, message: &str) {
        self.reply(&server::reply_error(self.format, id, code, message));
    }

    /// Splits names into valid channels (deduplicated) and failures.
    fn check_all(&self, names: Vec<String>) -> (Vec<ChannelName>, Vec<ChannelFailure>) {
        let mut valid: Vec<ChannelName> = Vec::with_capacity(names.len());
        let mut failed = Vec::new();
        for name in names {
            match self.ctx.check_channel(&name) {
                Ok((channel, _)) if !valid.contains(&channel) => valid.push(channel),
                Ok(_) => {}
                Err((code, message)) => failed.push(ChannelFailure::new(name, code, message)),
            }
        }
        (valid, failed)
    }

    async fn subscribe(&mut self, id: u64, names: Vec<String>) {
        let (valid, failed) = self.check_all(names);
        let request = SubscribeRequest::new(id, self.outbound.clone(), valid.len(), failed);
        for channel in valid {
            self.shards |= 1 << (self.ctx.hub.shard_index(&channel) % 64);
            self.ctx
                .hub
                .subscribe(self.id, &self.outbound, channel, &request)
                .await;
        }
    }

    async fn unsubscribe(&mut self, id: u64, names: Vec<String>) {
        let (valid, failed) = self.check_all(names);
        let names: Vec<String> = valid.iter().map(ToString::to_string).collect();
        for channel in valid {
            self.ctx.hub.unsubscribe(self.id, channel).await;
        }
        let ok = ReplyOk::Unsubscribe {
            unsubscribed: &names,
            failed: &failed,
        };
        self.reply(&server::reply_ok(self.format, id, &ok));
    }

    async fn publish(&mut self, id: u64, name: &str, data: Bytes) {
        let (channel, namespace) = match self.ctx.check_channel(name) {
            Ok(found) => found,
            Err((code, message)) => return self.reply_error(Some(id), code, &message),
        };
        if !namespace.publish {
            return self.reply_error(
                Some(id),
                ErrorCode::PermissionDenied,
                "clients may not publish in this namespace",
            );
        }
        match self.ctx.broker.publish(channel, data).await {
            Ok(published) => {
                self.ctx.metrics.publications.inc();
                let ok = ReplyOk::Publish {
                    message_id: published.id.to_string(),
                    offset: published.offset,
                };
                self.reply(&server::reply_ok(self.format, id, &ok));
            }
            Err(e) => self.reply_error(Some(id), crate::broker_error_code(&e), &e.to_string()),
        }
    }
}

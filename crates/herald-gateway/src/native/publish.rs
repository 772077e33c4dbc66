//! `publish`: a client's publication, in a namespace that allows it.

use bytes::Bytes;
use herald_protocol::{
    server::{self, ReplyOk},
    ChannelName, ErrorCode,
};

use super::session::Session;
use crate::{
    peer::{Env, Peer},
    refusal::Refusal,
    telemetry::PublishPath,
};

impl Session {
    pub(super) async fn publish(
        &mut self,
        env: &impl Env,
        peer: &mut Peer,
        id: u64,
        name: &str,
        data: Bytes,
    ) {
        let channel = match check(env, peer, name, &data) {
            Ok(channel) => channel,
            Err(refusal) => return self.refuse(peer, Some(id), &refusal),
        };
        match env
            .publish(channel, data, PublishPath::Client, Default::default())
            .await
        {
            Ok(published) => {
                let ok = ReplyOk::Publish {
                    message_id: published.id.to_string(),
                    offset: published.offset,
                    epoch: published.epoch.as_ref().map(|e| e.as_str()),
                };
                self.reply(peer, &server::reply_ok(self.format, id, &ok));
            }
            Err(e) => self.refuse(peer, Some(id), &Refusal::broker(&e)),
        }
    }
}

/// What a client publication must pass: a valid channel whose namespace allows client
/// publications, data within `limits.max_json_depth`, and a token of the connection's
/// `limits.publish_rate`.
fn check(env: &impl Env, peer: &mut Peer, name: &str, data: &[u8]) -> Result<ChannelName, Refusal> {
    let (channel, namespace) = env.config().check_channel(name)?;
    if !namespace.publish {
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            "clients may not publish in this namespace",
        ));
    }
    env.config().check_depth(data).inspect_err(|_| {
        env.metrics().families.limit_hits.inc("max_json_depth");
    })?;
    let rate = env.config().limits.publish_rate;
    if !peer.take_publish_token(rate, env.metrics()) {
        return Err(Refusal::new(
            ErrorCode::LimitExceeded,
            format!("at most {rate} publications per second per connection"),
        ));
    }
    Ok(channel)
}

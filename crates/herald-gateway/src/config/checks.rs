//! What the configuration says of a client's channel name or publication data.

use herald_protocol::{ChannelName, ErrorCode};

use super::{GatewayConfig, NamespaceConfig};
use crate::refusal::Refusal;

impl GatewayConfig {
    /// Validates a channel name from the outside (`limits.max_channel_length`) and finds its
    /// namespace's options.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidChannel`] or [`ErrorCode::UnknownNamespace`], with the reason.
    pub(crate) fn check_channel(
        &self,
        name: &str,
    ) -> Result<(ChannelName, &NamespaceConfig), Refusal> {
        let channel = ChannelName::parse_with_max(name, self.limits.max_channel_length)
            .map_err(|e| Refusal::new(ErrorCode::InvalidChannel, e.to_string()))?;
        match self.namespace_of(&channel) {
            Ok(ns) => Ok((channel, ns)),
            Err(code) => {
                let ns = channel.namespace().unwrap_or_default();
                Err(Refusal::new(code, format!("unknown namespace {ns:?}")))
            }
        }
    }

    /// Refuses publication data (JSON text) that nests deeper than `limits.max_json_depth`.
    ///
    /// # Errors
    /// [`ErrorCode::BadRequest`], with the limit.
    pub(crate) fn check_depth(&self, data: &[u8]) -> Result<(), Refusal> {
        let max = self.limits.max_json_depth;
        if herald_protocol::client::json_depth(data) > max {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("data nests deeper than {max} levels"),
            ));
        }
        Ok(())
    }
}

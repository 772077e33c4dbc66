//! Checks of values that parse but make no sense.

use std::time::Duration;

use herald_runtime::config::ConfigError;

use super::{BrokerKind, GatewayConfig, NamespaceConfig, SubscribePolicy};

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl GatewayConfig {
    /// Refuses values that parse but cannot work together.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ws = &self.websocket;
        if !ws.path.starts_with('/') {
            return Err(invalid("websocket.path", "must start with '/'"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&ws.max_message_size) {
            return Err(invalid(
                "websocket.max_message_size",
                "must be between 1024 and 16777216 bytes",
            ));
        }
        if ws.outbound_queue_bytes < 16 * 1024 {
            return Err(invalid(
                "websocket.outbound_queue_bytes",
                "must be at least 16384 bytes",
            ));
        }
        // A queue that cannot hold two of the largest publications would close clients that
        // read as fast as they can: one such publication, or two arriving together, fill it.
        let largest = ws.max_message_size.max(self.api.max_data_size);
        if ws.outbound_queue_bytes < 2 * largest {
            return Err(invalid(
                "websocket.outbound_queue_bytes",
                format!(
                    "must be at least twice the largest publication \
                     (api.max_data_size, websocket.max_message_size): {} bytes",
                    2 * largest
                ),
            ));
        }
        if self.sse.keepalive_interval.is_zero() {
            return Err(invalid("sse.keepalive_interval", "must be more than zero"));
        }
        if ws.ping_interval.is_zero() {
            return Err(invalid("websocket.ping_interval", "must be more than zero"));
        }
        if ws.idle_timeout <= ws.ping_interval {
            return Err(invalid(
                "websocket.idle_timeout",
                "must be longer than websocket.ping_interval",
            ));
        }
        if ws.close_timeout.is_zero() || ws.handshake_timeout.is_zero() {
            return Err(invalid(
                "websocket.close_timeout",
                "timeouts must be more than zero",
            ));
        }
        if self.api.keys.iter().any(|k| k.trim().is_empty()) {
            return Err(invalid("api.keys", "a key must not be empty"));
        }
        if self.api.max_data_size == 0 || self.api.max_body_size < self.api.max_data_size {
            return Err(invalid(
                "api.max_body_size",
                "must be at least api.max_data_size, which must be more than zero",
            ));
        }
        let pusher = &self.pusher;
        for (i, app) in pusher.apps.iter().enumerate() {
            if app.id.is_empty() || app.key.is_empty() || app.secret.is_empty() {
                return Err(invalid(
                    "pusher.apps",
                    format!("apps[{i}]: id, key and secret must not be empty"),
                ));
            }
            let url_safe = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if !url_safe(&app.id) || !url_safe(&app.key) {
                return Err(invalid(
                    "pusher.apps",
                    format!("apps[{i}]: id and key are letters, digits, '-', '_' or '.'"),
                ));
            }
            for hook in &app.webhooks {
                let uri = hook.url.parse::<http::Uri>().ok();
                let scheme = uri.as_ref().and_then(|u| u.scheme_str());
                if !matches!(scheme, Some("http" | "https"))
                    || uri.as_ref().and_then(|u| u.host()).is_none()
                {
                    return Err(invalid(
                        "pusher.apps",
                        format!(
                            "apps[{i}].webhooks: {:?} is not an http:// or https:// URL",
                            hook.url
                        ),
                    ));
                }
                let unknown = hook
                    .event_types
                    .iter()
                    .find(|t| herald_pusher::webhook::EventKind::parse(t).is_none());
                if let Some(t) = unknown {
                    return Err(invalid(
                        "pusher.apps",
                        format!(
                            "apps[{i}].webhooks: unknown event type {t:?} (channel_occupied, \
                             channel_vacated, member_added, member_removed, client_event)"
                        ),
                    ));
                }
                if hook.event_types.is_empty() {
                    return Err(invalid(
                        "pusher.apps",
                        format!("apps[{i}].webhooks: event_types must not be empty"),
                    ));
                }
                if let Err(e) = herald_pusher::webhook::ChannelFilter::new(&hook.channels) {
                    return Err(invalid(
                        "pusher.apps",
                        format!("apps[{i}].webhooks: channels: {e}"),
                    ));
                }
            }
            let clash = pusher.apps[..i]
                .iter()
                .any(|other| other.id == app.id || other.key == app.key);
            if clash {
                return Err(invalid(
                    "pusher.apps",
                    format!("apps[{i}]: another app has the same id or key"),
                ));
            }
        }
        if herald_protocol::EventName::parse(&pusher.default_event).is_err() {
            return Err(invalid(
                "pusher.default_event",
                "must be 1 to 200 bytes without control characters",
            ));
        }
        if pusher.activity_timeout.as_secs() == 0 || pusher.max_event_size == 0 {
            return Err(invalid(
                "pusher.activity_timeout",
                "pusher.activity_timeout (whole seconds) and pusher.max_event_size must be more than zero",
            ));
        }
        if pusher.webhook_attempts == 0
            || pusher.webhook_timeout.is_zero()
            || pusher.webhook_retry.is_zero()
            || pusher.webhook_claim_after < Duration::from_secs(1)
        {
            return Err(invalid(
                "pusher.webhook_attempts",
                "pusher.webhook_attempts, webhook_timeout and webhook_retry must be more than \
                 zero, and pusher.webhook_claim_after at least 1s",
            ));
        }
        let telemetry = &self.telemetry;
        if !(0.0..=1.0).contains(&telemetry.sample_ratio) {
            return Err(invalid("telemetry.sample_ratio", "must be between 0 and 1"));
        }
        if let Some(endpoint) = &telemetry.otlp_endpoint {
            if !endpoint.starts_with("http://") || endpoint.parse::<http::Uri>().is_err() {
                return Err(invalid(
                    "telemetry.otlp_endpoint",
                    "must be an http:// URL (a collector or agent next to the node)",
                ));
            }
        }
        if telemetry.export_interval.is_zero() {
            return Err(invalid(
                "telemetry.export_interval",
                "must be more than zero",
            ));
        }
        if self.hub.shards > 1024 {
            return Err(invalid("hub.shards", "at most 1024"));
        }
        if self.shutdown.drain_window > self.shutdown.grace_period {
            return Err(invalid(
                "shutdown.drain_window",
                "must not exceed shutdown.grace_period",
            ));
        }
        for name in self.namespaces.keys() {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "namespaces",
                    reason: format!("namespace {name:?} must be letters, digits, '_' or '-'"),
                });
            }
            if name == super::RESERVED_NAMESPACE {
                return Err(ConfigError::Invalid {
                    key: "namespaces",
                    reason: format!("namespace {name:?} is reserved for the nodes' own messages"),
                });
            }
        }
        check_history("channels", "", &self.channels)?;
        for (name, ns) in &self.namespaces {
            check_history("namespaces", &format!("{name}."), ns)?;
        }
        self.validate_auth()?;
        self.validate_limits()?;
        let presence = &self.presence;
        if presence.heartbeat_interval.is_zero() || presence.heartbeat_interval * 2 > presence.lease
        {
            return Err(invalid(
                "presence.heartbeat_interval",
                "must be more than zero and at most half of presence.lease",
            ));
        }
        if presence.max_info_size == 0 {
            return Err(invalid("presence.max_info_size", "must be more than zero"));
        }
        if self.broker.kind == BrokerKind::Redis {
            self.validate_redis()?;
        }
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_subscriptions", l.max_subscriptions),
            ("limits.publish_rate", l.publish_rate as usize),
            ("limits.max_json_depth", l.max_json_depth),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if !(1..=herald_protocol::channel::MAX_LEN).contains(&l.max_channel_length) {
            return Err(invalid(
                "limits.max_channel_length",
                "must be between 1 and 255",
            ));
        }
        match (&self.websocket.tls_cert_file, &self.websocket.tls_key_file) {
            (Some(cert), Some(key)) => {
                crate::tls::server_config(cert, key)
                    .map_err(|e| invalid("websocket.tls_cert_file", e.to_string()))?;
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "websocket.tls_cert_file",
                    "websocket.tls_cert_file and websocket.tls_key_file go together",
                ))
            }
        }
        for origin in &self.websocket.allowed_origins {
            let ok = origin.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty() && !host.is_empty() && !host.contains('/')
            });
            if !ok {
                return Err(invalid(
                    "websocket.allowed_origins",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if let Err(e) = herald_auth::Verifier::new(auth) {
            return Err(invalid("auth.keys", e.to_string()));
        }
        if !auth.anonymous && auth.keys.is_empty() {
            return Err(invalid(
                "auth.anonymous",
                "false needs at least one of auth.keys, or no client could connect",
            ));
        }
        let token_namespaces = std::iter::once(&self.channels)
            .chain(self.namespaces.values())
            .any(|n| n.subscribe != SubscribePolicy::Anyone);
        if token_namespaces && auth.keys.is_empty() {
            return Err(invalid(
                "namespaces",
                "subscribe = \"authenticated\" or \"token\" needs auth.keys",
            ));
        }
        Ok(())
    }

    fn validate_redis(&self) -> Result<(), ConfigError> {
        self.broker.redis.options().map(drop)
    }
}

/// A namespace's history bounds: `history_size` at most 10,000, and with history,
/// `history_ttl` from 1 s to 24 h. `key` is the section, `within` names the namespace.
fn check_history(key: &'static str, within: &str, ns: &NamespaceConfig) -> Result<(), ConfigError> {
    if ns.history_size > NamespaceConfig::MAX_HISTORY_SIZE {
        return Err(invalid(key, format!("{within}history_size: at most 10000")));
    }
    let ttl = ns.history_ttl;
    if ns.history_size > 0 && !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&ttl)
    {
        return Err(invalid(key, format!("{within}history_ttl: 1s to 24h")));
    }
    Ok(())
}

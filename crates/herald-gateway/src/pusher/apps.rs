//! The Pusher apps a node serves, as its startup log names them.

use crate::config::PusherConfig;

/// Names the Pusher apps and webhooks a node serves, at startup (never a secret, nor the
/// credentials of a webhook URL).
pub(crate) fn log_apps(config: &PusherConfig) {
    for app in &config.apps {
        tracing::info!(
            app_id = %app.id,
            key = %app.key,
            client_events = app.client_events,
            max_connections = ?app.max_connections,
            webhooks = app.webhooks.len(),
            "pusher app"
        );
        for hook in &app.webhooks {
            tracing::info!(
                app_id = %app.id,
                url = %without_credentials(&hook.url),
                event_types = ?hook.event_types,
                channels = ?hook.channels,
                "pusher webhook"
            );
        }
    }
}

/// `url` without a `user:password@` part.
fn without_credentials(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_logged_without_credentials() {
        assert_eq!(
            without_credentials("https://u:p@hooks.example.com/pusher?a=b@c"),
            "https://***@hooks.example.com/pusher?a=b@c"
        );
        assert_eq!(
            without_credentials("http://hooks.example.com/x"),
            "http://hooks.example.com/x"
        );
    }
}

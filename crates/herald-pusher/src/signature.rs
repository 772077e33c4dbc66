//! HMAC-SHA256 signatures, as Pusher defines them:
//!
//! - channel authorization: `<key>:<hex HMAC of "<socket_id>:<channel>[:<channel_data>]">`;
//! - user sign-in: the same over `"<socket_id>::user::<user_data>"`;
//! - HTTP API requests: `auth_signature`, the HMAC of `"<METHOD>\n<path>\n<sorted query>"`,
//!   with `body_md5` for a body and `auth_timestamp` within a window;
//! - webhooks: `X-Pusher-Signature`, the HMAC of the body.
//!
//! Every comparison of a signature is constant-time.

use md5::{Digest, Md5};
use ring::hmac;

/// Why an authorization string was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not `<key>:<64 hex digits>`.
    #[error("the auth string is not <key>:<signature>")]
    Malformed,
    /// Signed for another app key.
    #[error("the auth string is for another app key")]
    WrongKey,
    /// The signature does not match.
    #[error("invalid signature")]
    Signature,
}

/// Why a signed HTTP API request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required authentication parameter is missing.
    #[error("missing query parameter {0}")]
    Missing(&'static str),
    /// `auth_key` is not the app's key.
    #[error("unknown auth_key")]
    WrongKey,
    /// `auth_version` is not `1.0`.
    #[error("auth_version must be 1.0")]
    Version,
    /// `auth_timestamp` is not a number, or too far from the server's clock.
    #[error("auth_timestamp is not within {0} seconds of the server's time")]
    Timestamp(u64),
    /// `body_md5` does not match the body.
    #[error("body_md5 does not match the body")]
    BodyMd5,
    /// The signature does not match.
    #[error("invalid signature")]
    Signature,
}

/// The hex HMAC-SHA256 of `text` with `secret`.
pub fn sign(secret: &str, text: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex(hmac::sign(&key, text.as_bytes()).as_ref())
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `text` with `secret`, in constant time.
pub fn verify(secret: &str, text: &str, signature: &str) -> bool {
    let Some(raw) = unhex(signature) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, text.as_bytes(), &raw).is_ok()
}

/// The text a channel authorization signs.
pub fn channel_auth_text(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The authorization string for `channel`, as an app's auth endpoint returns it.
pub fn channel_auth(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    let text = channel_auth_text(socket_id, channel, channel_data);
    format!("{key}:{}", sign(secret, &text))
}

/// Checks an `auth` string of a subscription (or, with `text` from [`signin_text`], of a
/// sign-in) against the app's key and secret.
///
/// # Errors
/// [`AuthError`] with the reason.
pub fn verify_auth(key: &str, secret: &str, text: &str, auth: &str) -> Result<(), AuthError> {
    let (given_key, signature) = auth.split_once(':').ok_or(AuthError::Malformed)?;
    if signature.len() != 64 {
        return Err(AuthError::Malformed);
    }
    if given_key != key {
        return Err(AuthError::WrongKey);
    }
    if verify(secret, text, signature) {
        Ok(())
    } else {
        Err(AuthError::Signature)
    }
}

/// The text a user sign-in signs.
pub fn signin_text(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// A request to the HTTP API, as received: the query parameters already percent-decoded.
pub struct SignedRequest<'a> {
    /// `GET`, `POST`...
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// Every query parameter, decoded.
    pub query: &'a [(String, String)],
    /// The body (empty for GET).
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn param(&self, name: &'static str) -> Result<&str, RequestError> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or(RequestError::Missing(name))
    }

    /// The text `auth_signature` signs: method, path and the sorted query without the
    /// signature, joined by newlines, nothing escaped.
    pub fn signed_text(&self) -> String {
        let mut params: Vec<(String, &str)> = self
            .query
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        params.sort();
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path,
            query.join("&")
        )
    }

    /// Checks the request's authentication for the app `key`/`secret` at `now` (seconds
    /// since the Unix epoch), allowing `window` seconds of clock difference.
    ///
    /// # Errors
    /// [`RequestError`] with the reason.
    pub fn verify(
        &self,
        key: &str,
        secret: &str,
        now: u64,
        window: u64,
    ) -> Result<(), RequestError> {
        if self.param("auth_key")? != key {
            return Err(RequestError::WrongKey);
        }
        if self.param("auth_version")? != "1.0" {
            return Err(RequestError::Version);
        }
        let timestamp: u64 = self
            .param("auth_timestamp")?
            .parse()
            .map_err(|_| RequestError::Timestamp(window))?;
        if timestamp.abs_diff(now) > window {
            return Err(RequestError::Timestamp(window));
        }
        if !self.body.is_empty() && self.param("body_md5")? != body_md5(self.body) {
            return Err(RequestError::BodyMd5);
        }
        let signature = self.param("auth_signature")?;
        if verify(secret, &self.signed_text(), signature) {
            Ok(())
        } else {
            Err(RequestError::Signature)
        }
    }
}

/// The hex MD5 of a request body (`body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

/// The `X-Pusher-Signature` of a webhook body.
pub fn webhook_signature(secret: &str, body: &str) -> String {
    sign(secret, body)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    pairs
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked examples of Pusher's documentation ("Authentication and authorization
    // signatures", "HTTP API reference").
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn the_documented_private_channel_example() {
        let auth = channel_auth(KEY, SECRET, "1234.1234", "private-foobar", None);
        assert_eq!(
            auth,
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        let text = channel_auth_text("1234.1234", "private-foobar", None);
        assert_eq!(verify_auth(KEY, SECRET, &text, &auth), Ok(()));
        let other = channel_auth_text("1234.1235", "private-foobar", None);
        assert_eq!(
            verify_auth(KEY, SECRET, &other, &auth),
            Err(AuthError::Signature)
        );
        assert_eq!(
            verify_auth("another-key", SECRET, &text, &auth),
            Err(AuthError::WrongKey)
        );
        for bad in [
            "",
            "nocolon",
            "278d425bdf160c739803:short",
            "278d425bdf160c739803:zz",
        ] {
            assert_eq!(
                verify_auth(KEY, SECRET, &text, bad),
                Err(AuthError::Malformed),
                "{bad}"
            );
        }
        let not_hex = format!("{KEY}:{}", "g".repeat(64));
        assert_eq!(
            verify_auth(KEY, SECRET, &text, &not_hex),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn presence_signatures_cover_the_channel_data() {
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let auth = channel_auth(KEY, SECRET, "1234.1234", "presence-foobar", Some(data));
        let text = channel_auth_text("1234.1234", "presence-foobar", Some(data));
        assert_eq!(verify_auth(KEY, SECRET, &text, &auth), Ok(()));
        let forged = channel_auth_text("1234.1234", "presence-foobar", Some(r#"{"user_id":11}"#));
        assert_eq!(
            verify_auth(KEY, SECRET, &forged, &auth),
            Err(AuthError::Signature)
        );
    }

    fn documented_request(query: &[(String, String)]) -> SignedRequest<'_> {
        SignedRequest {
            method: "POST",
            path: "/apps/3/events",
            query,
            body: br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_documented_http_api_example() {
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body), "ec365a775a4cd0599faeb73354201b6f");
        let query = pairs(&[
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
            (
                "auth_signature",
                "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
            ),
        ]);
        let request = documented_request(&query);
        assert_eq!(
            request.signed_text(),
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
        assert_eq!(request.verify(KEY, SECRET, 1_353_088_179, 600), Ok(()));
        assert_eq!(
            request.verify(KEY, SECRET, 1_353_088_179 + 601, 600),
            Err(RequestError::Timestamp(600))
        );
        assert_eq!(
            request.verify("other", SECRET, 1_353_088_179, 600),
            Err(RequestError::WrongKey)
        );
        assert_eq!(
            request.verify(KEY, "other", 1_353_088_179, 600),
            Err(RequestError::Signature)
        );
    }

    #[test]
    fn every_part_of_a_request_is_checked() {
        let good = [
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
            (
                "auth_signature",
                "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
            ),
        ];
        let now = 1_353_088_179;
        for (i, name) in [
            "auth_key",
            "auth_timestamp",
            "auth_version",
            "body_md5",
            "auth_signature",
        ]
        .iter()
        .enumerate()
        {
            let mut without = good.to_vec();
            without.remove(i);
            let query = pairs(&without);
            assert_eq!(
                documented_request(&query).verify(KEY, SECRET, now, 600),
                Err(RequestError::Missing(name)),
                "{name}"
            );
        }
        let mut version = good;
        version[2].1 = "2.0";
        assert_eq!(
            documented_request(&pairs(&version)).verify(KEY, SECRET, now, 600),
            Err(RequestError::Version)
        );
        let mut md5 = good;
        md5[3].1 = "00000000000000000000000000000000";
        assert_eq!(
            documented_request(&pairs(&md5)).verify(KEY, SECRET, now, 600),
            Err(RequestError::BodyMd5)
        );
        // An extra parameter is part of what is signed.
        let mut extra = good.to_vec();
        extra.push(("socket_id", "1.1"));
        assert_eq!(
            documented_request(&pairs(&extra)).verify(KEY, SECRET, now, 600),
            Err(RequestError::Signature)
        );
    }

    #[test]
    fn webhooks_and_sign_in_are_plain_hmacs() {
        let body = r#"{"time_ms":1,"events":[]}"#;
        assert!(verify(SECRET, body, &webhook_signature(SECRET, body)));
        let text = signin_text("1234.1234", r#"{"id":"1"}"#);
        assert_eq!(text, r#"1234.1234::user::{"id":"1"}"#);
    }
}

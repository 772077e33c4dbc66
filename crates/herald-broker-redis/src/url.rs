//! `redis://[user[:password]@]host[:port][/db]` URLs.

use std::fmt;

/// Where and how to connect to one Redis server.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port (6379 by default).
    pub port: u16,
    /// `rediss://`: TLS.
    pub tls: bool,
    /// ACL user name, if any.
    pub username: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// Database number (`SELECT`); pub/sub and functions ignore it.
    pub db: u32,
}

impl fmt::Debug for Endpoint {
    // Never print the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A URL that is not a usable Redis address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad redis URL: {0}")]
pub struct UrlError(pub &'static str);

fn percent_decode(s: &str) -> Result<String, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            let v = u8::from_str_radix(&hex, 16).map_err(|_| UrlError("bad percent escape"))?;
            out.push(v);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| UrlError("credentials are not UTF-8"))
}

impl Endpoint {
    /// Parses one URL.
    ///
    /// # Errors
    /// [`UrlError`] saying what is wrong (the message never contains the password).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (tls, rest) = if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("rediss://") {
            (true, r)
        } else {
            return Err(UrlError("must start with redis:// or rediss://"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    (!user.is_empty())
                        .then(|| percent_decode(user))
                        .transpose()?,
                    Some(percent_decode(pass)?),
                ),
                None => (None, Some(percent_decode(u)?)),
            },
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| UrlError("bad port"))?)
            }
            _ => (hostport, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError("missing host"));
        }
        let db = if path.is_empty() {
            0
        } else {
            path.parse().map_err(|_| UrlError("bad database number"))?
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
            username,
            password,
            db,
        })
    }

    /// Parses a comma-separated list of URLs.
    ///
    /// # Errors
    /// As [`Endpoint::parse`], or an empty list.
    pub fn parse_list(urls: &str) -> Result<Vec<Self>, UrlError> {
        let list: Vec<Self> = urls
            .split(',')
            .filter(|u| !u.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(UrlError("no URL given"));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let e = Endpoint::parse("redis://127.0.0.1:7000").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("127.0.0.1", 7000, 0));
        let e = Endpoint::parse("redis://:s%40cret@redis/2").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("redis", 6379, 2));
        assert_eq!(e.password.as_deref(), Some("s@cret"));
        assert_eq!(e.username, None);
        let e = Endpoint::parse("redis://app:pw@[::1]:6380").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 6380));
        assert_eq!(e.username.as_deref(), Some("app"));
        assert!(
            !format!("{e:?}").contains("pw"),
            "passwords are never printed"
        );
        assert_eq!(
            Endpoint::parse_list("redis://a:1, redis://b:2")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(Endpoint::parse("rediss://h:6380").unwrap().tls);
        for bad in ["http://x", "redis://", "redis://h:port", "redis://h/x"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse_list(" , ").is_err());
    }
}

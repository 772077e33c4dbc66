//! `redis://[user[:password]@]host[:port][/db]` URLs, and Sentinel's
//! `redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master[/db]`.

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

/// A Sentinel deployment as a URL names it: the sentinels, the master's name, and how to
/// talk to the master (its credentials, database and TLS; its address comes from the
/// sentinels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The sentinels (port 26379 by default), with TLS as the scheme says.
    pub sentinels: Vec<Endpoint>,
    /// The name the sentinels monitor the master under.
    pub master: String,
    /// The master's credentials, database and TLS; `host` holds the master's name until the
    /// sentinels say where it is.
    pub redis: Endpoint,
}

impl SentinelUrl {
    /// Parses `redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master[/db]`
    /// (`rediss+sentinel://` for TLS to the sentinels and the master). The credentials are the
    /// master's; a sentinel password is a setting of its own.
    ///
    /// # Errors
    /// [`UrlError`] saying what is wrong (never with the password).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let (scheme, rest) = if let Some(r) = url.strip_prefix("redis+sentinel://") {
            ("redis", r)
        } else if let Some(r) = url.strip_prefix("rediss+sentinel://") {
            ("rediss", r)
        } else {
            return Err(UrlError(
                "must start with redis+sentinel:// or rediss+sentinel:// in sentinel mode",
            ));
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or(UrlError("name the master: .../<master name>"))?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (master, db) = match path.split_once('/') {
            Some((m, db)) => (m, Some(db)),
            None => (path, None),
        };
        if master.is_empty() {
            return Err(UrlError("name the master: .../<master name>"));
        }
        let sentinels = hosts
            .split(',')
            .map(|h| {
                let h = h.trim();
                let has_port = match h.strip_prefix('[') {
                    Some(v6) => v6.contains("]:"),
                    None => h.contains(':'),
                };
                let with_port = if has_port {
                    h.to_owned()
                } else {
                    format!("{h}:26379")
                };
                Endpoint::parse(&format!("{scheme}://{with_port}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let creds = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let db = db.map(|d| format!("/{d}")).unwrap_or_default();
        let mut redis = Endpoint::parse(&format!("{scheme}://{creds}master{db}"))?;
        redis.host = master.to_owned();
        Ok(Self {
            sentinels,
            master: master.to_owned(),
            redis,
        })
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
    fn sentinel_urls_name_the_sentinels_the_master_and_its_credentials() {
        let u = SentinelUrl::parse("redis+sentinel://:pw@s1,s2:26380,[::1]/mymaster/2").unwrap();
        let at: Vec<(&str, u16)> = u
            .sentinels
            .iter()
            .map(|e| (e.host.as_str(), e.port))
            .collect();
        assert_eq!(at, [("s1", 26379), ("s2", 26380), ("::1", 26379)]);
        assert!(u.sentinels.iter().all(|e| e.password.is_none() && !e.tls));
        assert_eq!(u.master, "mymaster");
        assert_eq!((u.redis.password.as_deref(), u.redis.db), (Some("pw"), 2));
        let u = SentinelUrl::parse("rediss+sentinel://h:1/m").unwrap();
        assert!(u.redis.tls && u.sentinels[0].tls);
        for bad in [
            "redis://h/m",
            "redis+sentinel://h",
            "redis+sentinel://h/",
            "redis+sentinel://h:x/m",
            "redis+sentinel://h/m/x",
        ] {
            assert!(SentinelUrl::parse(bad).is_err(), "{bad}");
        }
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

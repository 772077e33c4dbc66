//! Typed values that fail loudly, for `#[serde(deserialize_with = ...)]` (or `with`) on
//! configuration fields. The `config` crate converts loosely (`"no"` and `1` both pass as
//! booleans) and says little when a value is bad; these take only what the docs promise and
//! say what was expected.

use std::{fmt, net::SocketAddr, time::Duration};

use serde::{
    de::{self, value::StringDeserializer, DeserializeOwned, Visitor},
    Deserialize, Deserializer,
};

/// A boolean: `true` or `false` (a TOML boolean, or those words from the environment), nothing
/// else.
///
/// # Errors
/// For any other value, naming it.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Strict;
    impl Visitor<'_> for Strict {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom(format!(
                    "`{v}` is not a boolean: expected true or false"
                ))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Err(E::custom(format!(
                "`{v}` is not a boolean: expected true or false"
            )))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Err(E::custom(format!(
                "`{v}` is not a boolean: expected true or false"
            )))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
            Err(E::custom(format!(
                "`{v}` is not a boolean: expected true or false"
            )))
        }
    }
    d.deserialize_any(Strict)
}

/// One of an enum's names, given as a string; a bad one is refused with the list of names
/// ("unknown variant `redsi`, expected `memory` or `redis`").
///
/// # Errors
/// For a name that is not one of `T`'s.
pub fn one_of<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let name = String::deserialize(d)?;
    T::deserialize(StringDeserializer::<D::Error>::new(name))
}

/// An IP address and port, such as `0.0.0.0:8080` or `[::]:8080`.
///
/// # Errors
/// For anything else, a host name included, naming the value.
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "`{text}` is not an IP address and port such as 0.0.0.0:8080 or [::]:8080 \
             (host names are not accepted)"
        ))
    })
}

/// A string that is not empty, when given: an empty one is refused rather than taken as a
/// value that matches nothing (an empty `HERALD__AUTH__AUDIENCE=` would refuse every token).
///
/// # Errors
/// For an empty string.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) if s.trim().is_empty() => Err(de::Error::custom(
            "the value is empty: leave the key out (unset the variable) for none",
        )),
        other => Ok(other),
    }
}

/// A duration with its unit: `10s`, `500ms`, `2m`, `1h 30m`, `0s`.
pub mod duration {
    use super::{de, fmt, Deserializer, Duration, Visitor};

    /// Reads a duration.
    ///
    /// # Errors
    /// For a number without a unit, or text that is not a duration, naming it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    pub(super) struct DurationVisitor;

    fn unit_needed<E: de::Error>(v: impl fmt::Display) -> E {
        E::custom(format!(
            "`{v}` has no unit: a duration needs one, such as 10s, 500ms or 2m"
        ))
    }

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration with a unit, such as 10s, 500ms or 2m")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            if !v.is_empty() && v.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(unit_needed(v));
            }
            humantime::parse_duration(v).map_err(|e| {
                E::custom(format!(
                    "`{v}` is not a duration ({e}): write it with a unit, such as 10s, 500ms or 2m"
                ))
            })
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(unit_needed(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Err(unit_needed(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(unit_needed(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::{
        value::{BoolDeserializer, Error, I64Deserializer, StrDeserializer},
        IntoDeserializer,
    };

    use super::*;

    fn text(s: &str) -> StrDeserializer<'_, Error> {
        s.into_deserializer()
    }

    #[test]
    fn booleans_are_true_or_false_only() {
        assert!(boolean(BoolDeserializer::<Error>::new(true)).unwrap());
        assert!(!boolean(text("false")).unwrap());
        let e = boolean(text("no")).unwrap_err().to_string();
        assert!(e.contains("`no`") && e.contains("true or false"), "{e}");
        let e = boolean(I64Deserializer::<Error>::new(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`1`"), "{e}");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(
            duration::deserialize(text("1m 30s")).unwrap(),
            Duration::from_secs(90)
        );
        let e = duration::deserialize(text("10")).unwrap_err().to_string();
        assert!(e.contains("`10` has no unit"), "{e}");
        let e = duration::deserialize(I64Deserializer::<Error>::new(10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs one"), "{e}");
        let e = duration::deserialize(text("soon")).unwrap_err().to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
    }

    #[test]
    fn enums_list_their_names() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Kind {
            Memory,
            Redis,
        }
        assert_eq!(one_of::<_, Kind>(text("redis")).unwrap(), Kind::Redis);
        let e = one_of::<_, Kind>(text("redsi")).unwrap_err().to_string();
        assert!(
            e.contains("`redsi`") && e.contains("`memory` or `redis`"),
            "{e}"
        );
    }

    #[test]
    fn addresses_are_ip_and_port() {
        assert_eq!(
            socket_addr(text("[::]:8080")).unwrap(),
            "[::]:8080".parse::<SocketAddr>().unwrap()
        );
        let e = socket_addr(text("localhost:9090")).unwrap_err().to_string();
        assert!(
            e.contains("`localhost:9090`") && e.contains("host names"),
            "{e}"
        );
    }

    #[test]
    fn empty_strings_are_refused() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Auth {
            #[serde(deserialize_with = "non_empty")]
            audience: Option<String>,
        }
        let load = |value: &str| {
            crate::load_from::<Auth>(
                None,
                [("HERALD__AUDIENCE".to_owned(), value.to_owned())],
                &[],
            )
        };
        assert_eq!(load("api").unwrap().audience.as_deref(), Some("api"));
        let e = load("").unwrap_err().to_string();
        assert!(e.contains("empty") && e.contains("HERALD__AUDIENCE"), "{e}");
    }
}

//! Which master owns which slot, read with `CLUSTER SLOTS`.

use crate::{
    conn::{Connector, LinkError},
    resp::Value,
    slot::SLOTS,
    Endpoint,
};

/// A snapshot of the cluster's slot ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Topology {
    /// The masters, each once.
    pub(crate) masters: Vec<Endpoint>,
    /// For each slot, the index in `masters` of its owner (`u16::MAX`: unassigned).
    owner: Vec<u16>,
}

impl Topology {
    /// The master owning `slot`, if any.
    pub(crate) fn owner(&self, slot: u16) -> Option<&Endpoint> {
        let i = *self.owner.get(usize::from(slot))?;
        self.masters.get(usize::from(i))
    }

    /// True when every slot has an owner.
    pub(crate) fn is_complete(&self) -> bool {
        self.owner.iter().all(|&i| i != u16::MAX)
    }

    /// Parses a `CLUSTER SLOTS` reply; credentials are taken from `template`.
    pub(crate) fn from_reply(reply: &Value, template: &Endpoint) -> Option<Self> {
        let Value::Array(Some(ranges)) = reply else {
            return None;
        };
        let mut topology = Self {
            masters: Vec::new(),
            owner: vec![u16::MAX; SLOTS],
        };
        for range in ranges {
            let Value::Array(Some(fields)) = range else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(Some(master)))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return None;
            };
            let host = std::str::from_utf8(master.first()?.as_bytes()?).ok()?;
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            let endpoint = Endpoint {
                host: if host.is_empty() {
                    template.host.clone()
                } else {
                    host.to_owned()
                },
                port: u16::try_from(*port).ok()?,
                ..template.clone()
            };
            let index = match topology.masters.iter().position(|m| *m == endpoint) {
                Some(i) => i,
                None => {
                    topology.masters.push(endpoint);
                    topology.masters.len() - 1
                }
            };
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            if start > end || end >= SLOTS {
                return None;
            }
            for slot in &mut topology.owner[start..=end] {
                *slot = u16::try_from(index).ok()?;
            }
        }
        Some(topology)
    }

    /// Asks the first of `nodes` that answers.
    pub(crate) async fn fetch(
        nodes: &[Endpoint],
        connector: &Connector,
    ) -> Result<Self, LinkError> {
        let mut last = LinkError::Closed;
        for node in nodes {
            let reply = match connector.open(node).await {
                Ok(mut conn) => conn.call(&[b"CLUSTER", b"SLOTS"], connector.timeout).await,
                Err(e) => Err(e),
            };
            match reply {
                Ok(reply) => {
                    if let Some(t) = Self::from_reply(&reply, node) {
                        if t.is_complete() {
                            return Ok(t);
                        }
                    }
                    last = LinkError::Unexpected;
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(Some(vec![
            Value::Bulk(Some(Bytes::from(host.to_owned()))),
            Value::Int(port),
            Value::Bulk(Some(Bytes::from_static(b"id"))),
        ]))
    }

    #[test]
    fn parses_cluster_slots() {
        let reply = Value::Array(Some(vec![
            Value::Array(Some(vec![
                Value::Int(0),
                Value::Int(8191),
                node("10.0.0.1", 7000),
                node("10.0.0.2", 7001),
            ])),
            Value::Array(Some(vec![
                Value::Int(8192),
                Value::Int(16383),
                node("", 7002),
            ])),
        ]));
        let template = Endpoint::parse("redis://:pw@seed:7000").unwrap();
        let t = Topology::from_reply(&reply, &template).unwrap();
        assert!(t.is_complete());
        assert_eq!(t.masters.len(), 2);
        assert_eq!(t.owner(0).unwrap().port, 7000);
        assert_eq!(
            t.owner(16383).unwrap().host,
            "seed",
            "an empty host means the node asked"
        );
        assert_eq!(t.owner(16383).unwrap().password.as_deref(), Some("pw"));
        let partial = Value::Array(Some(vec![Value::Array(Some(vec![
            Value::Int(0),
            Value::Int(10),
            node("a", 1),
        ]))]));
        assert!(!Topology::from_reply(&partial, &template)
            .unwrap()
            .is_complete());
        assert!(Topology::from_reply(&Value::Int(1), &template).is_none());
    }
}

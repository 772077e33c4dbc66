//! The other nodes of the cluster, as their heartbeats describe them.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::control::NodeInfo;

/// The nodes heard from, each with when it was last heard.
#[derive(Default)]
pub(crate) struct Nodes {
    heard: Mutex<HashMap<String, (NodeInfo, Instant)>>,
}

impl Nodes {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, (NodeInfo, Instant)>> {
        self.heard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `info`, heard `at`; true when the node was not known (a newcomer).
    pub(crate) fn heard(&self, info: NodeInfo, at: Instant) -> bool {
        self.table().insert(info.id.clone(), (info, at)).is_none()
    }

    /// Forgets node `id` (it said it stopped).
    pub(crate) fn forget(&self, id: &str) {
        self.table().remove(id);
    }

    /// The nodes heard within `expiry` of `now`; forgets the others.
    pub(crate) fn alive(&self, now: Instant, expiry: Duration) -> Vec<NodeInfo> {
        let mut table = self.table();
        table.retain(|_, (_, at)| now.saturating_duration_since(*at) <= expiry);
        table.values().map(|(info, _)| info.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::NodeState;

    fn info(id: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            version: "1".into(),
            started_at: 0,
            connections: 0,
            channels: 0,
            subscriptions: 0,
            state: NodeState::Ready,
        }
    }

    #[test]
    fn a_node_not_heard_within_the_expiry_is_forgotten() {
        let nodes = Nodes::default();
        let start = Instant::now();
        let expiry = Duration::from_secs(15);
        assert!(nodes.heard(info("a"), start));
        assert!(nodes.heard(info("b"), start + Duration::from_secs(10)));
        assert!(!nodes.heard(info("a"), start + Duration::from_secs(5)));
        let ids = |v: Vec<NodeInfo>| {
            let mut ids: Vec<String> = v.into_iter().map(|i| i.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids(nodes.alive(start + Duration::from_secs(20), expiry)),
            ["a", "b"]
        );
        assert_eq!(
            ids(nodes.alive(start + Duration::from_secs(21), expiry)),
            ["b"]
        );
        assert!(
            nodes.heard(info("a"), start + Duration::from_secs(22)),
            "a newcomer again"
        );
        nodes.forget("b");
        assert_eq!(
            ids(nodes.alive(start + Duration::from_secs(22), expiry)),
            ["a"]
        );
    }
}

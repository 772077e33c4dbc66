//! Deterministic tests of the presence table: nodes, leases and exactly-once events.

use super::*;

const LEASE: Millis = 10_000;

fn ch(s: &str) -> ChannelName {
    ChannelName::parse(s).unwrap()
}

fn u(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn node(n: u128) -> NodeId {
    NodeId(uuid::Uuid::from_u128(n))
}

fn join(t: &mut PresenceTable, n: u128, user: &str, now: Millis) -> Option<Event> {
    t.join(node(n), ch("room"), u(user), Bytes::from_static(b"{}"), now)
}

fn leave_of(user: &str) -> Event {
    Event::Leave {
        channel: ch("room"),
        user: u(user),
        info: Bytes::from_static(b"{}"),
    }
}

#[test]
fn a_member_joins_on_its_first_node_and_leaves_on_its_last() {
    let mut t = PresenceTable::new(LEASE);
    assert!(matches!(
        join(&mut t, 1, "alice", 0),
        Some(Event::Join { .. })
    ));
    assert_eq!(join(&mut t, 2, "alice", 0), None, "already a member");
    assert_eq!(join(&mut t, 2, "alice", 0), None, "reports are idempotent");
    assert_eq!(t.count(&ch("room")), 1);
    assert_eq!(t.leave(node(1), &ch("room"), &u("alice"), 1), None);
    assert_eq!(
        t.leave(node(2), &ch("room"), &u("alice"), 1),
        Some(leave_of("alice"))
    );
    assert_eq!(
        t.leave(node(2), &ch("room"), &u("alice"), 1),
        None,
        "exactly once"
    );
    assert_eq!(t.count(&ch("room")), 0);
}

#[test]
fn a_dead_node_s_members_leave_once_when_its_lease_runs_out() {
    let mut t = PresenceTable::new(LEASE);
    join(&mut t, 1, "alice", 0);
    join(&mut t, 1, "bob", 0);
    join(&mut t, 2, "bob", 0);
    // Node 2 renews its lease; node 1 has died (kill -9): no goodbye, no more heartbeats.
    assert!(t.heartbeat(node(2), 6_000));
    assert!(t.expire(9_999).is_empty(), "not before the lease ends");
    assert_eq!(
        t.expire(10_000),
        vec![leave_of("alice")],
        "bob is still on node 2"
    );
    assert!(t.expire(10_001).is_empty(), "exactly once");
    assert_eq!(t.members(&ch("room")).len(), 1);
    assert_eq!(t.members(&ch("room"))[0].0, u("bob"));
    // Node 2 stops renewing too.
    assert_eq!(t.expire(16_000), vec![leave_of("bob")]);
    assert_eq!(t.count(&ch("room")), 0);
}

#[test]
fn graceful_departure_leaves_at_once() {
    let mut t = PresenceTable::new(LEASE);
    join(&mut t, 1, "alice", 0);
    join(&mut t, 1, "carol", 0);
    join(&mut t, 2, "carol", 0);
    assert_eq!(t.node_gone(node(1)), vec![leave_of("alice")]);
    assert!(t.node_gone(node(1)).is_empty());
    assert_eq!(t.count(&ch("room")), 1);
}

#[test]
fn a_forgotten_node_is_told_to_report_again() {
    let mut t = PresenceTable::new(LEASE);
    assert!(!t.heartbeat(node(1), 0), "a new node reports its members");
    assert!(t.heartbeat(node(1), 5_000));
    // The table restarted empty (or the node's lease ran out): the next heartbeat says so, and
    // the node's re-reported members join again, once.
    let mut fresh = PresenceTable::new(LEASE);
    assert!(!fresh.heartbeat(node(1), 6_000));
    assert!(matches!(
        join(&mut fresh, 1, "alice", 6_000),
        Some(Event::Join { .. })
    ));
    assert_eq!(join(&mut fresh, 1, "alice", 6_001), None);
}

#[test]
fn a_leave_from_an_expired_node_does_not_leave_twice() {
    let mut t = PresenceTable::new(LEASE);
    join(&mut t, 1, "alice", 0);
    assert_eq!(t.expire(LEASE), vec![leave_of("alice")]);
    // A late report from the node that was presumed dead changes nothing.
    assert_eq!(t.leave(node(1), &ch("room"), &u("alice"), LEASE + 1), None);
}

#[test]
fn ten_thousand_members_are_listed_in_order() {
    let mut t = PresenceTable::new(LEASE);
    for i in 0..10_000 {
        join(&mut t, (i % 3) as u128, &format!("user{i:05}"), 0);
    }
    let members = t.members(&ch("room"));
    assert_eq!(members.len(), 10_000);
    assert_eq!(t.count(&ch("room")), 10_000);
    assert!(members.windows(2).all(|w| w[0].0 < w[1].0));
}

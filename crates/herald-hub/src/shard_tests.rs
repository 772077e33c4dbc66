//! Deterministic tests of the hub shard with a fake sink.

use std::{cell::RefCell, rc::Rc};

use super::*;

/// A sink that records frames and holds at most `capacity` of them.
#[derive(Clone)]
struct FakeSink {
    format: WireFormat,
    capacity: usize,
    frames: Rc<RefCell<Vec<Bytes>>>,
    evicted: Rc<RefCell<bool>>,
    terminated: Rc<RefCell<bool>>,
}

impl FakeSink {
    fn new(format: WireFormat, capacity: usize) -> Self {
        Self {
            format,
            capacity,
            frames: Rc::default(),
            evicted: Rc::default(),
            terminated: Rc::default(),
        }
    }

    fn received(&self) -> Vec<Bytes> {
        self.frames.borrow().clone()
    }
}

impl Sink for FakeSink {
    fn format(&self) -> WireFormat {
        self.format
    }

    fn push(&self, frame: &Bytes) -> Push {
        if *self.evicted.borrow() {
            return Push::Closed;
        }
        if self.frames.borrow().len() >= self.capacity {
            *self.evicted.borrow_mut() = true;
            return Push::Evicted;
        }
        self.frames.borrow_mut().push(frame.clone());
        Push::Queued
    }

    fn terminate(&self) {
        *self.terminated.borrow_mut() = true;
    }
}

type Shard = HubShard<FakeSink, u32>;

fn ch(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

fn json_sink() -> FakeSink {
    FakeSink::new(WireFormat::Json, 100)
}

fn settled(waiter: u32, channel: &str, outcome: Settlement) -> Action<u32> {
    Action::Settled {
        waiter,
        channel: ch(channel),
        outcome,
    }
}

fn encoder(calls: &RefCell<Vec<WireFormat>>) -> impl FnMut(WireFormat) -> Option<Bytes> + '_ {
    move |f| {
        calls.borrow_mut().push(f);
        Some(Bytes::from(format!("{f:?}")))
    }
}

#[test]
fn first_subscriber_subscribes_the_broker_and_waits_for_it() {
    let mut hub = Shard::new();
    let a = json_sink();
    assert_eq!(
        hub.subscribe(ConnId(1), a.clone(), ch("news"), 10),
        Some(Action::BrokerSubscribe(ch("news")))
    );
    // A second request while the broker is busy waits too, with no second broker call.
    assert_eq!(hub.subscribe(ConnId(2), json_sink(), ch("news"), 20), None);
    // Nothing is delivered before the broker answers.
    let calls = RefCell::new(vec![]);
    assert_eq!(hub.publish(&ch("news"), encoder(&calls)).delivered, 0);

    let actions = hub.broker_subscribed(&ch("news"), true);
    assert_eq!(
        actions,
        vec![
            settled(10, "news", Settlement::Subscribed),
            settled(20, "news", Settlement::Subscribed)
        ]
    );
    assert_eq!(hub.subscriber_count("news"), 2);
    // Later subscribers settle at once.
    assert_eq!(
        hub.subscribe(ConnId(3), json_sink(), ch("news"), 30),
        Some(settled(30, "news", Settlement::Subscribed))
    );
}

#[test]
fn broker_failure_rolls_back_every_waiter() {
    let mut hub = Shard::new();
    hub.subscribe(ConnId(1), json_sink(), ch("news"), 1);
    hub.subscribe(ConnId(2), json_sink(), ch("news"), 2);
    let actions = hub.broker_subscribed(&ch("news"), false);
    assert_eq!(
        actions,
        vec![
            settled(1, "news", Settlement::Refused),
            settled(2, "news", Settlement::Refused)
        ]
    );
    assert_eq!(hub.channel_count(), 0);
    // Nothing is left of the connections: the next subscribe asks the broker again.
    assert!(hub.disconnect(ConnId(1)).is_empty());
    assert_eq!(
        hub.subscribe(ConnId(1), json_sink(), ch("news"), 3),
        Some(Action::BrokerSubscribe(ch("news")))
    );
}

#[test]
fn last_leaver_unsubscribes_the_broker() {
    let mut hub = Shard::new();
    hub.subscribe(ConnId(1), json_sink(), ch("news"), 1);
    hub.broker_subscribed(&ch("news"), true);
    hub.subscribe(ConnId(2), json_sink(), ch("news"), 2);
    assert!(hub.unsubscribe(ConnId(1), &ch("news")).is_empty());
    assert!(
        hub.unsubscribe(ConnId(1), &ch("news")).is_empty(),
        "a repeated unsubscribe changes nothing"
    );
    assert_eq!(
        hub.unsubscribe(ConnId(2), &ch("news")),
        vec![Action::BrokerUnsubscribe(ch("news"))]
    );
    assert_eq!(hub.channel_count(), 0);
}

#[test]
fn disconnect_leaves_every_channel() {
    let mut hub = Shard::new();
    for name in ["a", "b"] {
        hub.subscribe(ConnId(1), json_sink(), ch(name), 1);
        hub.broker_subscribed(&ch(name), true);
    }
    hub.subscribe(ConnId(2), json_sink(), ch("b"), 2);
    let actions = hub.disconnect(ConnId(1));
    assert_eq!(actions, vec![Action::BrokerUnsubscribe(ch("a"))]);
    assert_eq!(hub.subscriber_count("b"), 1);
}

#[test]
fn everyone_leaving_while_pending_unsubscribes_when_the_broker_answers() {
    let mut hub = Shard::new();
    hub.subscribe(ConnId(1), json_sink(), ch("news"), 1);
    hub.subscribe(ConnId(2), json_sink(), ch("news"), 2);
    assert!(hub.disconnect(ConnId(1)).is_empty());
    // An unsubscribe of a waiting request settles it as withdrawn: it does not receive.
    assert_eq!(
        hub.unsubscribe(ConnId(2), &ch("news")),
        vec![settled(2, "news", Settlement::Withdrawn)]
    );
    assert_eq!(
        hub.broker_subscribed(&ch("news"), true),
        vec![Action::BrokerUnsubscribe(ch("news"))]
    );
    assert_eq!(hub.channel_count(), 0);
}

#[test]
fn resubscribing_the_same_channel_is_idempotent() {
    let mut hub = Shard::new();
    let a = json_sink();
    hub.subscribe(ConnId(1), a.clone(), ch("news"), 1);
    hub.subscribe(ConnId(1), a.clone(), ch("news"), 2);
    hub.broker_subscribed(&ch("news"), true);
    hub.subscribe(ConnId(1), a.clone(), ch("news"), 3);
    assert_eq!(hub.subscriber_count("news"), 1);
    let calls = RefCell::new(vec![]);
    assert_eq!(hub.publish(&ch("news"), encoder(&calls)).delivered, 1);
    assert_eq!(
        hub.unsubscribe(ConnId(1), &ch("news")),
        vec![Action::BrokerUnsubscribe(ch("news"))]
    );
}

#[test]
fn publish_encodes_once_per_format_and_shares_the_bytes() {
    let mut hub = Shard::new();
    let sinks: Vec<FakeSink> = (0..10)
        .map(|i| {
            let format = if i % 2 == 0 {
                WireFormat::Json
            } else {
                WireFormat::MsgPack
            };
            FakeSink::new(format, 100)
        })
        .collect();
    for (i, s) in sinks.iter().enumerate() {
        hub.subscribe(ConnId(i as u64), s.clone(), ch("news"), 0);
    }
    hub.broker_subscribed(&ch("news"), true);
    let calls = RefCell::new(vec![]);
    let fanout = hub.publish(&ch("news"), encoder(&calls));
    assert_eq!(fanout.delivered, 10);
    assert_eq!(*calls.borrow(), vec![WireFormat::Json, WireFormat::MsgPack]);
    let first_json = sinks[0].received()[0].clone();
    for s in sinks.iter().step_by(2) {
        // The very same allocation, not a copy.
        assert_eq!(s.received()[0].as_ptr(), first_json.as_ptr());
    }
    assert_eq!(&sinks[1].received()[0][..], b"MsgPack");
    // A channel with no subscribers encodes nothing.
    let calls = RefCell::new(vec![]);
    assert_eq!(hub.publish(&ch("other"), encoder(&calls)).delivered, 0);
    assert!(calls.borrow().is_empty());
}

#[test]
fn a_full_sink_is_evicted_and_the_others_keep_receiving() {
    let mut hub = Shard::new();
    let slow = FakeSink::new(WireFormat::Json, 2);
    let fast = FakeSink::new(WireFormat::Json, 100);
    hub.subscribe(ConnId(1), slow.clone(), ch("news"), 0);
    hub.subscribe(ConnId(2), fast.clone(), ch("news"), 0);
    hub.subscribe(ConnId(1), slow.clone(), ch("solo"), 0);
    hub.broker_subscribed(&ch("news"), true);
    hub.broker_subscribed(&ch("solo"), true);
    let calls = RefCell::new(vec![]);
    for _ in 0..2 {
        assert!(hub.publish(&ch("news"), encoder(&calls)).evicted.is_empty());
    }
    let fanout = hub.publish(&ch("news"), encoder(&calls));
    assert_eq!(fanout.evicted, vec![ConnId(1)]);
    assert_eq!(fanout.delivered, 1);
    // The evicted connection's other channel had no one else: it is given back to the broker.
    assert_eq!(fanout.actions, vec![Action::BrokerUnsubscribe(ch("solo"))]);
    for _ in 0..5 {
        hub.publish(&ch("news"), encoder(&calls));
    }
    assert_eq!(fast.received().len(), 8);
    assert_eq!(slow.received().len(), 2);
}

#[test]
fn a_failed_encoding_skips_that_format_only() {
    let mut hub = Shard::new();
    let j = FakeSink::new(WireFormat::Json, 10);
    let m = FakeSink::new(WireFormat::MsgPack, 10);
    hub.subscribe(ConnId(1), j.clone(), ch("news"), 0);
    hub.subscribe(ConnId(2), m.clone(), ch("news"), 0);
    hub.broker_subscribed(&ch("news"), true);
    let fanout = hub.publish(&ch("news"), |f| {
        (f == WireFormat::Json).then(|| Bytes::from_static(b"j"))
    });
    assert_eq!(fanout.delivered, 1);
    assert!(fanout.evicted.is_empty());
    assert!(m.received().is_empty());
}

#[test]
fn shard_of_is_stable_and_in_range() {
    let c = ch("chat:room1");
    assert_eq!(crate::shard_of(&c, 4), crate::shard_of(&c, 4));
    assert!((0..1000).all(|i| crate::shard_of(&ch(&format!("c{i}")), 3) < 3));
    assert_eq!(crate::shard_of(&c, 1), 0);
}

#[test]
fn subscription_count_follows_live_subscriptions_only() {
    let mut hub = Shard::new();
    hub.subscribe(ConnId(1), json_sink(), ch("a"), 1);
    hub.subscribe(ConnId(2), json_sink(), ch("a"), 2);
    // Waiting for the broker: not receiving yet.
    assert_eq!(hub.subscription_count(), 0);
    hub.broker_subscribed(&ch("a"), true);
    assert_eq!(hub.subscription_count(), 2);
    // Again on the same channel: still one subscription.
    hub.subscribe(ConnId(1), json_sink(), ch("a"), 3);
    assert_eq!(hub.subscription_count(), 2);
    // Refused by the broker: never counted.
    hub.subscribe(ConnId(1), json_sink(), ch("b"), 4);
    hub.broker_subscribed(&ch("b"), false);
    assert_eq!(hub.subscription_count(), 2);
    hub.unsubscribe(ConnId(2), &ch("a"));
    assert_eq!(hub.subscription_count(), 1);
    hub.unsubscribe(ConnId(2), &ch("a"));
    assert_eq!(hub.subscription_count(), 1);
    hub.disconnect(ConnId(1));
    assert_eq!(hub.subscription_count(), 0);
}

#[test]
fn a_publication_can_leave_its_sender_out() {
    let mut hub = Shard::new();
    let (a, b) = (json_sink(), json_sink());
    hub.subscribe(ConnId(1), a.clone(), ch("news"), 1);
    hub.subscribe(ConnId(2), b.clone(), ch("news"), 2);
    hub.broker_subscribed(&ch("news"), true);
    let calls = RefCell::new(vec![]);
    let fanout = hub.publish_except(&ch("news"), &[ConnId(1)], encoder(&calls));
    assert_eq!(fanout.delivered, 1);
    assert_eq!((a.received().len(), b.received().len()), (0, 1));
    assert_eq!(hub.publish(&ch("news"), encoder(&calls)).delivered, 2);
}

#[test]
fn counted_subscriptions_report_each_changed_channel_once_with_its_count() {
    let mut hub = Shard::new();
    hub.subscribe(ConnId(1), json_sink(), ch("a"), 1);
    hub.broker_subscribed(&ch("a"), true);
    assert_eq!(hub.take_counts(), [], "not counting");
    hub.count_subscriptions();
    hub.subscribe(ConnId(2), json_sink(), ch("a"), 2);
    hub.subscribe(ConnId(3), json_sink(), ch("a"), 3);
    hub.subscribe(ConnId(3), json_sink(), ch("b"), 4);
    assert_eq!(hub.take_counts(), [(ch("a"), 3)], "b waits for the broker");
    assert_eq!(hub.take_counts(), [], "taken");
    hub.broker_subscribed(&ch("b"), true);
    hub.unsubscribe(ConnId(1), &ch("a"));
    let mut counts = hub.take_counts();
    counts.sort();
    assert_eq!(counts, [(ch("a"), 2), (ch("b"), 1)]);
    hub.disconnect(ConnId(3));
    let mut counts = hub.take_counts();
    counts.sort();
    assert_eq!(counts, [(ch("a"), 1), (ch("b"), 0)]);
}

#[test]
fn terminate_ends_the_subscribers_of_one_format_only() {
    let mut hub = Shard::new();
    let json = json_sink();
    let pusher = FakeSink::new(WireFormat::Pusher, 10);
    hub.subscribe(ConnId(1), json.clone(), ch("user"), 10);
    hub.broker_subscribed(&ch("user"), true);
    hub.subscribe(ConnId(2), pusher.clone(), ch("user"), 20);
    assert_eq!(hub.terminate(&ch("user"), WireFormat::Pusher), 1);
    assert!(*pusher.terminated.borrow());
    assert!(!*json.terminated.borrow());
    assert_eq!(hub.terminate(&ch("nobody"), WireFormat::Pusher), 0);
    assert_eq!(
        hub.subscriber_count("user"),
        2,
        "they leave when they disconnect"
    );
}

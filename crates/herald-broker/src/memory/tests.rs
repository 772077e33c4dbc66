//! Tests of `memory`.

use std::sync::Mutex as StdMutex;

use super::*;

#[derive(Default)]
struct Recorder(StdMutex<Vec<Publication>>);

impl Inbox for Recorder {
    fn deliver(&self, p: Publication) -> BoxFuture<'_, ()> {
        self.0.lock().unwrap().push(p);
        Box::pin(async {})
    }

    fn presence(
        &self,
        _: ChannelName,
        _: herald_protocol::presence::PresenceNotice,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn gap(&self, _: ChannelName, _: &'static str) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn ch(s: &str) -> ChannelName {
    ChannelName::parse(s).unwrap()
}

#[tokio::test]
async fn delivers_to_subscribed_nodes_only_with_shared_offsets() {
    let bus = MemoryBus::new();
    let (ra, rb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let a = bus.join(ra.clone());
    let b = bus.join(rb.clone());
    a.subscribe(&ch("news")).await.unwrap();
    b.subscribe(&ch("news")).await.unwrap();
    b.subscribe(&ch("other")).await.unwrap();

    let p1 = a
        .publish(ch("news"), Bytes::from_static(b"1"), PublishMeta::default())
        .await
        .unwrap();
    let p2 = b
        .publish(ch("news"), Bytes::from_static(b"2"), PublishMeta::default())
        .await
        .unwrap();
    b.publish(
        ch("other"),
        Bytes::from_static(b"3"),
        PublishMeta::default(),
    )
    .await
    .unwrap();
    assert_eq!((p1.offset, p2.offset), (Some(1), Some(2)));

    let offsets = |r: &Recorder| -> Vec<(String, Option<u64>)> {
        r.0.lock()
            .unwrap()
            .iter()
            .map(|p| (p.channel.to_string(), p.offset))
            .collect()
    };
    assert_eq!(
        offsets(&ra),
        vec![("news".into(), Some(1)), ("news".into(), Some(2))]
    );
    assert_eq!(offsets(&rb).len(), 3);

    a.unsubscribe(&ch("news"));
    a.publish(ch("news"), Bytes::from_static(b"4"), PublishMeta::default())
        .await
        .unwrap();
    assert_eq!(offsets(&ra).len(), 2, "unsubscribed nodes receive nothing");
    assert_eq!(offsets(&rb).len(), 4);
    drop(b);
    let p = a
        .publish(
            ch("other"),
            Bytes::from_static(b"5"),
            PublishMeta::default(),
        )
        .await
        .unwrap();
    assert_eq!(p.offset, Some(2));
    assert_eq!(offsets(&rb).len(), 4, "a dropped node receives nothing");
}

#[tokio::test]
async fn history_keeps_the_last_publications_and_reads_from_a_position() {
    let bus = MemoryBus::new();
    let a = bus.join(Arc::new(Recorder::default()));
    let keep = HistoryKeep {
        size: 3,
        ttl: std::time::Duration::from_secs(60),
    };
    let meta = PublishMeta {
        history: keep,
        ..PublishMeta::default()
    };
    let mut epochs = Vec::new();
    for i in 1..=5u8 {
        let data = Bytes::from(i.to_string());
        epochs.push(
            a.publish(ch("news"), data, meta.clone())
                .await
                .unwrap()
                .epoch,
        );
    }
    assert!(epochs.windows(2).all(|w| w[0] == w[1] && w[0].is_some()));
    let query = |since, limit, reverse| HistoryQuery {
        since,
        limit,
        reverse,
        max_age: std::time::Duration::from_secs(60),
        window: 3,
    };
    let offsets = |h: &History| {
        h.publications
            .iter()
            .map(|p| p.offset.unwrap())
            .collect::<Vec<_>>()
    };
    let all = a
        .history(&ch("news"), query(None, 10, false))
        .await
        .unwrap();
    assert_eq!((all.offset, all.epoch.clone()), (5, epochs[0].clone()));
    assert_eq!(offsets(&all), [3, 4, 5], "three kept");
    let after = a
        .history(&ch("news"), query(Some(3), 10, false))
        .await
        .unwrap();
    assert_eq!(offsets(&after), [4, 5]);
    let newest = a.history(&ch("news"), query(None, 2, true)).await.unwrap();
    assert_eq!(offsets(&newest), [5, 4]);
    let none = a
        .history(&ch("other"), query(None, 10, false))
        .await
        .unwrap();
    assert_eq!(
        (none.offset, none.epoch, none.publications.len()),
        (0, None, 0)
    );
    // Too old for the reader's bound.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut old = query(None, 10, false);
    old.max_age = std::time::Duration::from_millis(1);
    assert!(a
        .history(&ch("news"), old)
        .await
        .unwrap()
        .publications
        .is_empty());
    // Without history, nothing is kept.
    a.publish(ch("news"), Bytes::from_static(b"6"), PublishMeta::default())
        .await
        .unwrap();
    let off = a
        .history(&ch("news"), query(None, 10, false))
        .await
        .unwrap();
    assert_eq!((off.offset, off.publications.len()), (6, 0));
}

/// Every kept publication.
const ANY: HistoryQuery = HistoryQuery {
    since: None,
    limit: 100,
    reverse: false,
    max_age: Duration::from_secs(60),
    window: 100,
};

#[tokio::test]
async fn an_idle_channel_is_forgotten_and_starts_again_in_a_new_epoch() {
    let bus = MemoryBus::with_offset_ttl(Duration::from_millis(200));
    let node = bus.join(Arc::new(Recorder::default()));
    let keep = PublishMeta {
        history: HistoryKeep {
            size: 10,
            ttl: Duration::from_secs(60),
        },
        ..PublishMeta::default()
    };
    let first = node
        .publish(ch("idle"), Bytes::from_static(b"1"), keep.clone())
        .await
        .unwrap();
    node.publish(ch("busy"), Bytes::from_static(b"1"), keep.clone())
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        node.publish(ch("busy"), Bytes::from_static(b"2"), keep.clone())
            .await
            .unwrap();
    }
    // `idle` went 300 ms without a publication: gone, history and all; `busy` is kept.
    assert!(!bus
        .inner
        .streams
        .lock()
        .await
        .by_channel
        .contains_key(&ch("idle")));
    let history = node.history(&ch("idle"), ANY).await.unwrap();
    assert_eq!((history.offset, history.epoch), (0, None));
    let again = node
        .publish(ch("idle"), Bytes::from_static(b"2"), keep.clone())
        .await
        .unwrap();
    assert_eq!(again.offset, Some(1), "offsets start again");
    assert_ne!(again.epoch, first.epoch, "in a new epoch");
    let busy = node.history(&ch("busy"), ANY).await.unwrap();
    assert_eq!(busy.offset, 6);
}

#[tokio::test]
async fn without_a_ttl_channels_are_kept() {
    let bus = MemoryBus::new();
    let node = bus.join(Arc::new(Recorder::default()));
    node.publish(ch("a"), Bytes::from_static(b"1"), PublishMeta::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    node.publish(ch("b"), Bytes::from_static(b"1"), PublishMeta::default())
        .await
        .unwrap();
    assert_eq!(bus.inner.streams.lock().await.by_channel.len(), 2);
}

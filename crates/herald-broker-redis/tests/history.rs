//! A channel's history and epoch in a real Redis: kept by the publish function within its
//! bounds, read back from a position, and a new epoch when the sequence starts again.

use std::time::Duration;

use bytes::Bytes;
use herald_broker::{Broker, HistoryKeep, HistoryQuery, PublishMeta};
use herald_protocol::ChannelName;
use herald_testkit::{redis_broker, RedisServer};

fn news() -> ChannelName {
    ChannelName::parse("news").unwrap()
}

fn query(since: Option<u64>, limit: usize, reverse: bool) -> HistoryQuery {
    HistoryQuery {
        since,
        limit,
        reverse,
        max_age: Duration::from_secs(60),
        window: 200,
    }
}

fn keep(size: u32) -> PublishMeta {
    PublishMeta {
        history: HistoryKeep {
            size,
            ttl: Duration::from_secs(60),
        },
        ..PublishMeta::default()
    }
}

fn offsets(history: &herald_broker::History) -> Vec<u64> {
    history
        .publications
        .iter()
        .map(|p| p.offset.unwrap())
        .collect()
}

#[tokio::test]
async fn history_is_kept_by_the_function_and_read_from_a_position() {
    let redis = RedisServer::start().await;
    let broker = redis_broker(&redis).await;
    let mut epochs = Vec::new();
    for i in 1..=250u32 {
        let data = Bytes::from(i.to_string());
        let published = broker.publish(news(), data, keep(200)).await.unwrap();
        assert_eq!(published.offset, Some(u64::from(i)));
        epochs.push(published.epoch.expect("an epoch"));
    }
    assert!(epochs.windows(2).all(|w| w[0] == w[1]), "one epoch");

    let all = broker
        .history(&news(), query(None, 1000, false))
        .await
        .unwrap();
    assert_eq!((all.offset, all.epoch.as_ref()), (250, Some(&epochs[0])));
    // Trimmed approximately, read exactly: the latest 200.
    let kept = offsets(&all);
    assert_eq!((kept.len(), kept[0], *kept.last().unwrap()), (200, 51, 250));
    assert!(
        kept.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no hole"
    );

    let after = broker
        .history(&news(), query(Some(245), 3, false))
        .await
        .unwrap();
    assert_eq!(offsets(&after), [246, 247, 248]);
    assert_eq!(&after.publications[0].data[..], b"246");
    assert_eq!(after.publications[0].epoch.as_ref(), Some(&epochs[0]));
    let newest = broker.history(&news(), query(None, 2, true)).await.unwrap();
    assert_eq!(offsets(&newest), [250, 249]);
    let newest_after = broker
        .history(&news(), query(Some(248), 10, true))
        .await
        .unwrap();
    assert_eq!(offsets(&newest_after), [250, 249]);
    // Where the stream stands, without publications.
    let top = broker
        .history(&news(), query(None, 0, false))
        .await
        .unwrap();
    assert_eq!((top.offset, top.publications.len()), (250, 0));

    // Too old for the reader.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut old = query(None, 10, false);
    old.max_age = Duration::from_millis(10);
    assert!(broker
        .history(&news(), old)
        .await
        .unwrap()
        .publications
        .is_empty());
    old.reverse = true;
    assert!(broker
        .history(&news(), old)
        .await
        .unwrap()
        .publications
        .is_empty());

    // A channel never published to.
    let other = ChannelName::parse("other").unwrap();
    let none = broker
        .history(&other, query(None, 10, false))
        .await
        .unwrap();
    assert_eq!(
        (none.offset, none.epoch, none.publications.len()),
        (0, None, 0)
    );
}

#[tokio::test]
async fn a_sequence_that_starts_again_gets_a_new_epoch_and_a_new_history() {
    let mut redis = RedisServer::start().await;
    let port = redis.port();
    let broker = redis_broker(&redis).await;
    let first = broker
        .publish(news(), Bytes::from_static(b"1"), keep(10))
        .await
        .unwrap();
    broker
        .publish(news(), Bytes::from_static(b"2"), keep(10))
        .await
        .unwrap();
    // Redis restarts without persistence: the counter is gone.
    redis.kill();
    let redis = RedisServer::start_on(port, &[]).await;
    let mut again = None;
    for _ in 0..250 {
        match broker
            .publish(news(), Bytes::from_static(b"3"), keep(10))
            .await
        {
            Ok(p) => {
                again = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let again = again.expect("published after the restart");
    assert_eq!(again.offset, Some(1));
    assert_ne!(again.epoch, first.epoch, "a new epoch");
    let history = broker
        .history(&news(), query(None, 10, false))
        .await
        .unwrap();
    assert_eq!(offsets(&history), [1]);
    assert_eq!(history.epoch, again.epoch);
    drop(redis);
}

#[tokio::test]
async fn a_channel_without_history_keeps_none() {
    let redis = RedisServer::start().await;
    let broker = redis_broker(&redis).await;
    for _ in 0..3 {
        broker
            .publish(news(), Bytes::from_static(b"1"), PublishMeta::default())
            .await
            .unwrap();
    }
    let history = broker
        .history(&news(), query(None, 10, false))
        .await
        .unwrap();
    assert_eq!((history.offset, history.publications.len()), (3, 0));
    assert!(history.epoch.is_some());
}

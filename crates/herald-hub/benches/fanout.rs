//! Hub fan-out: one publication pushed to 1,000 subscribers whose queues are a mutex-guarded
//! deque, as the gateway's are. Reports the time per publication; divide by 1,000 for the
//! time per delivery.

use std::{
    collections::VecDeque,
    hint::black_box,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_hub::{HubShard, Push, Sink};
use herald_protocol::{ChannelName, ConnId, WireFormat};

#[derive(Clone)]
struct QueueSink(Arc<Mutex<VecDeque<Bytes>>>);

impl Sink for QueueSink {
    fn format(&self) -> WireFormat {
        WireFormat::Json
    }

    fn push(&self, frame: &Bytes) -> Push {
        let mut q = self.0.lock().expect("queue");
        q.push_back(frame.clone());
        if q.len() > 1024 {
            q.clear();
        }
        Push::Queued
    }

    fn terminate(&self) {}
}

fn fanout(c: &mut Criterion) {
    let channel = ChannelName::parse("news").expect("name");
    let mut hub: HubShard<QueueSink, ()> = HubShard::new();
    for i in 0..1000 {
        let sink = QueueSink(Arc::default());
        hub.subscribe(ConnId(i), sink, channel.clone(), ());
    }
    hub.broker_subscribed(&channel, true);
    let data = Bytes::from(format!("\"{}\"", "x".repeat(98)));
    let mut group = c.benchmark_group("hub");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("publish_to_1000_subscribers", |b| {
        b.iter(|| {
            let fanout = hub.publish(&channel, |format| {
                herald_protocol::server::push(format, &channel, &data, Some(1), None).ok()
            });
            black_box(fanout.delivered)
        });
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);

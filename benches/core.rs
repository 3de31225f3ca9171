//! Core benchmarks: `cargo bench --features internals --bench core`.
//!
//! - Event dispatch through a call's fan-out (the broadcast ring and `EventStream` a `Call` uses)
//!   to 1 and 8 subscribers and through a typed sub-stream, beside a raw `tokio::sync::mpsc`
//!   channel moving the same events in the same run.
//! - The server core (sans-IO) in a 100-member room: group message, property change, leave + join.
//! - Frame decode and encode.
//! - A client's events from server frames: through the session alone (the path before the
//!   client core) and through the `ClientCore` a `Call` runs.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use jrtc::testing::bench::{
    ClientFeed, Core, EventSource, client_frame_text, message_event, server_frame,
};
use tokio_stream::wrappers::ReceiverStream;

/// Events per iteration: one ring's worth, so no subscriber lags.
const BATCH: u64 = 1024;

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("raw mpsc, 1 receiver", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (tx, rx) = tokio::sync::mpsc::channel(BATCH as usize);
                for i in 0..BATCH {
                    tx.try_send(message_event(i)).unwrap();
                }
                drop(tx);
                let mut rx = ReceiverStream::new(rx);
                while let Some(ev) = rx.next().await {
                    black_box(ev);
                }
            })
        })
    });
    for subscribers in [1usize, 8] {
        group.bench_function(format!("call events, {subscribers} subscriber(s)"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let source = EventSource::new(BATCH as usize);
                    let mut streams: Vec<_> =
                        (0..subscribers).map(|_| source.subscribe()).collect();
                    for i in 0..BATCH {
                        source.publish(message_event(i));
                    }
                    drop(source);
                    for stream in &mut streams {
                        while let Some(ev) = stream.next().await {
                            black_box(ev);
                        }
                    }
                })
            })
        });
    }
    group.bench_function("typed sub-stream (messages), 1 subscriber", |b| {
        b.iter(|| {
            rt.block_on(async {
                let source = EventSource::new(BATCH as usize);
                let mut chat = source.subscribe().messages();
                for i in 0..BATCH {
                    source.publish(message_event(i));
                }
                drop(source);
                while let Some(ev) = chat.next().await {
                    let _ = black_box(ev);
                }
            })
        })
    });
    group.finish();
}

fn room_core(c: &mut Criterion) {
    let mut group = c.benchmark_group("room core, 100 members");
    group.throughput(Throughput::Elements(1));
    // One core per benchmark: these operations leave the room as they found it.
    let mut core = Core::with_room(100);
    group.bench_function("group message", |b| {
        b.iter(|| black_box(core.group_message()))
    });
    let mut acked = Core::with_room(100);
    group.bench_function("group message, outboxes acknowledged every 64", |b| {
        b.iter(|| black_box(acked.group_message_acknowledged()))
    });
    group.bench_function("property change", |b| {
        b.iter(|| black_box(core.property_change()))
    });
    group.bench_function("leave and join again", |b| {
        b.iter(|| black_box(core.rejoin()))
    });
    group.finish();
}

fn frames(c: &mut Criterion) {
    let text = client_frame_text();
    let frame = server_frame();
    let mut group = c.benchmark_group("frames");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode a client frame", |b| {
        b.iter(|| black_box(jrtc::protocol::decode_client(black_box(&text)).unwrap()))
    });
    group.bench_function("encode a server frame", |b| {
        b.iter(|| black_box(jrtc::protocol::encode(black_box(&frame))))
    });
    group.finish();
}

fn client(c: &mut Criterion) {
    let feed = ClientFeed::new(BATCH);
    let mut group = c.benchmark_group("client events");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("session alone (the path before the client core)", |b| {
        b.iter(|| black_box(feed.through_session()))
    });
    group.bench_function("ClientCore", |b| b.iter(|| black_box(feed.through_core())));
    group.finish();
}

criterion_group!(benches, dispatch, room_core, frames, client);
criterion_main!(benches);

//! Resume measurements (not a pass/fail test): `cargo bench -p jrtc-server --bench resume`.
//!
//! A member's signaling connection goes through a proxy on 127.0.0.1 that resets it 100 times
//! while the room is busy (another member sends 50 messages a second). Measured per cut: from the
//! reset to the call's `Reconnected` (the network is back at once, so this is noticing the
//! reset, connecting, logging in with `resume` and getting the replay's header), p50 / p99 / max,
//! and how many frames each replay carried. The server runs in this process, on its own runtime
//! threads.

use std::time::{Duration, Instant};

use futures::StreamExt;
use jrtc::{CallEvent, CallOptions, JoinOptions, ReconnectPolicy, Server};
use jrtc_testkit::proxy;

fn main() {
    let cuts: usize = std::env::var("CUTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let server = Server::builder().development().start().await.unwrap();
        let token = |u: &str| {
            server
                .mint(&jrtc::AccessToken::new(u).grants(jrtc::Grants::all()))
                .unwrap()
        };
        let proxy = proxy::Proxy::start(server.local_addr()).await;
        let alice = jrtc::Call::connect(&server.url(), token("alice")).await.unwrap();
        let op = alice.join("r", JoinOptions::default()).await.unwrap();
        alice.outcome(op).await.unwrap();
        let options = CallOptions::default().reconnect(
            ReconnectPolicy::default().delays(Duration::from_millis(20), Duration::from_millis(200)),
        );
        let bob = jrtc::Call::connect_with(&proxy.url(), token("bob"), options)
            .await
            .unwrap();
        let op = bob.join("r", JoinOptions::default()).await.unwrap();
        bob.outcome(op).await.unwrap();
        let chatter = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0u64.. {
                tick.tick().await;
                let _ = alice.send_message(None, "t", i.to_string()).await;
            }
        });
        let mut events = bob.events();
        let mut times = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        let mut replayed_total = 0;
        for _ in 0..cuts {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let cut = Instant::now();
            proxy.cut(proxy::Cut::Reset);
            let replayed = loop {
                match events.next().await {
                    Some(CallEvent::Reconnected { replayed }) => break replayed,
                    Some(CallEvent::Closed { reason }) => panic!("closed: {reason}"),
                    Some(_) => {}
                    None => panic!("the stream ended"),
                }
            };
            times.record(cut.elapsed().as_micros() as u64).unwrap();
            replayed_total += replayed;
        }
        chatter.abort();
        let ms = |q: f64| times.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "resume after a reset, {cuts} cuts: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.1} frames replayed per resume",
            ms(0.5),
            ms(0.99),
            times.max() as f64 / 1000.0,
            replayed_total as f64 / cuts as f64
        );
    });
}

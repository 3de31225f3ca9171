//! Webhooks to a real HTTP receiver on 127.0.0.1: order, signatures, retries after the receiver
//! fails, and a dead receiver that never slows a call.

// `support::heavy()` is held for a whole test: each test has a runtime of its own, so waiting
// on it blocks only that test's thread.
#![allow(clippy::await_holding_lock)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use jrtc::{ServerHandle, TrackSource};
use serde_json::Value;

use crate::operations::{scrape, value};
use crate::support::{User, WAIT, builder};

const SECRET: &[u8] = b"the webhook tests' token secret, 32 bytes or more";

/// A receiver: what it took (signature header, body), and how many requests it still fails.
#[derive(Clone, Default)]
struct Receiver {
    took: Arc<Mutex<Vec<(String, Bytes)>>>,
    fail: Arc<AtomicUsize>,
    asked: Arc<AtomicUsize>,
}

impl Receiver {
    /// Listens on 127.0.0.1; returns the hook's URL. The first `fail` requests get a 500.
    async fn start(fail: usize) -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.fail.store(fail, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.asked.fetch_add(1, Ordering::SeqCst);
                    let failing = state
                        .fail
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let signature = headers
                        .get("jrtc-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    state.took.lock().unwrap().push((signature, body));
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// Waits until `n` events were taken; returns them as JSON, checking each signature.
    async fn events(&self, n: usize) -> Vec<Value> {
        let end = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let took = self.took.lock().unwrap().clone();
            if took.len() >= n {
                return took
                    .iter()
                    .map(|(signature, body)| {
                        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
                        mac.update(body);
                        let hex: String = mac
                            .finalize()
                            .into_bytes()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        assert_eq!(signature, &format!("sha256={hex}"), "signed body");
                        serde_json::from_slice(body).unwrap()
                    })
                    .collect();
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{} of {n} events: {took:?}",
                took.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Alice and bob meet; alice publishes her microphone; bob leaves, then alice.
async fn a_short_call(server: &ServerHandle) {
    let mut alice = User::connect(server, "alice").await;
    alice.join("w").await;
    let mut bob = User::connect(server, "bob").await;
    bob.join("w").await;
    let mic = alice
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let pump = crate::operations::pump(mic);
    loop {
        if let jrtc::CallEvent::Media(jrtc::MediaEvent::Published { .. }) = bob.next().await {
            break;
        }
    }
    let op = bob.call.leave().await.unwrap();
    crate::support::done(&bob.call, op).await;
    let op = alice.call.leave().await.unwrap();
    crate::support::done(&alice.call, op).await;
    pump.abort();
}

/// The (event, who or what, reason) of each webhook.
fn summary(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            let what = e["participant"]["user_id"]
                .as_str()
                .or(e["publication"]["id"].as_str())
                .or(e["room"].as_str())
                .unwrap_or_default();
            let reason = e["reason"].as_str().unwrap_or_default();
            (
                e["event"].as_str().unwrap().to_owned(),
                what.to_owned(),
                reason.to_owned(),
            )
        })
        .collect()
}

fn expected() -> Vec<(String, String, String)> {
    [
        ("room_started", "w", ""),
        ("participant_joined", "alice", ""),
        ("participant_joined", "bob", ""),
        ("track_published", "alice/microphone", ""),
        ("participant_left", "bob", "quit"),
        ("participant_left", "alice", "quit"),
        ("track_unpublished", "alice/microphone", "quit"),
        ("room_finished", "w", ""),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect()
}

/// Ids are `{run}-{n}` with `n` rising by one; times never go back.
fn check_ids(events: &[Value]) {
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap();
            id.rsplit_once('-').unwrap().1.parse().unwrap()
        })
        .collect();
    let first = numbers[0];
    assert_eq!(
        numbers,
        (first..first + numbers.len() as u64).collect::<Vec<_>>()
    );
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["at_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn events_arrive_signed_and_in_order() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let (receiver, url) = Receiver::start(0).await;
    let server = builder().secret(SECRET).webhook(url).start().await.unwrap();
    a_short_call(&server).await;
    let events = receiver.events(8).await;
    assert_eq!(summary(&events), expected());
    check_ids(&events);
    assert_eq!(events[1]["participant"]["role"], "host");
    // Nothing more, nothing twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.took.lock().unwrap().len(), 8);
    let page = scrape(&server).await;
    assert_eq!(value(&page, "jrtc_webhooks_total{kind=\"delivered\"}"), 8.0);
    assert_eq!(value(&page, "jrtc_webhook_queue"), 0.0);
}

#[tokio::test]
async fn a_failing_receiver_gets_every_event_again_in_order() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let (receiver, url) = Receiver::start(3).await;
    let server = builder()
        .secret(SECRET)
        .webhook(url)
        .webhook_retries(Duration::from_secs(2), 8)
        .start()
        .await
        .unwrap();
    a_short_call(&server).await;
    let events = receiver.events(8).await;
    assert_eq!(summary(&events), expected());
    check_ids(&events);
    assert_eq!(receiver.asked.load(Ordering::SeqCst), 8 + 3);
    let page = scrape(&server).await;
    assert_eq!(value(&page, "jrtc_webhooks_total{kind=\"retried\"}"), 3.0);
    assert_eq!(value(&page, "jrtc_webhooks_total{kind=\"delivered\"}"), 8.0);
    assert_eq!(value(&page, "jrtc_webhooks_total{kind=\"dropped\"}"), 0.0);
}

#[tokio::test]
async fn a_dead_receiver_never_slows_a_call_and_its_drops_are_counted() {
    // Accepts connections and never answers (a hung backend).
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", hole.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            sockets.push(socket);
        }
    });
    let server = builder()
        .secret(SECRET)
        .webhook(url)
        .webhook_queue(4)
        .webhook_retries(Duration::from_millis(500), 2)
        .start()
        .await
        .unwrap();
    // Ten calls, each well within the usual wait, while the hook hangs.
    let started = tokio::time::Instant::now();
    for round in 0..10 {
        let room = format!("dead-{round}");
        let mut alice = User::connect(&server, "alice").await;
        alice.join(&room).await;
        let mut bob = User::connect(&server, "bob").await;
        bob.join(&room).await;
        crate::support::message_reaches(&alice, &mut bob).await;
        alice.call.close().await;
        bob.call.close().await;
    }
    eprintln!(
        "ten calls with a dead webhook receiver took {:?}",
        started.elapsed()
    );
    let page = scrape(&server).await;
    // 10 rooms × (started, 2 joined, 2 left, finished) = 60 events; at most 4 wait, and one is
    // being tried.
    assert!(value(&page, "jrtc_webhook_queue") <= 5.0, "{page}");
    assert!(
        value(&page, "jrtc_webhooks_total{kind=\"dropped\"}") >= 50.0,
        "{page}"
    );
    held.abort();
}

/// A server that records into a directory of its own and posts to a new receiver.
async fn recording_server(test: &str) -> (Receiver, ServerHandle, std::path::PathBuf) {
    let (receiver, url) = Receiver::start(0).await;
    let dir = crate::record_support::recording_dir(test);
    let server = builder()
        .secret(SECRET)
        .webhook(url)
        .recording_dir(&dir)
        .start()
        .await
        .unwrap();
    (receiver, server, dir)
}

/// Waits until `user` hears the room's recording start (`started`) or stop.
async fn recording(user: &mut User, started: bool) {
    crate::record_support::until(&user.call, &mut user.events, WAIT * 3, |e| match e {
        jrtc::CallEvent::Recording(jrtc::RecordingEvent::Started { .. }) if started => Some(()),
        jrtc::CallEvent::Recording(jrtc::RecordingEvent::Stopped { .. }) if !started => Some(()),
        _ => None,
    })
    .await
}

impl Receiver {
    /// Every event taken, once one named `event` is among them.
    async fn through(&self, event: &str) -> Vec<Value> {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let n = self.took.lock().unwrap().len();
            let events = self.events(n).await;
            if events.iter().any(|e| e["event"] == event) {
                return events;
            }
            assert!(tokio::time::Instant::now() < end, "no {event}: {events:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_recording_started_and_stopped_by_the_backend_is_announced_to_it() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let (receiver, server, dir) = recording_server("webhooks").await;
    let mut alice = User::connect(&server, "alice").await;
    alice.join("rec").await;
    let api = crate::server_api::Api::admin(&server);
    api.ok("POST", "/api/rooms/rec/recording", None).await;
    recording(&mut alice, true).await;
    let room = api.ok("GET", "/api/rooms/rec", None).await;
    assert_eq!(room["properties"]["recording"]["state"], "recording");
    assert_eq!(room["properties"]["recording"]["by"], "backend");
    api.ok("DELETE", "/api/rooms/rec/recording", None).await;
    recording(&mut alice, false).await;
    // The backend heard it start (by itself) and stop, after the recorder joined.
    let events = receiver.through("recording_stopped").await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let at = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name}: {names:?}"))
    };
    assert!(at("room_started") < at("recording_started"));
    assert!(at("recording_started") < at("recording_stopped"));
    let started = &events[at("recording_started")];
    assert_eq!(started["by"], "backend");
    let stopped = &events[at("recording_stopped")];
    assert_eq!(stopped["reason"], "requested");
    let recorder_joined = events
        .iter()
        .position(|e| e["event"] == "participant_joined" && e["participant"]["role"] == "recorder");
    assert!(
        recorder_joined.is_some_and(|i| i < at("recording_started")),
        "{names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// GETs room `room` until it is gone (404), failing after `wait`.
async fn gone(api: &crate::server_api::Api, room: &str, wait: Duration) {
    let end = tokio::time::Instant::now() + wait;
    loop {
        let (status, body) = api.call("GET", &format!("/api/rooms/{room}"), None).await;
        if status == 404 {
            return;
        }
        assert!(tokio::time::Instant::now() < end, "{room} stays: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn removing_the_last_member_ends_the_recording_and_the_room() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let (receiver, server, dir) = recording_server("webhooks-last").await;
    let mut alice = User::connect(&server, "alice").await;
    alice.join("last").await;
    let api = crate::server_api::Api::admin(&server);
    api.ok("POST", "/api/rooms/last/recording", None).await;
    recording(&mut alice, true).await;
    // The backend removes the only person: the call is over, and so is its recording.
    api.ok("POST", "/api/rooms/last/participants/alice/remove", None)
        .await;
    gone(&api, "last", WAIT * 2).await;
    let events = receiver.through("room_finished").await;
    let stopped: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "recording_stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{events:?}");
    assert_eq!(stopped[0]["reason"], "room_ended");
    assert_eq!(events.last().unwrap()["event"], "room_finished");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_made_room_recorded_while_empty_still_goes_after_its_timeout() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let dir = crate::record_support::recording_dir("webhooks-empty");
    let server = builder().recording_dir(&dir).start().await.unwrap();
    let api = crate::server_api::Api::admin(&server);
    api.ok(
        "POST",
        "/api/rooms",
        Some(serde_json::json!({ "room": "hall", "empty_timeout_secs": 1 })),
    )
    .await;
    api.ok("POST", "/api/rooms/hall/recording", None).await;
    // The recorder is in the room: it stays past its timeout while recording.
    let end = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let room = api.ok("GET", "/api/rooms/hall", None).await;
        if room["properties"]["recording"]["state"] == "recording" {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "{room}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    api.ok("GET", "/api/rooms/hall", None).await;
    // Stopped, the recorder leaves: empty again, the room goes after its timeout.
    api.ok("DELETE", "/api/rooms/hall/recording", None).await;
    gone(&api, "hall", WAIT * 2).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_last_events_reach_the_backend_before_a_shutdown_ends() {
    let (receiver, url) = Receiver::start(0).await;
    let server = builder().secret(SECRET).webhook(url).start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("bye").await;
    server.shutdown().await;
    // Taken by the time the shutdown is over: no waiting here.
    let took = receiver.took.lock().unwrap().len();
    let events = receiver.events(took).await;
    let last: Vec<(String, String, String)> = summary(&events).into_iter().rev().take(2).collect();
    assert_eq!(
        last,
        [
            ("room_finished".into(), "bye".into(), "".into()),
            (
                "participant_left".into(),
                "alice".into(),
                "server_shutdown".into()
            ),
        ]
    );
}

//! An operator's log at the default level: a call with media writes none of the WebRTC stack's
//! WARN lines (most follow from what clients send, so any client could flood the log with
//! them); `jrtc_media_stack_warnings_total` counts them instead.

#[path = "../../tests/signaling/record_support.rs"]
#[allow(dead_code)]
mod record_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use jrtc::{AccessToken, Call, CallEvent, Grants, JoinOptions, MediaEvent, TrackSource};
use record_support::MediaSender;

const SECRET: &str = "the log test's secret, long enough to be accepted";

async fn member(url: &str, id: &str) -> (Call, jrtc::EventStream) {
    let token = AccessToken::new(id)
        .grants(Grants::host())
        .sign(SECRET.as_bytes())
        .unwrap();
    let call = Call::connect(url, token).await.unwrap();
    let events = call.events();
    let op = call.join("logs", JoinOptions::default()).await.unwrap();
    call.outcome(op).await.unwrap();
    (call, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_leaves_the_webrtc_stacks_warnings_out_of_the_log_and_counts_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("JRTC_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let url = loop {
        let line = lines.recv().unwrap();
        if line.contains("listening on") {
            break line.trim().rsplit(' ').next().unwrap().to_owned();
        }
    };

    let (alice, _alice_events) = member(&url, "alice").await;
    let (bob, mut bob_events) = member(&url, "bob").await;
    let camera = alice.publish_track(TrackSource::Camera).await.unwrap();
    let mic = alice.publish_track(TrackSource::Microphone).await.unwrap();
    let mut sender = MediaSender::new(Some(camera), Some(mic));
    sender.prime().await;
    let mut arrived = 0;
    while arrived < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(20), bob_events.next())
            .await
            .expect("bob receives alice's tracks in time")
            .expect("bob's call is open");
        if let CallEvent::Media(MediaEvent::Subscribed { .. }) = ev {
            arrived += 1;
        }
    }
    sender.send(30).await;
    let track = bob.remote_track("alice/camera").expect("alice's camera");
    tokio::time::timeout(Duration::from_secs(10), track.next_packet())
        .await
        .expect("a packet of alice's camera")
        .expect("the track is live");

    let http = url.replacen("ws://", "http://", 1);
    let page = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: f64 = page
        .lines()
        .find_map(|l| l.strip_prefix("jrtc_media_stack_warnings_total "))
        .expect("the counter is on the page")
        .parse()
        .unwrap();
    alice.close().await;
    bob.close().await;
    let _ = child.kill();
    let _ = child.wait();

    let log: Vec<String> = lines.try_iter().collect();
    let stack: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" rtc") || l.contains(" webrtc"))
        .collect();
    assert!(
        stack.is_empty(),
        "the WebRTC stack's lines in the log: {stack:#?}"
    );
    let warnings = log.iter().filter(|l| l.contains("WARN")).count();
    println!("{warnings} WARN lines in the log; {counted} WebRTC stack warnings counted");
    assert!(counted > 0.0, "the call's stack warnings are counted");
}

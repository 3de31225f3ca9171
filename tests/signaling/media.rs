//! Media through the SFU: real peer connections on 127.0.0.1, RTP payloads checked end to end.

use std::time::Duration;

use jrtc::{CallEvent, MediaEvent, Publication, TrackSource};

use crate::support::{User, room_of, server};

/// Waits until `user` receives publication `id`, and returns its track.
async fn remote(user: &mut User, id: &str) -> jrtc::RemoteTrack {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(track) = user.call.remote_track(id) {
            return track;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never received {id}",
            user.call.user_id()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), user.next()).await;
    }
}

/// Sends `payload(i)` for i = 0.. every 10 ms until stopped.
fn pump(track: jrtc::LocalTrack, tag: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0u32..3000 {
            let payload = format!("{tag}#{i}");
            if track
                .write(payload.into_bytes(), i * 3000, true)
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Reads `n` packets and checks each is one the publisher sent, in order, with no gap.
async fn expect_stream(track: &jrtc::RemoteTrack, tag: &str, n: usize) {
    let mut last: Option<u32> = None;
    for _ in 0..n {
        let packet = tokio::time::timeout(Duration::from_secs(10), track.next_packet())
            .await
            .expect("a packet in time")
            .expect("the track is live");
        let text = String::from_utf8(packet.payload.to_vec()).expect("our payload");
        let (got_tag, i) = text.rsplit_once('#').expect("tag#index");
        assert_eq!(got_tag, tag);
        let i: u32 = i.parse().unwrap();
        if let Some(last) = last {
            assert_eq!(i, last + 1, "{tag}: packets in order, none lost");
        }
        last = Some(i);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_track_reaches_another_member() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let camera = users[0]
        .call
        .publish(TrackSource::Camera)
        .await
        .expect("publish");
    let sender = pump(camera, "alice/camera".into());
    let track = remote(&mut users[1], "alice/camera").await;
    assert_eq!(
        track.publication(),
        &Publication::new("alice".into(), TrackSource::Camera)
    );
    expect_stream(&track, "alice/camera", 30).await;
    sender.abort();
    let _ = CallEvent::Closed {
        reason: jrtc::Reason::Quit,
    };
    let _ = MediaEvent::Subscribed {
        publication: track.publication().clone(),
    };
}

//! `Call::statistics` against what really went over real peer connections: on loopback, the
//! packets and frames a publisher wrote and a receiver read are exactly what their statistics
//! count; behind a lossy loopback (iptables drops 10 % of UDP at random, in a namespace of
//! the test's own) the loss each side reports is the drop's, within what chance allows.

use std::time::Duration;

use jrtc::{CallStatistics, MediaKind, TrackSource, TrackStatistics};

use crate::media_fault::subscribed;
use crate::support::{User, builder, lossy_loopback, server_api};

fn track<'a>(tracks: &'a [TrackStatistics], id: &str) -> &'a TrackStatistics {
    tracks
        .iter()
        .find(|t| t.publication == id)
        .unwrap_or_else(|| panic!("no statistics of {id}: {tracks:?}"))
}

/// Alice's camera, as the server API says.
fn from_alice(room: &jrtc::RoomStatistics) -> &jrtc::ServerTrackStatistics {
    let camera = room.tracks.iter().find(|t| t.publication == "alice/camera");
    camera.unwrap_or_else(|| panic!("no alice/camera: {room:?}"))
}

/// Packets the server forwarded of alice's camera to bob, as the server API says.
fn to_bob(room: &jrtc::RoomStatistics) -> u64 {
    let leg = from_alice(room)
        .receivers
        .iter()
        .find(|r| r.user_id.as_str() == "bob");
    leg.unwrap_or_else(|| panic!("no leg of alice's camera to bob: {room:?}"))
        .packets
}

/// A packet whose first byte says it is counted (`TAG`) or a primer.
const TAG: u8 = 0xab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_count_exactly_the_packets_and_frames_written_and_read() {
    let server = builder().start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    // Numbered primers until bob's leg carries them (what is written before it exists reaches
    // nobody); then bob reads up to the last one, so everything written so far went out.
    let primer = camera.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let priming = tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        for i in 0u32.. {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                return i - 1;
            }
            clock.tick().await;
            let mut payload = vec![0x10, 0, 0, 0, 0];
            payload.extend_from_slice(&i.to_be_bytes());
            primer.write(payload, 0, true).await.unwrap();
        }
        unreachable!()
    });
    let at_bob = subscribed(&mut bob).await;
    let index = |p: &jrtc::RtpPacket| u32::from_be_bytes(p.payload[5..9].try_into().unwrap());
    let mut last_read = index(&at_bob.next_packet().await.unwrap());
    let mut read = 1u64;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last_written = priming.await.unwrap();
    while last_read < last_written {
        last_read = index(&at_bob.next_packet().await.unwrap());
        read += 1;
    }
    let before = alice.call.statistics().await;
    let before = track(&before.published, "alice/camera").clone();
    let api = server_api(&server);
    let server_before = api.room_statistics("r").await.unwrap();

    // 300 counted packets, two a frame; bob reads as they come until he has them all (a
    // track's queue holds a few hundred unread packets, then drops).
    let reader = at_bob.clone();
    let reading = tokio::spawn(async move {
        let (mut read, mut tagged) = (read, 0);
        while tagged < 300 {
            let packet = tokio::time::timeout(Duration::from_secs(10), reader.next_packet())
                .await
                .unwrap_or_else(|_| panic!("{tagged} of 300 arrived, {read} read"))
                .unwrap();
            read += 1;
            tagged += usize::from(packet.payload.get(4) == Some(&TAG));
        }
        read
    });
    let mut clock = tokio::time::interval(Duration::from_millis(5));
    for i in 0..300u32 {
        clock.tick().await;
        camera
            .write(vec![0x10, 0, 0, 0, TAG], i * 1_500, i % 2 == 1)
            .await
            .unwrap();
    }
    let read = reading.await.unwrap();

    let sent: CallStatistics = alice.call.statistics().await;
    let camera_out = track(&sent.published, "alice/camera");
    assert_eq!(camera_out.packets, before.packets + 300, "{camera_out:?}");
    assert_eq!(camera_out.kind, MediaKind::Video);
    assert_eq!(camera_out.frames, Some(before.frames.unwrap() + 150));
    assert!(camera_out.bitrate_bps > 0, "{camera_out:?}");
    let got = bob.call.statistics().await;
    let camera_in = track(&got.received, "alice/camera");
    assert_eq!(camera_in.packets, read, "{camera_in:?}");
    assert_eq!(camera_in.packets_lost, 0);
    // Every primer ends a frame; of the counted ones, every other.
    assert_eq!(camera_in.frames, Some(read - 150));
    let alice_seen = got
        .participants
        .iter()
        .find(|p| p.user_id.as_str() == "alice")
        .expect("alice is in bob's statistics");
    assert_eq!(alice_seen.tracks, 1);
    assert!(got.connections.iter().any(|c| c.packets_received >= read));

    // The server's view: the 300 arrived from alice and went on to bob (over the whole call
    // the ends may differ by the first packets, which reach the track's reader or bob's
    // connection before it is ready).
    let room = api.room_statistics("r").await.unwrap();
    assert_eq!(
        from_alice(&room).packets - from_alice(&server_before).packets,
        300
    );
    assert_eq!(from_alice(&room).packets_lost, 0);
    assert_eq!(from_alice(&room).layer_bitrates_bps.len(), 1);
    assert_eq!(to_bob(&room) - to_bob(&server_before), 300, "{room:?}");
    let links: Vec<&str> = room
        .participants
        .iter()
        .map(|p| p.user_id.as_str())
        .collect();
    assert_eq!(links, ["alice", "bob"]);
}

/// Runs `test` (this file's test of that name) in a network namespace of its own with `lo`
/// up; true when this process is the one inside, which then runs the body.
fn inside_namespace(test: &str) -> bool {
    crate::support::in_namespace(&format!("statistics::{test}"), "ip link set lo up")
}

/// Polls `user`'s statistics (every 100 ms, up to 15 s) until `done` holds for them (a
/// receiver report comes once a second: no event says the counters moved).
async fn statistics_until(user: &User, done: impl Fn(&CallStatistics) -> bool) -> CallStatistics {
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut clock = tokio::time::interval(Duration::from_millis(100));
    loop {
        clock.tick().await;
        let stats = user.call.statistics().await;
        if done(&stats) || tokio::time::Instant::now() > end {
            return stats;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_report_the_loss_of_a_lossy_link() {
    if !inside_namespace("statistics_report_the_loss_of_a_lossy_link") {
        return;
    }
    let server = builder().start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let mic = alice
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let speaking = jrtc_testkit::media::speak(mic.clone(), 30);
    let at_bob = subscribed(&mut bob).await;
    at_bob.next_packet().await.unwrap();
    speaking.abort();
    let _ = speaking.await;
    let reader = at_bob.clone();
    let reading = tokio::spawn(async move { while reader.next_packet().await.is_some() {} });

    // 1,000 packets with each hop dropping 10 %: the server loses about 10 % of alice's,
    // and bob about 19 % (two hops; audio is not sent again). Then 50 clean ones, so the
    // last lost ones are known to be lost.
    let before_out = alice.call.statistics().await;
    let before_out = track(&before_out.published, "alice/microphone").clone();
    let before_in = bob.call.statistics().await;
    let before_in = track(&before_in.received, "alice/microphone").clone();
    lossy_loopback("-A", "0.1");
    let mut clock = tokio::time::interval(Duration::from_millis(5));
    for i in 0..1_050u32 {
        clock.tick().await;
        if i == 1_000 {
            lossy_loopback("-D", "0.1");
        }
        mic.write(vec![0xf8, 0xff, 0xfe], i * 960, false)
            .await
            .unwrap();
    }
    let expected = before_in.packets + before_in.packets_lost + 1_050;
    let got = statistics_until(&bob, |s| {
        let t = track(&s.received, "alice/microphone");
        t.packets + t.packets_lost >= expected
    })
    .await;
    let got = track(&got.received, "alice/microphone");
    let lost_in = got.packets_lost - before_in.packets_lost;
    let sent = statistics_until(&alice, |s| {
        track(&s.published, "alice/microphone").packets_lost > before_out.packets_lost + 50
    })
    .await;
    let sent = track(&sent.published, "alice/microphone");
    let lost_out = sent.packets_lost - before_out.packets_lost;
    eprintln!(
        "lossy link: the server lost {lost_out} of 1,000 (its reports), bob {lost_in} (his count), \
         bob's loss {:.1} %, {} packets",
        got.loss_percent,
        got.packets - before_in.packets
    );
    assert_eq!(sent.packets - before_out.packets, 1_050);
    // Within five standard deviations of a 10 % (and a 19 %) drop of 1,000.
    assert!((50..=150).contains(&lost_out), "{lost_out} of 1,000");
    assert!((130..=250).contains(&lost_in), "{lost_in} of 1,000");
    assert_eq!(got.packets - before_in.packets + lost_in, 1_050);

    // The server counts the same loss by sequence numbers (the 10 % drop between alice and
    // it), and its metrics saw lossy seconds.
    let api = server_api(&server);
    let room = api.room_statistics("r").await.unwrap();
    let mic = room
        .tracks
        .iter()
        .find(|t| t.publication == "alice/microphone")
        .expect("the server's view of alice's microphone");
    assert!((50..=150).contains(&mic.packets_lost), "{room:?}");
    let page = crate::operations::scrape(&server).await;
    let lossy_seconds = crate::operations::value(&page, "jrtc_link_loss_ratio_count")
        - crate::operations::value(&page, "jrtc_link_loss_ratio_bucket{le=\"0.01\"}");
    assert!(lossy_seconds >= 1.0, "{page}");
    assert!(crate::operations::value(&page, "jrtc_link_quality_count") >= 2.0);
    reading.abort();
}

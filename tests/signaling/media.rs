//! Media through the SFU: real peer connections on 127.0.0.1, RTP payloads checked end to end.

use std::time::Duration;

use jrtc::{CallEvent, MediaEvent, Publication, TrackSource};

use crate::support::{User, room_of, server};

/// Waits until `user` receives publication `id`, and returns its track.
pub async fn remote(user: &mut User, id: &str) -> jrtc::RemoteTrack {
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

/// The start of a VP8 key frame: the payload descriptor (start of partition 0) and a key
/// frame's first header byte. The SFU starts a video leg at a key frame, so every test packet of
/// a video track is one.
pub const VP8_KEY: [u8; 2] = [0x10, 0x00];

/// Sends `payload(i)` for i = 0.. every 10 ms until stopped (after [`VP8_KEY`] on video).
fn pump(track: jrtc::LocalTrack, tag: String) -> tokio::task::JoinHandle<()> {
    pump_counted(track, tag).0
}

/// [`pump`], and how many packets it has sent so far.
fn pump_counted(
    track: jrtc::LocalTrack,
    tag: String,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::watch::Receiver<u32>,
) {
    let (count, sent) = tokio::sync::watch::channel(0);
    let pumping = tokio::spawn(async move {
        let video = track.source() != TrackSource::Microphone;
        for i in 0u32..3000 {
            let mut payload = if video { VP8_KEY.to_vec() } else { Vec::new() };
            payload.extend_from_slice(format!("{tag}#{i}").as_bytes());
            if track.write(payload, i * 3000, true).await.is_err() {
                return;
            }
            count.send_replace(i + 1);
            // The pace of a real sender (a packet every 10 ms), not a wait for anything.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (pumping, sent)
}

/// The track's next packet (within 10 s; the track still live).
async fn next_packet(track: &jrtc::RemoteTrack) -> jrtc::RtpPacket {
    tokio::time::timeout(Duration::from_secs(10), track.next_packet())
        .await
        .expect("a packet in time")
        .expect("the track is live")
}

/// Reads `n` packets and checks each is one the publisher sent, in order, with no gap.
async fn expect_stream(track: &jrtc::RemoteTrack, tag: &str, n: usize) {
    let mut last: Option<u32> = None;
    for _ in 0..n {
        let packet = next_packet(track).await;
        let body = packet
            .payload
            .strip_prefix(&VP8_KEY[..])
            .unwrap_or(&packet.payload);
        let text = String::from_utf8(body.to_vec()).expect("our payload");
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
async fn three_members_each_receive_the_others_audio_and_video() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let mut pumps = Vec::new();
    for u in &users {
        for source in [TrackSource::Microphone, TrackSource::Camera] {
            let track = u.call.publish_track(source).await.expect("publish");
            assert_eq!(track.source(), source);
            let tag = format!("{}/{}", u.call.user_id(), source.as_str());
            pumps.push(pump(track, tag));
        }
    }
    let ids: Vec<String> = users.iter().map(|u| u.call.user_id().to_string()).collect();
    for (i, u) in users.iter_mut().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            for source in ["microphone", "camera"] {
                let id = format!("{other}/{source}");
                let track = remote(u, &id).await;
                expect_stream(&track, &id, 20).await;
            }
        }
        assert_eq!(
            u.call.remote_tracks().len(),
            4,
            "two tracks from each of the two others"
        );
        // Publishing set the flags everyone sees.
        let room = u.call.room().unwrap();
        assert_eq!(room.publications.len(), 6);
        assert!(
            room.participants.iter().all(|p| p.audio && p.video),
            "{:?}",
            room.participants
        );
    }
    for p in pumps {
        p.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_receives_the_tracks_already_published() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice"]).await;
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let sender = pump(camera, "alice/camera".into());
    // The room hears of a track once its media reaches the server.
    wait_for(&mut users[0], |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Published { .. }))
    })
    .await;
    let mut bob = User::connect(&server, "bob").await;
    let snapshot = bob.join("r").await;
    assert_eq!(
        snapshot.publications,
        vec![Publication::new("alice".into(), TrackSource::Camera)]
    );
    let track = remote(&mut bob, "alice/camera").await;
    expect_stream(&track, "alice/camera", 20).await;
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublishing_and_leaving_end_the_tracks_for_everyone() {
    let server = server().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let mic = users[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let pumps = [
        pump(mic, "alice/microphone".into()),
        pump(camera, "alice/camera".into()),
    ];
    for u in &mut users[1..] {
        expect_stream(&remote(u, "alice/microphone").await, "alice/microphone", 5).await;
        expect_stream(&remote(u, "alice/camera").await, "alice/camera", 5).await;
    }
    // Unpublishing the microphone: everyone hears of it, the audio flag drops.
    let op = users[0]
        .call
        .unpublish(TrackSource::Microphone)
        .await
        .unwrap();
    crate::support::done(&users[0].call, op).await;
    for u in &mut users[1..] {
        wait_for(u, |ev| matches!(ev, CallEvent::Media(MediaEvent::Unsubscribed { publication }) if publication.id == "alice/microphone")).await;
        assert!(u.call.remote_track("alice/microphone").is_none());
        assert!(!u.call.room().unwrap().participant("alice").unwrap().audio);
    }
    // The publisher leaves mid-stream: its tracks end for everyone, its media is torn down.
    crate::support::done(&users[0].call, users[0].call.leave().await.unwrap()).await;
    for u in &mut users[1..] {
        wait_for(u, |ev| matches!(ev, CallEvent::Media(MediaEvent::Unsubscribed { publication }) if publication.id == "alice/camera")).await;
        assert!(u.call.remote_tracks().is_empty());
        assert!(u.call.room().unwrap().publications.is_empty());
    }
    for p in pumps {
        p.abort();
    }
    // Only bob's and carol's media remain on the server; after they leave, none.
    for u in &users[1..] {
        crate::support::done(&u.call, u.call.leave().await.unwrap()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.media_peer_count() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} media peers left",
            server.media_peer_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every call closed: no task of the clients' is left, and none on the SFU's worker threads
    // (peer connection drivers, track readers, key-frame relays, actors).
    for u in &users {
        u.call.close().await;
    }
    drop(users);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > baseline || server.media_task_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} tasks alive, {baseline} before the calls; {} on the media workers",
            metrics.num_alive_tasks(),
            server.media_task_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_screen_share_at_a_time_and_the_property_follows_it() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let screen = users[0]
        .call
        .publish_track(TrackSource::Screen)
        .await
        .unwrap();
    let sender = pump(screen, "alice/screen".into());
    wait_for(&mut users[1], |ev| matches!(ev, CallEvent::Property(_))).await;
    let share = users[1]
        .call
        .room()
        .unwrap()
        .properties
        .screen_share
        .unwrap();
    assert_eq!(
        (share.user_id.as_str(), share.stream_id.as_str()),
        ("alice", "alice/screen")
    );
    expect_stream(
        &remote(&mut users[1], "alice/screen").await,
        "alice/screen",
        10,
    )
    .await;
    // Bob may not share while Alice does: his publish op is refused, with the reason, on the
    // stream and from `outcome` (before any media flows).
    let op = users[1].call.publish(TrackSource::Screen).await.unwrap();
    match wait_for(&mut users[1], |ev| {
        matches!(ev, CallEvent::Completed { .. })
    })
    .await
    {
        CallEvent::Completed {
            op: got,
            kind: jrtc::OperationKind::Publish,
            result: Err(error),
        } => {
            assert_eq!(got, op);
            assert_eq!(error.code, jrtc::ErrorCode::ScreenShareBusy);
        }
        other => panic!("expected the publish to be refused, got {other:?}"),
    }
    assert_eq!(
        crate::support::refused(&users[1].call, op).await,
        jrtc::ErrorCode::ScreenShareBusy
    );
    assert!(users[1].call.local_track(TrackSource::Screen).is_none());
    assert!(users[0].call.remote_track("bob/screen").is_none());
    // Alice stops sharing: the property clears.
    crate::support::done(
        &users[0].call,
        users[0].call.unpublish(TrackSource::Screen).await.unwrap(),
    )
    .await;
    wait_for(&mut users[1], |ev| matches!(ev, CallEvent::Property(_))).await;
    assert!(
        users[1]
            .call
            .room()
            .unwrap()
            .properties
            .screen_share
            .is_none()
    );
    // Now Bob may share, and Alice receives it.
    let bob_screen = users[1]
        .call
        .publish_track(TrackSource::Screen)
        .await
        .unwrap();
    let bob_sender = pump(bob_screen, "bob/screen".into());
    expect_stream(&remote(&mut users[0], "bob/screen").await, "bob/screen", 10).await;
    sender.abort();
    bob_sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_the_publish_grant() {
    let server = server().await;
    let token = server
        .mint(&jrtc::AccessToken::new("lee").grants(jrtc::Grants::none().create(true)))
        .unwrap();
    let mut lee = User::connect_url(&server.url(), token).await;
    lee.join("r").await;
    match lee.call.publish_track(TrackSource::Camera).await {
        Err(jrtc::CallError::Refused { error, .. }) => {
            assert_eq!(error.code, jrtc::ErrorCode::MissingGrant)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_stops_the_media_and_everyone_sees_the_flag() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mic = users[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let sender = pump(mic.clone(), "alice/microphone".into());
    let track = remote(&mut users[1], "alice/microphone").await;
    expect_stream(&track, "alice/microphone", 5).await;

    crate::support::done(
        &users[0].call,
        users[0].call.set_muted(&mic, true).await.unwrap(),
    )
    .await;
    assert!(mic.is_muted());
    match wait_for(&mut users[1], |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Muted { .. }))
    })
    .await
    {
        CallEvent::Media(MediaEvent::Muted { publication, .. }) => {
            assert!(publication.muted);
            assert_eq!(publication.id, "alice/microphone");
        }
        other => panic!("{other:?}"),
    }
    let room = users[1].call.room().unwrap();
    assert!(
        !room.participant("alice").unwrap().audio,
        "the audio flag follows"
    );
    assert!(room.publications[0].muted);
    // Nothing arrives while muted (packets already on their way may still land).
    tokio::time::sleep(Duration::from_millis(100)).await;
    while tokio::time::timeout(Duration::from_millis(50), track.next_packet())
        .await
        .is_ok()
    {}
    assert!(
        tokio::time::timeout(Duration::from_millis(300), track.next_packet())
            .await
            .is_err(),
        "silence while muted"
    );

    crate::support::done(
        &users[0].call,
        users[0].call.set_muted(&mic, false).await.unwrap(),
    )
    .await;
    wait_for(&mut users[1], |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Unmuted { .. }))
    })
    .await;
    assert!(
        users[1]
            .call
            .room()
            .unwrap()
            .participant("alice")
            .unwrap()
            .audio
    );
    expect_stream(&track, "alice/microphone", 5).await;
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_may_choose_what_it_receives() {
    let server = server().await;
    let alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = User::connect(&server, "bob").await;
    let op = bob
        .call
        .join("r", jrtc::JoinOptions::default().auto_subscribe(false))
        .await
        .unwrap();
    crate::support::done(&bob.call, op).await;
    let mic = alice
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let pumps = [
        pump(mic, "alice/microphone".into()),
        pump(camera, "alice/camera".into()),
    ];
    for _ in 0..2 {
        wait_for(&mut bob, |ev| {
            matches!(ev, CallEvent::Media(MediaEvent::Published { .. }))
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        bob.call.remote_tracks().is_empty(),
        "nothing until asked for"
    );

    crate::support::done(
        &bob.call,
        bob.call.subscribe_track("alice/camera").await.unwrap(),
    )
    .await;
    expect_stream(&remote(&mut bob, "alice/camera").await, "alice/camera", 10).await;
    assert!(bob.call.remote_track("alice/microphone").is_none());

    crate::support::done(
        &bob.call,
        bob.call.unsubscribe_track("alice/camera").await.unwrap(),
    )
    .await;
    wait_for(&mut bob, |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Unsubscribed { .. }))
    })
    .await;
    assert!(bob.call.remote_tracks().is_empty());
    // And back again.
    crate::support::done(
        &bob.call,
        bob.call.subscribe_track("alice/camera").await.unwrap(),
    )
    .await;
    expect_stream(&remote(&mut bob, "alice/camera").await, "alice/camera", 10).await;

    let op = bob.call.subscribe_track("alice/screen").await.unwrap();
    assert_eq!(
        crate::support::refused(&bob.call, op).await,
        jrtc::ErrorCode::NoSuchTrack
    );
    let op = alice.call.subscribe_track("alice/camera").await.unwrap();
    assert_eq!(
        crate::support::refused(&alice.call, op).await,
        jrtc::ErrorCode::InvalidParam
    );
    for p in pumps {
        p.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_and_resumed_video_numbers_on_without_a_jump() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let (pumping, mut sent) = pump_counted(camera, "alice/camera".into());
    let mut bob = users.remove(1);
    let track = remote(&mut bob, "alice/camera").await;
    let mut last = 0u16;
    for _ in 0..10 {
        let packet = next_packet(&track).await;
        last = packet.header.sequence_number;
    }
    crate::support::done(
        &bob.call,
        bob.call.unsubscribe_track("alice/camera").await.unwrap(),
    )
    .await;
    // Alice sends 50 more packets while bob's leg is paused.
    let paused_at = *sent.borrow();
    sent.wait_for(|n| *n >= paused_at + 50).await.unwrap();
    crate::support::done(
        &bob.call,
        bob.call.subscribe_track("alice/camera").await.unwrap(),
    )
    .await;
    let track = remote(&mut bob, "alice/camera").await;
    let first = next_packet(&track).await.header.sequence_number;
    // One after the last packet the leg sent before the pause: at most the few that were on
    // their way when bob stopped reading, never the ~50 sent while paused (the jump before).
    let gap = first.wrapping_sub(last);
    assert!(
        (1..10).contains(&gap),
        "{last} then {first}: a jump of {gap}"
    );
    pumping.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receivers_keyframe_request_reaches_the_publisher() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let sender = pump(camera.clone(), "alice/camera".into());
    let track = remote(&mut users[1], "alice/camera").await;
    expect_stream(&track, "alice/camera", 5).await;
    // The SFU asked for a key frame when bob subscribed.
    tokio::time::timeout(Duration::from_secs(5), camera.keyframe_requested())
        .await
        .expect("a key-frame request for the new subscriber")
        .expect("the track is live");
    // Now bob asks, and the request travels bob → SFU → alice.
    track.request_keyframe().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), camera.keyframe_requested())
        .await
        .expect("bob's key-frame request relayed")
        .expect("the track is live");
    sender.abort();
}

/// The first event matching `want`, skipping others.
async fn wait_for(user: &mut User, want: impl Fn(&CallEvent) -> bool) -> CallEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = tokio::time::timeout(left, user.next())
            .await
            .expect("the event in time");
        if want(&ev) {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_fixture_arrives_frame_for_frame() {
    use jrtc::media::rtc::media::io::ivf_reader::IVFReader;
    use jrtc::media::rtc::rtp::codec::vp8::{Vp8Packet, Vp8Payloader};
    use jrtc::media::rtc::rtp::packetizer::{Depacketizer, Payloader};

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/testsrc-160x120.ivf"
    );
    let (mut reader, _) = IVFReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Ok((frame, _)) = reader.parse_next_frame() {
        frames.push(frame.freeze());
    }
    assert!(
        frames.len() >= 20,
        "the fixture has {} frames",
        frames.len()
    );

    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    // Alice sends the file three times over (the receiver may join the stream late).
    let to_send = frames.clone();
    let sender = tokio::spawn(async move {
        let mut payloader = Vp8Payloader::default();
        for i in 0..to_send.len() * 3 {
            let packets = payloader
                .payload(1200, &to_send[i % to_send.len()])
                .unwrap();
            let last = packets.len() - 1;
            for (j, payload) in packets.into_iter().enumerate() {
                camera
                    .write(payload, (i * 6000) as u32, j == last)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let track = remote(&mut users[1], "alice/camera").await;
    // Bob reassembles frames and checks each against the fixture frame its timestamp names.
    let mut depacketizer = Vp8Packet::default();
    let mut current = Vec::new();
    let mut matched = std::collections::BTreeSet::new();
    // The first packet may be the middle of a frame: compare from the first frame boundary on.
    let mut synced = false;
    while matched.len() < frames.len() {
        let packet = next_packet(&track).await;
        let part = depacketizer
            .depacketize(&packet.payload)
            .expect("a VP8 payload");
        current.extend_from_slice(&part);
        if packet.header.marker {
            let index = packet.header.timestamp as usize / 6000;
            if synced {
                assert_eq!(
                    current,
                    frames[index % frames.len()].to_vec(),
                    "frame {index}"
                );
                matched.insert(index % frames.len());
            }
            synced = true;
            current.clear();
        }
    }
    sender.abort();
}

/// A user in two rooms at once (two devices) publishing the same source in both: every member
/// receives only its own room's media, and unpublishing or leaving in one room does not touch
/// the other room's forwarding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_stays_in_its_room_when_one_user_publishes_in_two() {
    let server = server().await;
    let mut in_b = User::connect(&server, "u1").await;
    in_b.join("b").await;
    let mut in_a = User::connect(&server, "u1").await;
    in_a.join("a").await;
    // Room b's camera first, then room a's: the later publication must not replace the earlier.
    let camera_b = in_b.call.publish_track(TrackSource::Camera).await.unwrap();
    let pump_b = pump(camera_b, "room-b".into());
    wait_for(&mut in_b, |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Published { .. }))
    })
    .await;
    let camera_a = in_a.call.publish_track(TrackSource::Camera).await.unwrap();
    let pump_a = pump(camera_a, "room-a".into());
    wait_for(&mut in_a, |ev| {
        matches!(ev, CallEvent::Media(MediaEvent::Published { .. }))
    })
    .await;
    // Late joiners of each room.
    let mut bob = User::connect(&server, "bob").await;
    bob.join("b").await;
    let mut carol = User::connect(&server, "carol").await;
    carol.join("a").await;
    let from_b = remote(&mut bob, "u1/camera").await;
    expect_stream(&from_b, "room-b", 20).await;
    let from_a = remote(&mut carol, "u1/camera").await;
    expect_stream(&from_a, "room-a", 20).await;
    // Unpublishing in room a ends room a's track only.
    let op = in_a.call.unpublish(TrackSource::Camera).await.unwrap();
    crate::support::done(&in_a.call, op).await;
    wait_for(&mut carol, |ev| matches!(ev, CallEvent::Media(MediaEvent::Unsubscribed { publication }) if publication.id == "u1/camera")).await;
    expect_stream(&from_b, "room-b", 20).await;
    // Publishing again in room a and then leaving it: room b keeps flowing, and a new member
    // of room b still gets room b's camera.
    let camera_a = in_a.call.publish_track(TrackSource::Camera).await.unwrap();
    let pump_a2 = pump(camera_a, "room-a".into());
    let again = remote(&mut carol, "u1/camera").await;
    expect_stream(&again, "room-a", 10).await;
    crate::support::done(&in_a.call, in_a.call.leave().await.unwrap()).await;
    expect_stream(&from_b, "room-b", 20).await;
    let mut dave = User::connect(&server, "dave").await;
    dave.join("b").await;
    expect_stream(&remote(&mut dave, "u1/camera").await, "room-b", 20).await;
    for p in [pump_a, pump_a2, pump_b] {
        p.abort();
    }
}

/// A reader blocked in `next_packet` gets `None` when the publisher unpublishes, and a reader
/// of another track gets `None` when its publisher leaves (it used to hang until its own call
/// closed); a publisher's handle fails once unpublished, and publishing again gives a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_learn_that_a_track_ended() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let camera = users[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let mic = users[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let pumps = [
        pump(camera.clone(), "alice/camera".into()),
        pump(mic, "alice/microphone".into()),
    ];
    let video = remote(&mut users[1], "alice/camera").await;
    let audio = remote(&mut users[1], "alice/microphone").await;
    expect_stream(&video, "alice/camera", 3).await;
    expect_stream(&audio, "alice/microphone", 3).await;
    let reader = |track: jrtc::RemoteTrack| {
        tokio::spawn(async move {
            let mut n = 0;
            while track.next_packet().await.is_some() {
                n += 1;
            }
            n
        })
    };
    let video_reader = reader(video);
    let audio_reader = reader(audio);
    let op = users[0].call.unpublish(TrackSource::Camera).await.unwrap();
    crate::support::done(&users[0].call, op).await;
    tokio::time::timeout(Duration::from_secs(5), video_reader)
        .await
        .expect("the camera's reader ends after unpublish")
        .unwrap();
    assert!(
        camera.write(vec![0], 0, true).await.is_err(),
        "an unpublished track's handle fails"
    );
    crate::support::done(&users[0].call, users[0].call.leave().await.unwrap()).await;
    tokio::time::timeout(Duration::from_secs(5), audio_reader)
        .await
        .expect("the microphone's reader ends when its publisher leaves")
        .unwrap();
    for p in pumps {
        p.abort();
    }
}

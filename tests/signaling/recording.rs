//! Recording through the embedded recorder: real media through the SFU into real WebM files,
//! read back by ffprobe; the recording state and events every member sees; typed refusals and
//! limits.

// `support::heavy()` is held for a whole test: each test has a runtime of its own, so waiting
// on it blocks only that test's thread.
#![allow(clippy::await_holding_lock)]

use std::path::Path;
use std::time::Duration;

use jrtc::{
    CallError, CallEvent, ErrorCode, RecordingEvent, RecordingOptions, RecordingState, StopReason,
    TrackSource,
};

use crate::record_support::{
    self, MediaSender, cues, mkvinfo, opus_delays, probe, recording_dir, stream,
};
use crate::support::{User, builder, done, refused, room_of};

/// The next event of `user` that `pick` takes (see `record_support::until`).
async fn until<T>(user: &mut User, wait: Duration, pick: impl FnMut(CallEvent) -> Option<T>) -> T {
    record_support::until(&user.call, &mut user.events, wait, pick).await
}

fn started(ev: CallEvent) -> Option<jrtc::UserId> {
    match ev {
        CallEvent::Recording(RecordingEvent::Started { recorder, .. }) => Some(recorder),
        _ => None,
    }
}

fn stopped(ev: CallEvent) -> Option<(StopReason, Vec<jrtc::RecordedFile>)> {
    match ev {
        CallEvent::Recording(RecordingEvent::Stopped { reason, files, .. }) => {
            Some((reason, files))
        }
        _ => None,
    }
}

/// For a recording test: the heavy-test lock, a fresh recording directory, and a server
/// builder writing there.
fn recording_setup(
    test: &str,
) -> (
    std::sync::MutexGuard<'static, ()>,
    std::path::PathBuf,
    jrtc::ServerBuilder,
) {
    let turn = crate::support::heavy();
    let dir = recording_dir(test);
    let builder = builder().recording_dir(&dir);
    (turn, dir, builder)
}

/// `host` starts a recording with `options`, which must be accepted.
async fn start(host: &User, options: RecordingOptions) {
    done(
        &host.call,
        host.call.start_recording(options).await.unwrap(),
    )
    .await;
}

/// Each user publishes a camera and a microphone; returns their senders.
async fn publish_all(users: &[User]) -> Vec<MediaSender> {
    let mut senders = Vec::new();
    for u in users {
        let camera = u.call.publish_track(TrackSource::Camera).await.unwrap();
        let mic = u.call.publish_track(TrackSource::Microphone).await.unwrap();
        senders.push(MediaSender::new(Some(camera), Some(mic)));
    }
    senders
}

/// Checks one participant's file: VP8 and Opus, the frames sent, the span, and sync.
fn check_file(path: &Path, video: usize, audio: usize) {
    let streams = probe(path).unwrap_or_else(|| panic!("ffprobe reads {}", path.display()));
    let v = stream(&streams, "vp8");
    let a = stream(&streams, "opus");
    assert_eq!(
        v.packets as usize,
        video,
        "{}: video frames",
        path.display()
    );
    // An audio frame or two may be in flight at the edges of the span.
    assert!(
        (a.packets as i64 - audio as i64).abs() <= 2,
        "{}: {} audio frames, {audio} sent",
        path.display(),
        a.packets
    );
    let span = video as f64 / 15.0;
    let v_span = v.last - v.first + 1.0 / 15.0;
    assert!(
        (v_span - span).abs() <= span * 0.1,
        "{}: video spans {v_span:.3} s, {span:.3} s sent",
        path.display()
    );
    assert!(
        (v.first - a.first).abs() < 0.1 && (v.last - a.last).abs() < 0.1,
        "{}: audio and video out of sync: video {:.3}..{:.3}, audio {:.3}..{:.3}",
        path.display(),
        v.first,
        v.last,
        a.first,
        a.last
    );
}

/// Three members publish; a host records about 5 s and stops; every file holds what was sent,
/// and the manifest matches the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_are_recorded_into_playable_files() {
    let (_turn, dir, builder) = recording_setup("three");
    let server = builder.start().await.unwrap();
    let mut users = room_of(&server, "rec", &["alice", "bob", "carol"]).await;
    let mut senders = publish_all(&users).await;
    start(&users[0], RecordingOptions::default()).await;
    let mut recorder = None;
    for u in &mut users {
        recorder = Some(until(u, Duration::from_secs(15), started).await);
    }
    let recorder = recorder.unwrap();
    assert_eq!(recorder.as_str(), "recorder");
    // The recorder is a member, flagged by its role; the state says who records.
    let room = users[1].call.room().unwrap();
    let seat = room
        .participants
        .iter()
        .find(|p| p.user_id == recorder)
        .unwrap();
    assert_eq!(seat.role, jrtc::Role::Recorder);
    assert!(matches!(
        &room.properties.recording,
        RecordingState::Recording { recorder: r, by, .. } if *r == recorder && by.as_str() == "alice"
    ));
    // Open the tracks end to end, then send 5 s from a key frame.
    futures::future::join_all(senders.iter_mut().map(|s| s.prime())).await;
    let sends = senders.iter_mut().map(|s| s.send(75));
    let sent = futures::future::join_all(sends).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let op = users[0].call.stop_recording().await.unwrap();
    done(&users[0].call, op).await;
    let mut files = Vec::new();
    for u in &mut users {
        let (reason, f) = until(u, Duration::from_secs(10), stopped).await;
        assert_eq!(reason, StopReason::Requested);
        files = f;
    }
    assert_eq!(
        users[2].call.room().unwrap().properties.recording,
        RecordingState::Idle
    );
    let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["alice.webm", "bob.webm", "carol.webm"]);
    let rec_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for (file, (video, audio)) in files.iter().zip(sent.iter().cycle()) {
        let path = rec_dir.join(&file.name);
        check_file(&path, *video, *audio);
        assert_eq!(file.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(file.sources, [TrackSource::Camera, TrackSource::Microphone]);
        assert!((file.duration_ms as f64 - 5000.0).abs() < 500.0, "{file:?}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec_dir.join(jrtc::record::MANIFEST)).unwrap())
            .unwrap();
    assert_eq!(manifest["room"], "rec");
    assert_eq!(manifest["ended"], "stopped");
    assert_eq!(manifest["reason"], "requested");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3);
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let ours = files.iter().find(|x| x.name == name).unwrap();
        assert_eq!(f["bytes"].as_u64(), Some(ours.bytes));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A member who joins mid-recording is recorded from its first packet; one who leaves
/// mid-recording has its file closed there; a screen share gets a file of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_leavers_and_screens_get_their_own_files() {
    let (_turn, dir, builder) = recording_setup("midway");
    let server = builder.start().await.unwrap();
    let mut users = room_of(&server, "mid", &["alice", "bob"]).await;
    let mut alice = publish_all(&users[..1]).await.remove(0);
    alice.prime().await;
    start(&users[0], RecordingOptions::default()).await;
    until(&mut users[1], Duration::from_secs(15), started).await;
    // Bob publishes his camera, microphone and screen only now.
    let bob_cam = users[1]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let bob_mic = users[1]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let bob_screen = users[1]
        .call
        .publish_track(TrackSource::Screen)
        .await
        .unwrap();
    let mut bob = MediaSender::new(Some(bob_cam), Some(bob_mic));
    let mut screen = MediaSender::new(Some(bob_screen), None);
    tokio::join!(bob.prime(), screen.prime());
    let (a1, (b, s)) = tokio::join!(alice.send(30), async {
        tokio::join!(bob.send(30), screen.send(30))
    });
    // Bob leaves; alice goes on for another second.
    let op = users[1].call.leave().await.unwrap();
    done(&users[1].call, op).await;
    let a2 = alice.send(15).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let op = users[0].call.stop_recording().await.unwrap();
    done(&users[0].call, op).await;
    let (_, files) = until(&mut users[0], Duration::from_secs(10), stopped).await;
    let rec_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let by_name = |n: &str| {
        files
            .iter()
            .find(|f| f.name == n)
            .unwrap_or_else(|| panic!("no {n} in {files:?}"))
    };
    check_file(
        &rec_dir.join(&by_name("alice.webm").name),
        a1.0 + a2.0,
        a1.1 + a2.1,
    );
    check_file(&rec_dir.join(&by_name("bob.webm").name), b.0, b.1);
    let screen_file = by_name("bob@screen.webm");
    assert_eq!(screen_file.sources, [TrackSource::Screen]);
    let streams = probe(&rec_dir.join(&screen_file.name)).unwrap();
    assert_eq!(stream(&streams, "vp8").packets as usize, s.0);
    // Bob's file starts where his media did: after he published and primed his tracks, well
    // into the recording.
    assert!(by_name("bob.webm").start_ms >= 400, "{files:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A camera that sends a key frame only when asked (as a browser's does) gets asked every 2 s
/// by default while recorded: 8 s hold four key frames or more, not one. The file closed
/// at the stop is indexed: a CuePoint per key frame, a SeekHead to the Cues, and the Opus
/// track's codec delay and seek pre-roll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_get_a_key_frame_every_two_seconds_and_an_index() {
    let (_turn, dir, builder) = recording_setup("keyframes");
    let server = builder.start().await.unwrap();
    let mut users = room_of(&server, "keys", &["alice", "bob"]).await;
    let mut alice = publish_all(&users[..1])
        .await
        .remove(0)
        .keyframes_on_request();
    alice.prime().await;
    start(&users[0], RecordingOptions::default()).await;
    until(&mut users[1], Duration::from_secs(15), started).await;
    alice.send(15 * 8).await;
    let op = users[0].call.stop_recording().await.unwrap();
    done(&users[0].call, op).await;
    let (_, files) = until(&mut users[1], Duration::from_secs(10), stopped).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let rec_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let path = rec_dir.join(&files[0].name);
    let streams = probe(&path).unwrap();
    let keyframes = stream(&streams, "vp8").keyframes as usize;
    println!(
        "{keyframes} key frames in {} ms ({} sent)",
        files[0].duration_ms, alice.keyframes_sent
    );
    // At 0, 2, 4 and 6 s, or a little later (the camera answers with its next frame); one
    // more at the start when the recorder's first request comes after the first frame.
    assert!((4..=6).contains(&keyframes), "{keyframes} key frames");
    assert!(keyframes <= alice.keyframes_sent);
    let info = mkvinfo(&path);
    assert_eq!(cues(&info), (keyframes, true), "{info}");
    assert!(opus_delays(&info), "{info}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Who may record, and what a wrong request gets: typed refusals, nothing changed.
#[tokio::test]
async fn recording_requests_are_checked() {
    let dir = recording_dir("checks");
    let server = builder().recording_dir(&dir).start().await.unwrap();
    let mut users = room_of(&server, "chk", &["alice", "bob"]).await;
    // Bob is a guest.
    let op = users[1]
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    assert_eq!(
        refused(&users[1].call, op).await,
        ErrorCode::PermissionDenied
    );
    // Stopping when idle.
    let op = users[0].call.stop_recording().await.unwrap();
    assert_eq!(refused(&users[0].call, op).await, ErrorCode::NotRecording);
    // Options refused before anything is sent.
    let err = users[0]
        .call
        .start_recording(RecordingOptions::default().audio(false).video(false))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidParam { .. }), "{err:?}");
    // The property is not the way to record any more.
    let op = users[0]
        .call
        .set_properties(jrtc::PropertyUpdate::default().recording(true))
        .await
        .unwrap();
    assert_eq!(refused(&users[0].call, op).await, ErrorCode::InvalidParam);
    // Starting twice.
    start(&users[0], RecordingOptions::default()).await;
    let op = users[0]
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    assert_eq!(
        refused(&users[0].call, op).await,
        ErrorCode::AlreadyRecording
    );
    until(&mut users[1], Duration::from_secs(15), started).await;
    let op = users[0].call.stop_recording().await.unwrap();
    done(&users[0].call, op).await;
    until(&mut users[1], Duration::from_secs(10), stopped).await;

    // A host without the `record` grant.
    let token = server
        .mint(&jrtc::AccessToken::new("dave").grants(jrtc::Grants::host().record(false)))
        .unwrap();
    let mut dave = User::connect_url(&server.url(), token).await;
    dave.join("dave-room").await;
    let op = dave
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    assert_eq!(refused(&dave.call, op).await, ErrorCode::MissingGrant);

    // A server without a recorder of its own and none connected.
    let bare = builder().embedded_recorder(false).start().await.unwrap();
    let mut erin = User::connect(&bare, "erin").await;
    erin.join("e").await;
    let op = erin
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    assert_eq!(refused(&erin.call, op).await, ErrorCode::NoRecorder);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 2 s maximum ends the recording with "limit reached", not an abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_limit_stops_the_recording() {
    let (_turn, dir, builder) = recording_setup("limit");
    let server = builder.start().await.unwrap();
    let mut users = room_of(&server, "lim", &["alice", "bob"]).await;
    let mut alice = publish_all(&users[..1]).await.remove(0);
    let options = RecordingOptions::default().max_duration(Duration::from_secs(2));
    start(&users[0], options).await;
    until(&mut users[1], Duration::from_secs(15), started).await;
    let sending = tokio::spawn(async move {
        alice.prime().await;
        alice.send(60).await
    });
    let started_at = std::time::Instant::now();
    let (reason, files) = until(&mut users[1], Duration::from_secs(10), stopped).await;
    assert_eq!(reason, StopReason::LimitReached);
    assert!(started_at.elapsed() < Duration::from_secs(3));
    assert_eq!(files.len(), 1);
    assert_eq!(
        users[1].call.room().unwrap().properties.recording,
        RecordingState::Idle
    );
    sending.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A room records from its start when the server says so, or the token that creates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_can_record_from_their_start() {
    let (_turn, dir, builder) = recording_setup("auto");
    let server = builder
        .auto_record(RecordingOptions::default().audio(false))
        .start()
        .await
        .unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("auto").await;
    let recorder = until(&mut alice, Duration::from_secs(15), started).await;
    assert_eq!(recorder.as_str(), "recorder");

    let plain = crate::support::builder()
        .recording_dir(&dir)
        .start()
        .await
        .unwrap();
    let token = plain
        .mint(
            &jrtc::AccessToken::new("bob")
                .grants(jrtc::Grants::host())
                .record_from_start(RecordingOptions::default()),
        )
        .unwrap();
    let mut bob = User::connect_url(&plain.url(), token).await;
    bob.join("by-token").await;
    until(&mut bob, Duration::from_secs(15), started).await;
    // Carol's token does not say so: her room is not recorded.
    let mut carol = User::connect(&plain, "carol").await;
    let snapshot = carol.join("plain").await;
    assert_eq!(snapshot.properties.recording, RecordingState::Idle);
    carol.assert_quiet().await;
    let _ = std::fs::remove_dir_all(&dir);
}

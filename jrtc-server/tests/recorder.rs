//! `jrtc-server recorder` as a process of its own, failing for real: a file-size limit
//! (`RLIMIT_FSIZE`, SIGXFSZ ignored, so writes fail with EFBIG), and SIGKILL mid-recording;
//! and its key-frame interval. The server runs in the test; the recorder is the real binary.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jrtc::{
    AbortReason, AccessToken, Call, CallEvent, EventStream, Grants, JoinOptions, Outcome, Reason,
    RecordingEvent, RecordingOptions, RecordingPolicy, RecordingState, ServerHandle, TrackSource,
};
use jrtc_testkit::media::{MediaSender, cues, mkvinfo, opus_delays, probe, recording_dir, stream};

const SECRET: &str = "the recorder tests' secret, long enough to be accepted";

async fn server() -> ServerHandle {
    jrtc::Server::builder()
        .secret(SECRET)
        .embedded_recorder(false)
        .start()
        .await
        .unwrap()
}

/// Starts `jrtc-server recorder` for `server`, writing under `dir`, its files limited to
/// `fsize` bytes if given; waits until the server counts it.
async fn recorder(server: &ServerHandle, dir: &std::path::Path, fsize: Option<u64>) -> Child {
    recorder_with(server, dir, fsize, &[]).await
}

async fn recorder_with(
    server: &ServerHandle,
    dir: &std::path::Path,
    fsize: Option<u64>,
    extra: &[&str],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jrtc-server"));
    cmd.args(["recorder", "--url", &server.url(), "--log-level", "warn"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .env("JRTC_SECRET", SECRET)
        .stdout(Stdio::null());
    if let Some(limit) = fsize {
        // In the child before exec: past the limit a write fails with EFBIG instead of the
        // process dying of SIGXFSZ (an ignored signal stays ignored across exec).
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("the recorder starts");
    for _ in 0..200 {
        if server.recorder_count() == 1 {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the recorder did not register");
}

struct Member {
    call: Call,
    events: EventStream,
}

async fn member(server: &ServerHandle, id: &str) -> Member {
    let token = server
        .mint(&AccessToken::new(id).grants(Grants::host()))
        .unwrap();
    let call = Call::connect(&server.url(), token).await.unwrap();
    let events = call.events();
    let op = call.join("rec", JoinOptions::default()).await.unwrap();
    assert!(matches!(call.outcome(op).await, Ok(Outcome::Joined(_))));
    Member { call, events }
}

/// The next event of `m` that `pick` takes (see `jrtc_testkit::media::until`).
async fn until<T>(m: &mut Member, wait: Duration, pick: impl FnMut(CallEvent) -> Option<T>) -> T {
    jrtc_testkit::media::until(&m.call, &mut m.events, wait, pick).await
}

fn aborted(ev: CallEvent) -> Option<(bool, Option<jrtc::UserId>, AbortReason)> {
    match ev {
        CallEvent::Recording(RecordingEvent::Aborted {
            shut_down,
            recorder,
            reason,
            ..
        }) => Some((shut_down, recorder, reason)),
        _ => None,
    }
}

fn started(ev: CallEvent) -> Option<()> {
    matches!(ev, CallEvent::Recording(RecordingEvent::Started { .. })).then_some(())
}

/// Alice (publishing) and bob in room `rec`, recording with `policy` once the recorder joined;
/// alice's media goes on in the background.
async fn recording(
    server: &ServerHandle,
    policy: RecordingPolicy,
) -> (Vec<Member>, tokio::task::JoinHandle<()>) {
    let mut members = vec![member(server, "alice").await, member(server, "bob").await];
    let camera = members[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let mic = members[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let options = RecordingOptions::default().policy(policy);
    let op = members[0].call.start_recording(options).await.unwrap();
    members[0].call.outcome(op).await.unwrap();
    for m in &mut members {
        until(m, Duration::from_secs(15), started).await;
    }
    let media = tokio::spawn(async move {
        let mut sender = MediaSender::new(Some(camera), Some(mic));
        sender.prime().await;
        sender.send(15 * 30).await;
    });
    (members, media)
}

/// The recording's only directory under `dir`.
fn only_recording(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_whose_writes_fail_aborts_an_optional_recording_and_the_call_goes_on() {
    let server = server().await;
    let dir = recording_dir("efbig-optional");
    let mut child = recorder(&server, &dir, Some(24 * 1024)).await;
    let (mut members, media) = recording(&server, RecordingPolicy::Optional).await;
    for m in &mut members {
        let (shut_down, recorder, reason) = until(m, Duration::from_secs(20), aborted).await;
        assert!(!shut_down);
        assert_eq!(recorder.as_ref().map(|r| r.as_str()), Some("recorder"));
        assert_eq!(reason, AbortReason::StorageFailed);
    }
    // The state says so, and the call goes on.
    let room = members[1].call.room().expect("still in the room");
    assert!(matches!(
        room.properties.recording,
        RecordingState::Failed {
            reason: AbortReason::StorageFailed,
            ..
        }
    ));
    let op = members[0]
        .call
        .send_message(None, "text/plain", "still here")
        .await
        .unwrap();
    members[0].call.outcome(op).await.unwrap();
    // What was written before the failure plays.
    let file = only_recording(&dir).join("alice.webm");
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= 24 * 1024, "{size} bytes: the limit held");
    let streams = probe(&file).expect("the part written before the failure reads");
    assert!(stream(&streams, "vp8").packets > 10, "{streams:?}");
    media.abort();
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_recording_that_fails_ends_the_call_for_everyone() {
    let server = server().await;
    let dir = recording_dir("efbig-required");
    let mut child = recorder(&server, &dir, Some(24 * 1024)).await;
    let (mut members, media) = recording(&server, RecordingPolicy::Required).await;
    for m in &mut members {
        let (shut_down, _, reason) = until(m, Duration::from_secs(20), aborted).await;
        assert!(shut_down);
        assert_eq!(reason, AbortReason::StorageFailed);
        let reason = until(m, Duration::from_secs(5), |ev| match ev {
            CallEvent::Left { reason, .. } => Some(reason),
            _ => None,
        })
        .await;
        assert_eq!(reason, Reason::RecordingFailed);
        assert!(m.call.room().is_none());
    }
    media.abort();
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recorder_is_reported_to_every_member_at_once() {
    let server = server().await;
    let dir = recording_dir("sigkill");
    let mut child = recorder(&server, &dir, None).await;
    let (mut members, media) = recording(&server, RecordingPolicy::Optional).await;
    // Killed once it has written some of alice's media (a few frames past the file's header).
    let file = only_recording(&dir).join("alice.webm");
    for _ in 0..400 {
        if std::fs::metadata(&file).is_ok_and(|m| m.len() > 16 * 1024) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    let _ = child.wait();
    let mut times = Vec::new();
    for m in &mut members {
        let (shut_down, recorder, reason) = until(m, Duration::from_secs(10), aborted).await;
        times.push(killed.elapsed());
        assert!(!shut_down);
        assert_eq!(recorder.as_ref().map(|r| r.as_str()), Some("recorder"));
        assert_eq!(reason, AbortReason::RecorderLost);
    }
    println!("SIGKILL to aborted at the members: {times:?}");
    assert!(matches!(
        members[1].call.room().unwrap().properties.recording,
        RecordingState::Failed {
            reason: AbortReason::RecorderLost,
            ..
        }
    ));
    // Its other session (the one that took the job) goes too, as soon as its close is seen.
    for _ in 0..100 {
        if server.recorder_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.recorder_count(), 0);
    // What the killed recorder wrote plays up to where it stopped.
    let streams = probe(&only_recording(&dir).join("alice.webm")).expect("the file reads");
    assert!(stream(&streams, "vp8").packets > 10, "{streams:?}");
    media.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_that_receives_no_media_is_aborted() {
    let server = server().await;
    let dir = recording_dir("no-media");
    let mut child = recorder_with(&server, &dir, None, &["--no-media-timeout", "1"]).await;
    let mut members = [member(&server, "alice").await];
    let camera = members[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let op = members[0]
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    members[0].call.outcome(op).await.unwrap();
    until(&mut members[0], Duration::from_secs(15), started).await;
    // Alice's camera sends for a second, then nothing, unmuted.
    let mut sender = MediaSender::new(Some(camera), None);
    sender.prime().await;
    sender.send(14).await;
    // The recorder measures silence from the last packet it receives, which leaves here after
    // this instant (taken before the last frame, so a pause of this test after sending cannot
    // move it later than the recorder's).
    let silent = Instant::now();
    sender.send(1).await;
    let (shut_down, _, reason) = until(&mut members[0], Duration::from_secs(10), aborted).await;
    assert!(!shut_down);
    assert_eq!(reason, AbortReason::NoMedia);
    assert!(silent.elapsed() >= Duration::from_secs(1));
    drop(sender);
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--keyframe-interval 0.5`: a camera that sends key frames only when asked sends about two a
/// second while recorded. The file closed at the stop has a CuePoint per key frame and a
/// SeekHead to them; a copy cut short mid-way still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_asks_for_key_frames_at_its_interval_and_indexes_its_files() {
    let server = server().await;
    let dir = recording_dir("keyframe-interval");
    let mut child = recorder_with(&server, &dir, None, &["--keyframe-interval", "0.5"]).await;
    let mut members = [member(&server, "alice").await];
    let camera = members[0]
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let mic = members[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let mut sender = MediaSender::new(Some(camera), Some(mic)).keyframes_on_request();
    sender.prime().await;
    let op = members[0]
        .call
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    members[0].call.outcome(op).await.unwrap();
    until(&mut members[0], Duration::from_secs(15), started).await;
    sender.send(15 * 4).await;
    let op = members[0].call.stop_recording().await.unwrap();
    members[0].call.outcome(op).await.unwrap();
    until(&mut members[0], Duration::from_secs(10), |ev| {
        matches!(ev, CallEvent::Recording(RecordingEvent::Stopped { .. })).then_some(())
    })
    .await;
    let file = only_recording(&dir).join("alice.webm");
    let streams = probe(&file).expect("the file reads");
    let video = stream(&streams, "vp8");
    println!(
        "{} key frames in {} video frames ({} sent)",
        video.keyframes, video.packets, sender.keyframes_sent
    );
    // 4 s at one key frame every 0.5 s or a little more (the camera answers with its next
    // frame): 6 at least (2 by default, 1 without).
    assert!(video.keyframes >= 6, "{streams:?}");
    let info = mkvinfo(&file);
    assert_eq!(cues(&info), (video.keyframes as usize, true), "{info}");
    assert!(opus_delays(&info), "{info}");
    // Cut short (as by a full disk before the stop): the SeekHead points past the end, and
    // what is there still reads.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.join("cut.webm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let streams = probe(&cut).expect("the cut file reads");
    let cut_video = stream(&streams, "vp8").packets;
    assert!(cut_video > 0 && cut_video < video.packets, "{streams:?}");
    drop(sender);
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

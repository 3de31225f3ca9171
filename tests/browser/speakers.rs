//! Who speaks, measured by the server from the level each microphone packet carries (the RFC
//! 6464 extension Chromium writes): a Chromium member whose microphone plays a steady tone
//! (a WAV made with ffmpeg at test time) is the room's only speaker, at every member (a Rust
//! one and itself); a Rust member that publishes nothing is never one; when the speaker mutes,
//! nobody speaks.

use std::path::{Path, PathBuf};

use jrtc::{CallEvent, MediaEvent};
use jrtc_testkit::media::speak;

use crate::support::{Browser, Member, ffmpeg_fixture, in_namespace, server};

/// A 440 Hz tone peaking at −6 dBFS (so −9 dBov as RFC 6464 measures it), one second
/// (Chromium loops it), made once per test run.
fn tone_wav() -> PathBuf {
    ffmpeg_fixture(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "tone-440-6dbfs.wav",
        "aevalsrc=0.5*sin(2*PI*440*t):s=48000:d=1",
        &["-ac", "1", "-f", "wav"],
    )
}

/// The next `ActiveSpeakers` of `member`: who, in order, with their levels.
async fn next_speakers(member: &mut Member) -> Vec<(String, u8)> {
    member
        .until(|e| match e {
            CallEvent::Media(MediaEvent::ActiveSpeakers { speakers, .. }) => Some(
                speakers
                    .iter()
                    .map(|s| (s.user_id.to_string(), s.level_dbov))
                    .collect(),
            ),
            _ => None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_with_a_loud_microphone_is_the_speaker_until_it_mutes() {
    if !in_namespace("speakers::the_member_with_a_loud_microphone_is_the_speaker_until_it_mutes") {
        return;
    }
    let wav = tone_wav();
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "r").await;
    let browser = Browser::launch_with_microphone(&wav).await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "r", false).await;
    browser
        .eval(
            page,
            // Without the browser's voice processing, which damps a steady tone as noise.
            "await T.calls.web.outcome(T.calls.web.publishMicrophone({ echoCancellation: false, noiseSuppression: false, autoGainControl: false }));",
        )
        .await;
    let published = std::time::Instant::now();

    // The tone speaks, at its level (a sine's RMS is 3 dB under its peak: 9 −dBov); the Rust
    // member, silent, is not in the list.
    let speakers = next_speakers(&mut rust).await;
    let spoke = published.elapsed();
    assert_eq!(speakers.len(), 1, "{speakers:?}");
    assert_eq!(speakers[0].0, "web");
    assert!((6..=12).contains(&speakers[0].1), "{speakers:?}");
    // The speaker hears it too.
    let seen = browser
        .eval(
            page,
            "const e = await T.until('web', (e) => e.type === 'media' && e.kind === 'active_speakers' && e.speakers.length === 1);
             return e.speakers.map((s) => s.user_id);",
        )
        .await;
    assert_eq!(seen, serde_json::json!(["web"]));

    // It mutes: nobody speaks, at once.
    let muting = std::time::Instant::now();
    browser
        .eval(
            page,
            "await T.calls.web.outcome(T.calls.web.mute('microphone', true));",
        )
        .await;
    assert_eq!(next_speakers(&mut rust).await, []);
    eprintln!(
        "speakers: {speakers:?} {spoke:?} after the microphone was published; nobody {:?} \
         after the mute was asked",
        muting.elapsed()
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_page_rings_the_speakers_tile() {
    if !in_namespace("speakers::the_call_page_rings_the_speakers_tile") {
        return;
    }
    let server = server().await;
    let rust = Member::join(&server, "rust", "standup").await;
    let mic = rust
        .call
        .publish_track(jrtc::TrackSource::Microphone)
        .await
        .unwrap();
    let browser = Browser::launch().await;
    let page = browser
        .open(&format!("{}/?room=standup", server.http_url()))
        .await;
    browser.fill(page, "#name", "Ada").await;
    browser.click(page, "#join").await;
    let ringed = "document.querySelector('.tile[data-user=\"rust\"]')?.classList.contains('speaking') === true";
    let loud = speak(mic.clone(), 15);
    browser.wait_for(page, ringed).await;
    loud.abort();
    let quiet = speak(mic, 127);
    browser.wait_for(page, &format!("!({ringed})")).await;
    quiet.abort();
    browser.quit().await;
}

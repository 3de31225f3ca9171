//! Active speakers and volume status from a Rust publisher: it writes its audio with the level
//! of each packet (`LocalTrack::write_with_level`, the RFC 6464 extension); the others hear who
//! speaks, and how loud each member is, from the server, which decodes nothing. A level out of
//! range is a typed error.

use jrtc::{
    ActiveSpeaker, CallEvent, MediaError, MediaEvent, ParticipantEvent, TrackSource, VolumeStatus,
};

use crate::record_support::speak;
use crate::support::{User, builder};

/// Takes `user`'s events until the active speakers are `speakers` and `who`'s volume status
/// is `volume` (in either order).
async fn until_heard(user: &mut User, who: &str, speakers: &[ActiveSpeaker], volume: VolumeStatus) {
    let (mut speakers_seen, mut volume_seen) = (None, None);
    while speakers_seen.as_deref() != Some(speakers) || volume_seen != Some(volume) {
        match user.next().await {
            CallEvent::Media(MediaEvent::ActiveSpeakers { speakers, .. }) => {
                speakers_seen = Some(speakers)
            }
            CallEvent::Participant(ParticipantEvent::Updated {
                participant,
                changes,
                ..
            }) if changes.volume && participant.user_id.as_str() == who => {
                volume_seen = Some(participant.volume)
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_rust_publishers_levels_make_it_the_speaker_and_silence_ends_it() {
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
    assert!(matches!(
        mic.write_with_level(vec![0xfc], 0, 128).await,
        Err(MediaError::AudioLevel { level: 128 })
    ));

    let loud = speak(mic.clone(), 12);
    let alice_speaks = [ActiveSpeaker {
        user_id: "alice".into(),
        level_dbov: 12,
    }];
    until_heard(&mut bob, "alice", &alice_speaks, VolumeStatus::VeryHigh).await;
    // Silence (but packets still coming): nobody speaks once the loud windows are a second
    // old, and her volume status falls to none.
    loud.abort();
    let quiet = speak(mic, 127);
    until_heard(&mut bob, "alice", &[], VolumeStatus::None).await;
    quiet.abort();
}

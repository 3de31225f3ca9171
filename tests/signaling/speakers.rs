//! Active speakers from a Rust publisher: it writes its audio with the level of each packet
//! (`LocalTrack::write_with_level`, the RFC 6464 extension); the others hear who speaks from
//! the server, which decodes nothing. A level out of range is a typed error.

use jrtc::{ActiveSpeaker, CallEvent, MediaError, MediaEvent, TrackSource};

use crate::record_support::speak;
use crate::support::{User, builder};

async fn next_speakers(user: &mut User) -> Vec<ActiveSpeaker> {
    loop {
        if let CallEvent::Media(MediaEvent::ActiveSpeakers { speakers, .. }) = user.next().await {
            return speakers;
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
    let speakers = next_speakers(&mut bob).await;
    assert_eq!(
        speakers,
        [ActiveSpeaker {
            user_id: "alice".into(),
            level_dbov: 12
        }]
    );
    // Silence (but packets still coming): nobody speaks once the loud windows are a second old.
    loud.abort();
    let quiet = speak(mic, 127);
    assert_eq!(next_speakers(&mut bob).await, []);
    quiet.abort();
}

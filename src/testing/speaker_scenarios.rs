//! Scenarios of active speakers over the sans-IO core with exact outputs: the media shell
//! reports each microphone's level per window; every member hears who speaks, the loudest
//! first, when that changes; a mute, an unpublished microphone or a member leaving ends a
//! speaker at once; levels of a muted or unpublished microphone count for nothing; a publisher
//! whose offer carries the audio-level extension has its id passed to the shell.

use crate::model::{ActiveSpeaker, RoomId, TrackSource, UserId, VolumeStatus};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::hub::io::{MediaAction, MediaFact, MediaKey};
use crate::server::hub::{ConnId, Output};

use super::scenarios::{Harness, actions_for, frames_to, updates_to};

/// The `speakers` frames among `out` to `conn`.
fn speakers_to(out: &[Output], conn: ConnId) -> Vec<Vec<ActiveSpeaker>> {
    frames_to(out, conn)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Speakers { room, speakers } => {
                assert_eq!(room, RoomId::from("r"));
                Some(speakers)
            }
            _ => None,
        })
        .collect()
}

/// The volume statuses told to `conn` among `out` (participant updates with the volume flag).
fn volumes_to(out: &[Output], conn: ConnId) -> Vec<(String, VolumeStatus)> {
    updates_to(out, conn, |c| c.volume)
        .into_iter()
        .map(|(p, _)| (p.user_id.to_string(), p.volume))
        .collect()
}

fn speaker(user: &str, level_dbov: u8) -> ActiveSpeaker {
    ActiveSpeaker {
        user_id: UserId::from(user),
        level_dbov,
    }
}

/// A window of `key`'s microphone at `level` ends 200 ms after the last.
fn window(h: &mut Harness, key: &MediaKey, level: u8) -> Vec<Output> {
    h.wait(200);
    h.report(
        key.clone(),
        MediaFact::AudioLevel {
            source: TrackSource::Microphone,
            level_dbov: level,
        },
    )
}

#[test]
fn members_hear_who_speaks_loudest_first_and_a_mute_ends_a_speaker_at_once() {
    let mut h = Harness::new();
    let [alice, bob, carol] = h.members("r", ["alice", "bob", "carol"]);
    let (alice_key, bob_key) = (h.key(alice), h.key(bob));
    // Levels before the microphone is published count for nothing.
    assert!(speakers_to(&window(&mut h, &alice_key, 10), bob).is_empty());
    assert!(speakers_to(&window(&mut h, &alice_key, 10), bob).is_empty());
    h.publish(alice, TrackSource::Microphone);
    h.publish(bob, TrackSource::Microphone);
    // One loud window is no speaker; the second is. Her volume status (Mid, twice in a row)
    // is a participant update, numbered like any other.
    assert!(speakers_to(&window(&mut h, &alice_key, 30), bob).is_empty());
    let out = window(&mut h, &alice_key, 30);
    for member in [alice, bob, carol] {
        assert_eq!(speakers_to(&out, member), [vec![speaker("alice", 30)]]);
        assert_eq!(
            volumes_to(&out, member),
            [("alice".to_owned(), VolumeStatus::Mid)]
        );
    }
    // Bob speaks louder: both, bob first, told at the first measurement 500 ms after the
    // last list (alice's, at 25: her mean over her loud windows is 28).
    assert!(speakers_to(&window(&mut h, &bob_key, 10), carol).is_empty());
    assert!(speakers_to(&window(&mut h, &bob_key, 10), carol).is_empty());
    let out = window(&mut h, &alice_key, 25);
    assert_eq!(
        speakers_to(&out, carol),
        [vec![speaker("bob", 10), speaker("alice", 28)]]
    );
    // Alice's level moving within the order sends nothing.
    assert!(speakers_to(&window(&mut h, &alice_key, 25), carol).is_empty());
    // Bob mutes: the room hears at once, and his later windows count for nothing.
    let op = h.op();
    let out = h.frame(
        bob,
        ClientFrame::Mute {
            op,
            source: TrackSource::Microphone,
            muted: true,
            user_id: None,
        },
    );
    // (Alice's loud windows of the last second: 30, 25, 25.) Bob's volume status: none.
    assert_eq!(speakers_to(&out, carol), [vec![speaker("alice", 26)]]);
    assert_eq!(
        volumes_to(&out, carol),
        [("bob".to_owned(), VolumeStatus::None)]
    );
    assert!(speakers_to(&window(&mut h, &bob_key, 5), carol).is_empty());
    assert!(speakers_to(&window(&mut h, &bob_key, 5), carol).is_empty());
    // Alice leaves: nobody speaks, at once.
    let op = h.op();
    let out = h.frame(alice, ClientFrame::Leave { op });
    assert_eq!(speakers_to(&out, carol), [Vec::<ActiveSpeaker>::new()]);
}

#[test]
fn the_audio_level_extensions_id_goes_to_the_shell_with_the_offer() {
    let mut h = Harness::new();
    let [alice] = h.members("r", ["alice"]);
    let sdp = super::sim_media::publish_offer(&[TrackSource::Microphone].into_iter().collect())
        .replace(
            "a=rtpmap:111",
            "a=extmap:7 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=rtpmap:111",
        );
    let op = h.op();
    let out = h.frame(
        alice,
        ClientFrame::PublishOffer {
            op,
            sdp: sdp.clone(),
            source: Some(TrackSource::Microphone),
        },
    );
    assert_eq!(
        actions_for(&out, &h.key(alice)),
        [MediaAction::AnswerPublish {
            op,
            sdp,
            rids: Default::default(),
            levels: [(TrackSource::Microphone, 7)].into_iter().collect(),
        }]
    );
}

/// The `FavourCamera` actions among `out` for `key`'s media.
fn favoured_for(out: &[Output], key: &MediaKey) -> Vec<Option<String>> {
    actions_for(out, key)
        .into_iter()
        .filter_map(|a| match a {
            MediaAction::FavourCamera { publication } => Some(publication),
            _ => None,
        })
        .collect()
}

#[test]
fn the_loudest_speakers_camera_is_favoured_by_every_receiver_until_nobody_speaks() {
    let mut h = Harness::new();
    let [alice, bob, carol] = h.members("r", ["alice", "bob", "carol"]);
    let (alice_key, bob_key, carol_key) = (h.key(alice), h.key(bob), h.key(carol));
    h.publish(alice, TrackSource::Microphone);
    h.publish(alice, TrackSource::Camera);
    h.publish(bob, TrackSource::Microphone);
    // Alice speaks: bob and carol receive her camera and favour it; she receives bob's
    // microphone, so she is told too (her allocation has no leg of her own camera).
    window(&mut h, &alice_key, 30);
    let out = window(&mut h, &alice_key, 30);
    let camera = vec![Some("alice/camera".to_owned())];
    for key in [&alice_key, &bob_key, &carol_key] {
        assert_eq!(favoured_for(&out, key), camera);
    }
    // Bob, who has no camera, speaks louder: nobody's camera is favoured.
    window(&mut h, &bob_key, 10);
    window(&mut h, &bob_key, 10);
    let out = window(&mut h, &alice_key, 25);
    assert_eq!(favoured_for(&out, &carol_key), [None]);
    // The same speakers again: nothing new to tell.
    assert!(favoured_for(&window(&mut h, &bob_key, 10), &carol_key).is_empty());
}

//! Scenarios of muting, over the sans-IO core with exact outputs: a mute is enforced by the
//! media shell (the core tells it to forward nothing of the track), by the publisher, a host or
//! the backend; only the publisher unmutes.

use crate::auth::Grants;
use crate::model::{TrackSource, UserId};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame};
use crate::server::hub::io::MediaAction;

use super::scenarios::{Harness, actions_for, frames_to, only_refusal};

fn mute(user: Option<&str>, source: TrackSource, muted: bool, op: u64) -> ClientFrame {
    ClientFrame::Mute {
        op: crate::model::OperationId(op),
        source,
        muted,
        user_id: user.map(UserId::from),
    }
}

/// `conn` asks to mute (or unmute) `user`'s `source`: the op and the outputs.
fn ask(
    h: &mut Harness,
    conn: crate::server::hub::ConnId,
    user: &str,
    source: TrackSource,
    muted: bool,
) -> (crate::model::OperationId, Vec<crate::server::hub::Output>) {
    let op = h.op();
    let out = h.frame(
        conn,
        ClientFrame::Mute {
            op,
            source,
            muted,
            user_id: Some(user.into()),
        },
    );
    (op, out)
}

/// The `track_muted` frame among `frames`: (muted, by).
fn track_muted(frames: &[ServerFrame]) -> Vec<(bool, Option<UserId>)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::TrackMuted {
                publication, by, ..
            } => Some((publication.muted, by.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_host_mute_stops_forwarding_and_says_who_and_only_the_owner_unmutes() {
    let mut h = Harness::new();
    let [alice, bob, carol] = h.members("r", ["alice", "bob", "carol"]);
    h.publish(bob, TrackSource::Microphone);
    let bob_key = h.key(bob);

    // Alice hosts (she made the room): her mute of Bob's microphone is enforced by the shell.
    let out = h.frame(alice, mute(Some("bob"), TrackSource::Microphone, true, 1));
    assert_eq!(
        actions_for(&out, &bob_key),
        [MediaAction::Forward {
            source: TrackSource::Microphone,
            muted: true
        }]
    );
    for conn in [alice, bob, carol] {
        assert_eq!(
            track_muted(&frames_to(&out, conn)),
            [(true, Some(UserId::from("alice")))],
            "everyone hears who muted the track"
        );
    }

    // Carol is no host: she cannot mute Bob's camera (nor anything else of his).
    h.publish(bob, TrackSource::Camera);
    let (op, out) = ask(&mut h, carol, "bob", TrackSource::Camera, true);
    assert_eq!(only_refusal(&out, carol, op), ErrorCode::PermissionDenied);

    // The host cannot unmute Bob: only Bob does.
    let (op, out) = ask(&mut h, alice, "bob", TrackSource::Microphone, false);
    assert_eq!(only_refusal(&out, alice, op), ErrorCode::PermissionDenied);

    // Bob unmutes his own: forwarding resumes, and nobody is named.
    let out = h.frame(bob, mute(None, TrackSource::Microphone, false, 2));
    assert_eq!(
        actions_for(&out, &bob_key),
        [MediaAction::Forward {
            source: TrackSource::Microphone,
            muted: false
        }]
    );
    assert_eq!(track_muted(&frames_to(&out, carol)), [(false, None)]);
}

#[test]
fn unmuting_video_asks_for_a_key_frame_and_a_new_publication_is_forwarded() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    let published = h.publish(bob, TrackSource::Camera);
    let bob_key = h.key(bob);
    // A publication starts forwarded, whatever an earlier one of the track was.
    assert!(
        actions_for(&published, &bob_key).contains(&MediaAction::Forward {
            source: TrackSource::Camera,
            muted: false
        })
    );
    h.frame(alice, mute(Some("bob"), TrackSource::Camera, true, 1));
    let out = h.frame(bob, mute(None, TrackSource::Camera, false, 2));
    assert_eq!(
        actions_for(&out, &bob_key),
        [
            MediaAction::Forward {
                source: TrackSource::Camera,
                muted: false
            },
            MediaAction::RequestKeyframe {
                source: TrackSource::Camera
            }
        ]
    );
}

#[test]
fn muting_others_needs_the_moderate_grant_and_a_track() {
    let mut h = Harness::new();
    let alice = h.login_with(
        "alice",
        Grants {
            moderate: false,
            ..Grants::all()
        },
    );
    h.join(alice, "r");
    let [bob] = h.members("r", ["bob"]);
    h.publish(bob, TrackSource::Microphone);
    let (op, out) = ask(&mut h, alice, "bob", TrackSource::Microphone, true);
    assert_eq!(only_refusal(&out, alice, op), ErrorCode::MissingGrant);

    // Naming oneself needs no grant: it is one's own mute.
    h.publish(alice, TrackSource::Camera);
    let alice_key = h.key(alice);
    let out = h.frame(alice, mute(Some("alice"), TrackSource::Camera, true, 3));
    assert_eq!(
        actions_for(&out, &alice_key),
        [MediaAction::Forward {
            source: TrackSource::Camera,
            muted: true
        }]
    );
    assert_eq!(track_muted(&frames_to(&out, bob)), [(true, None)]);
}

#[test]
fn a_host_cannot_mute_a_track_that_is_not_published() {
    let mut h = Harness::new();
    let [alice, _bob] = h.members("r", ["alice", "bob"]);
    let (op, out) = ask(&mut h, alice, "bob", TrackSource::Screen, true);
    assert_eq!(only_refusal(&out, alice, op), ErrorCode::NoSuchTrack);
    let (op, out) = ask(&mut h, alice, "nobody", TrackSource::Screen, true);
    assert_eq!(only_refusal(&out, alice, op), ErrorCode::NoSuchParticipant);
}

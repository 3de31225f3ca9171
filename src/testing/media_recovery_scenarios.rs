//! Peer connections that fail, over the core alone with exact outputs: a failed connection is
//! kept for the grace period while ICE is restarted, and either comes back (nothing anyone
//! received ends) or is given up with a reason.

use super::scenarios::{Harness, actions_for, frames_to};
use crate::model::{MediaConnection, Reason, TrackSource};
use crate::protocol::{ClientFrame, ServerFrame};
use crate::server::hub::io::{MediaAction, MediaFact};

/// The test configuration's grace period.
const GRACE: u64 = 15_000;

fn interrupted(connection: MediaConnection) -> ServerFrame {
    ServerFrame::MediaInterrupted {
        connection,
        grace_ms: GRACE,
    }
}

#[test]
fn a_failed_publishing_connection_is_kept_while_ice_restarts_and_comes_back() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let alice_key = h.key(alice);
    let out = h.report(
        alice_key.clone(),
        MediaFact::PeerFailed {
            connection: MediaConnection::Publish,
        },
    );
    // Only alice hears it; her camera stays published and nothing is closed.
    assert_eq!(
        frames_to(&out, alice),
        [interrupted(MediaConnection::Publish)]
    );
    assert!(frames_to(&out, bob).is_empty(), "{out:?}");
    assert!(actions_for(&out, &alice_key).is_empty(), "{out:?}");
    // Her side saw it too and says so: nothing new (the first deadline stands).
    let out = h.frame(
        alice,
        ClientFrame::MediaInterrupted {
            connection: MediaConnection::Publish,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    // Her ICE-restart offer names no source and publishes nothing new: it is answered.
    let op = h.op();
    let sdp = super::sim_media::publish_offer(&[TrackSource::Camera].into_iter().collect());
    let out = h.frame(
        alice,
        ClientFrame::PublishOffer {
            op,
            sdp: sdp.clone(),
            source: None,
        },
    );
    assert_eq!(
        actions_for(&out, &alice_key),
        [MediaAction::AnswerPublish {
            op,
            sdp,
            rids: Default::default(),
            levels: Default::default(),
        }]
    );
    let out = h.report(
        alice_key.clone(),
        MediaFact::PublishAnswered {
            op,
            result: Ok("v=0\r\n".into()),
        },
    );
    assert_eq!(
        frames_to(&out, alice),
        [ServerFrame::PublishAnswer {
            op,
            sdp: "v=0\r\n".into()
        }]
    );
    assert!(frames_to(&out, bob).is_empty(), "no republish: {out:?}");
    // Connected again: video resumes from a key frame.
    let out = h.report(
        alice_key.clone(),
        MediaFact::PeerConnected {
            connection: MediaConnection::Publish,
        },
    );
    assert_eq!(
        actions_for(&out, &alice_key),
        [MediaAction::RequestKeyframe {
            source: TrackSource::Camera
        }]
    );
    // The grace period passes: nothing ends.
    let out = h.wait(GRACE);
    assert!(out.is_empty(), "{out:?}");
    // A later connect (not after a failure) asks for nothing.
    let out = h.report(
        alice_key,
        MediaFact::PeerConnected {
            connection: MediaConnection::Publish,
        },
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_publishing_connection_not_back_in_time_ends_its_publications_for_network() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let alice_key = h.key(alice);
    h.report(
        alice_key.clone(),
        MediaFact::PeerFailed {
            connection: MediaConnection::Publish,
        },
    );
    assert!(h.wait(GRACE - 1).is_empty());
    // A second failure report (an ICE restart that failed too) keeps the first deadline.
    h.report(
        alice_key.clone(),
        MediaFact::PeerFailed {
            connection: MediaConnection::Publish,
        },
    );
    let out = h.wait(1);
    let unpublished = frames_to(&out, bob)
        .into_iter()
        .find(|f| matches!(f, ServerFrame::TrackUnpublished { .. }));
    assert!(
        matches!(
            unpublished,
            Some(ServerFrame::TrackUnpublished {
                reason: Reason::Network,
                ..
            })
        ),
        "the room hears the camera is gone, and why: {out:?}"
    );
    assert!(frames_to(&out, alice).iter().any(|f| matches!(
        f,
        ServerFrame::MediaLost {
            connection: MediaConnection::Publish,
            ..
        }
    )));
    assert!(actions_for(&out, &alice_key).contains(&MediaAction::ClosePublishing));
    // Publishing again starts over: the camera is a new publication.
    let out = h.publish(alice, TrackSource::Camera);
    assert!(
        frames_to(&out, bob)
            .iter()
            .any(|f| matches!(f, ServerFrame::TrackPublished { .. })),
        "{out:?}"
    );
}

#[test]
fn a_failed_receiving_connection_is_offered_again_with_an_ice_restart() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let bob_key = h.key(bob);
    // Bob's first offer is open (being made): the restart waits for it.
    let out = h.report(
        bob_key.clone(),
        MediaFact::PeerFailed {
            connection: MediaConnection::Subscribe,
        },
    );
    assert_eq!(
        frames_to(&out, bob),
        [interrupted(MediaConnection::Subscribe)]
    );
    assert!(actions_for(&out, &bob_key).is_empty(), "{out:?}");
    let out = h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 1,
            result: Ok("v=0\r\n".into()),
        },
    );
    assert_eq!(
        frames_to(&out, bob),
        [ServerFrame::SubscribeOffer {
            negotiation: 1,
            sdp: "v=0\r\n".into()
        }]
    );
    let op = h.op();
    h.frame(
        bob,
        ClientFrame::SubscribeAnswer {
            op,
            negotiation: 1,
            sdp: "v=0\r\n".into(),
        },
    );
    let out = h.report(
        bob_key.clone(),
        MediaFact::AnswerApplied {
            op,
            negotiation: 1,
            result: Ok(()),
        },
    );
    assert!(
        actions_for(&out, &bob_key).contains(&MediaAction::CreateOffer {
            negotiation: 2,
            ice_restart: true
        }),
        "{out:?}"
    );
    // Bob says his side failed again while offer 2 is open: offer 3 restarts once more.
    h.frame(
        bob,
        ClientFrame::MediaInterrupted {
            connection: MediaConnection::Subscribe,
        },
    );
    let out = h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 2,
            result: Err("no".into()),
        },
    );
    assert!(
        actions_for(&out, &bob_key).contains(&MediaAction::CreateOffer {
            negotiation: 3,
            ice_restart: true
        }),
        "{out:?}"
    );
    // Never back: the connection is closed and what it carried offered on a new one.
    let out = h.wait(GRACE);
    let actions = actions_for(&out, &bob_key);
    assert_eq!(
        actions.first(),
        Some(&MediaAction::CloseReceiving),
        "{out:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, MediaAction::AddLeg { .. })),
        "{out:?}"
    );
    assert!(frames_to(&out, bob).iter().any(|f| matches!(
        f,
        ServerFrame::MediaLost {
            connection: MediaConnection::Subscribe,
            ..
        }
    )));
    assert!(frames_to(&out, alice).is_empty(), "{out:?}");
}

#[test]
fn a_member_who_leaves_while_interrupted_ends_nothing_twice() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let alice_key = h.key(alice);
    h.report(
        alice_key,
        MediaFact::PeerFailed {
            connection: MediaConnection::Publish,
        },
    );
    let op = h.op();
    let out = h.frame(alice, ClientFrame::Leave { op });
    let unpublished: Vec<_> = frames_to(&out, bob)
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::TrackUnpublished { .. }))
        .collect();
    assert!(
        matches!(
            &unpublished[..],
            [ServerFrame::TrackUnpublished {
                reason: Reason::Quit,
                ..
            }]
        ),
        "{unpublished:?}"
    );
    assert!(h.wait(GRACE).is_empty(), "the deadline finds nobody");
}

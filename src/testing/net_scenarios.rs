//! Scenarios of net status over the sans-IO core with exact outputs: the media shell reports
//! each member's link once a second; every member (the one measured included) hears its
//! status change as a participant update, after three worse samples or four better ones and
//! never twice within two seconds; a live publisher gone silent, or a member whose signaling is
//! lost, is disconnected at once.

use crate::model::{ConnectionState, NetStatus, TrackSource};
use crate::protocol::ServerFrame;
use crate::server::hub::io::{MediaFact, MediaKey};
use crate::server::hub::net_status::{LinkSample, Loss};
use crate::server::hub::{ConnId, Output};

use super::scenarios::{Harness, frames_to, updates_to};

/// The net statuses told to `conn` among `out`: whose, what, and whether the connection
/// changed with it.
fn nets_to(out: &[Output], conn: ConnId) -> Vec<(String, NetStatus, bool)> {
    updates_to(out, conn, |c| c.net)
        .into_iter()
        .map(|(p, c)| (p.user_id.to_string(), p.net, c.connection))
        .collect()
}

/// A second of `key`'s media with `permille` of its 100 packets lost.
fn second(h: &mut Harness, key: &MediaKey, permille: u64) -> Vec<Output> {
    h.wait(1_000);
    let lost = permille / 10;
    h.report(
        key.clone(),
        MediaFact::LinkMeasured(LinkSample {
            up: Loss {
                expected: 100,
                lost,
            },
            arrived: Some(100 - lost),
            ..LinkSample::default()
        }),
    )
}

#[test]
fn every_member_hears_a_lossy_member_go_bad_and_come_back_without_flapping() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    let key = h.key(alice);
    h.publish(alice, TrackSource::Microphone);
    // Clean: nothing to tell (everyone starts very good).
    for _ in 0..5 {
        assert!(nets_to(&second(&mut h, &key, 0), bob).is_empty());
    }
    // 20 % lost (10 % over its first second and the clean one before): the third such second
    // tells both members, alice too, the best of the three.
    assert!(nets_to(&second(&mut h, &key, 200), bob).is_empty());
    assert!(nets_to(&second(&mut h, &key, 200), bob).is_empty());
    let out = second(&mut h, &key, 200);
    let bad = vec![("alice".to_owned(), NetStatus::Bad, false)];
    assert_eq!(nets_to(&out, bob), bad);
    assert_eq!(nets_to(&out, alice), bad);
    // One good second among bad ones moves nothing (it counts with its neighbours).
    for permille in [200, 0, 200, 200] {
        assert!(nets_to(&second(&mut h, &key, permille), bob).is_empty());
    }
    // Clean again: the first clean second still counts the bad one before it; four more and
    // it is very good again.
    for _ in 0..4 {
        assert!(nets_to(&second(&mut h, &key, 0), bob).is_empty());
    }
    assert_eq!(
        nets_to(&second(&mut h, &key, 0), bob),
        [("alice".to_owned(), NetStatus::VeryGood, false)]
    );
}

#[test]
fn a_silent_publisher_and_a_lost_connection_are_disconnected_at_once() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    let key = h.key(alice);
    h.publish(alice, TrackSource::Camera);
    second(&mut h, &key, 0);
    let silent = LinkSample {
        arrived: Some(0),
        ..LinkSample::default()
    };
    h.wait(1_000);
    assert!(nets_to(&h.report(key.clone(), MediaFact::LinkMeasured(silent)), bob).is_empty());
    h.wait(1_000);
    let out = h.report(key.clone(), MediaFact::LinkMeasured(silent));
    assert_eq!(
        nets_to(&out, bob),
        [("alice".to_owned(), NetStatus::Disconnected, false)]
    );
    // Heard again: at once, whatever was lost meanwhile.
    assert_eq!(
        nets_to(&second(&mut h, &key, 900), bob),
        [("alice".to_owned(), NetStatus::VeryGood, false)]
    );
    // Bob's signaling is lost: one update, his connection and his net status together.
    let out = h.lose(bob);
    assert_eq!(
        nets_to(&out, alice),
        [("bob".to_owned(), NetStatus::Disconnected, true)]
    );
    let told = frames_to(&out, alice);
    assert!(matches!(
        &told[..],
        [ServerFrame::ParticipantUpdated { participant, .. }]
            if participant.connection == ConnectionState::Reconnecting
    ));
}

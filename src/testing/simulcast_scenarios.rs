//! Scenarios of simulcast over the sans-IO core with exact outputs: a publisher's layers come
//! from its offer, their sizes from the media shell's reports, and each receiver's leg is told
//! the largest layer that fits what it asked for.

use crate::model::{OperationId, TrackSource, VideoSize};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame};
use crate::server::hub::io::{MediaAction, MediaFact};
use crate::server::hub::{ConnId, Output};

use super::scenarios::{Harness, actions_for, commands, frames_to, only_refusal};

/// A camera offer sending three simulcast streams, listed smallest first.
fn simulcast_offer() -> String {
    let sdp = super::sim_media::publish_offer(&[TrackSource::Camera].into_iter().collect());
    format!("{sdp}a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n")
}

/// `conn` publishes its camera with three layers; returns the arrival's outputs.
fn publish_simulcast(h: &mut Harness, conn: ConnId) -> Vec<Output> {
    let op = h.op();
    let out = h.frame(
        conn,
        ClientFrame::PublishOffer {
            op,
            sdp: simulcast_offer(),
            source: Some(TrackSource::Camera),
        },
    );
    let rids = vec!["q".to_owned(), "h".to_owned(), "f".to_owned()];
    assert_eq!(
        actions_for(&out, &h.key(conn)),
        [MediaAction::AnswerPublish {
            op,
            sdp: simulcast_offer(),
            rids: [(TrackSource::Camera, rids)].into_iter().collect(),
            levels: Default::default(),
        }]
    );
    let key = h.key(conn);
    h.report(
        key.clone(),
        MediaFact::PublishAnswered {
            op,
            result: Ok("v=0\r\n".into()),
        },
    );
    h.report(
        key,
        MediaFact::TrackArrived {
            track_id: "camera".into(),
        },
    )
}

fn request(h: &mut Harness, conn: ConnId, id: &str, size: VideoSize) -> (OperationId, Vec<Output>) {
    let op = h.op();
    let out = h.frame(
        conn,
        ClientFrame::RequestVideo {
            op,
            publication: id.into(),
            width: size.width,
            height: size.height,
        },
    );
    (op, out)
}

fn set_layer(layer: u8) -> MediaAction {
    MediaAction::SetLayer {
        publication: "alice/camera".into(),
        layer,
    }
}

#[test]
fn each_receiver_gets_the_largest_layer_that_fits_its_request() {
    let mut h = Harness::new();
    let [alice, bob, carol] = h.members("r", ["alice", "bob", "carol"]);
    let (alice_key, bob_key, carol_key) = (h.key(alice), h.key(bob), h.key(carol));
    // The legs start on the largest layer.
    let out = publish_simulcast(&mut h, alice);
    for key in [&bob_key, &carol_key] {
        assert!(matches!(
            &actions_for(&out, key)[..],
            [MediaAction::AddLeg { .. }, a, MediaAction::CreateOffer { .. }] if *a == set_layer(2)
        ));
    }
    // Bob asks for a tile before any size is known: nothing is known to fit, so his leg stays
    // where it is; the answer comes at once.
    let (op, out) = request(&mut h, bob, "alice/camera", VideoSize::MEDIUM);
    assert!(actions_for(&out, &bob_key).is_empty());
    assert!(frames_to(&out, bob).contains(&ServerFrame::Done { op, seq: None }));
    // The sizes arrive, largest first: bob moves up once the middle layer is known to fit;
    // carol (who asked nothing) stays on the largest, and is told nothing.
    let sizes = [(2, 1280, 720), (1, 640, 360), (0, 320, 180)];
    let mut told = Vec::new();
    for (layer, width, height) in sizes {
        let out = h.report(
            alice_key.clone(),
            MediaFact::LayerSize {
                source: TrackSource::Camera,
                layer,
                size: Some(VideoSize::new(width, height)),
            },
        );
        assert!(actions_for(&out, &carol_key).is_empty());
        told.extend(actions_for(&out, &bob_key));
    }
    assert_eq!(told, [set_layer(1)]);
    // The same size again changes nothing.
    let out = h.report(
        alice_key.clone(),
        MediaFact::LayerSize {
            source: TrackSource::Camera,
            layer: 1,
            size: Some(VideoSize::MEDIUM),
        },
    );
    assert!(commands(&out).is_empty());
    // Carol asks for a thumbnail, then for everything again.
    let (_, out) = request(&mut h, carol, "alice/camera", VideoSize::SMALL);
    assert_eq!(actions_for(&out, &carol_key), [set_layer(0)]);
    let (_, out) = request(&mut h, carol, "alice/camera", VideoSize::FULL);
    assert_eq!(actions_for(&out, &carol_key), [set_layer(2)]);
    // The encoder scales the middle layer down: bob's request still fits it.
    let report = |layer, size| MediaFact::LayerSize {
        source: TrackSource::Camera,
        layer,
        size,
    };
    let out = h.report(alice_key.clone(), report(1, Some(VideoSize::new(480, 270))));
    assert!(commands(&out).is_empty());
    // It stops: bob gets the smallest layer until it is back.
    let out = h.report(alice_key.clone(), report(1, None));
    assert_eq!(commands(&out).len(), 1);
    assert_eq!(actions_for(&out, &bob_key), [set_layer(0)]);
    let out = h.report(alice_key, report(1, Some(VideoSize::new(480, 270))));
    assert_eq!(actions_for(&out, &bob_key), [set_layer(1)]);
    // A paused leg keeps its request; resuming changes no layer.
    let op = h.op();
    h.frame(
        bob,
        ClientFrame::Unsubscribe {
            op,
            publication: "alice/camera".into(),
        },
    );
    let (_, out) = request(&mut h, bob, "alice/camera", VideoSize::LARGE);
    assert_eq!(actions_for(&out, &bob_key), [set_layer(2)]);
}

#[test]
fn requests_that_cannot_be_met_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    publish_simulcast(&mut h, alice);
    h.publish(alice, TrackSource::Microphone);
    for (conn, id, size) in [
        (bob, "alice/microphone", VideoSize::SMALL),
        (alice, "alice/camera", VideoSize::SMALL),
        (bob, "alice/camera", VideoSize::new(0, 180)),
        (
            bob,
            "alice/camera",
            VideoSize::new(320, VideoSize::MAX_SIDE + 1),
        ),
    ] {
        let (op, out) = request(&mut h, conn, id, size);
        assert_eq!(
            only_refusal(&out, conn, op),
            ErrorCode::InvalidParam,
            "{id} {size}"
        );
    }
    let (op, out) = request(&mut h, bob, "alice/screen", VideoSize::SMALL);
    assert_eq!(only_refusal(&out, bob, op), ErrorCode::NoSuchTrack);
}

#[test]
fn simulcast_the_server_does_not_forward_is_refused_before_the_shell() {
    let mut h = Harness::new();
    let [alice] = h.members("r", ["alice"]);
    let camera = super::sim_media::publish_offer(&[TrackSource::Camera].into_iter().collect());
    let microphone =
        super::sim_media::publish_offer(&[TrackSource::Microphone].into_iter().collect());
    let five: String = (0..5).map(|i| format!("a=rid:r{i} send\r\n")).collect();
    for sdp in [
        format!("{camera}{five}"),
        format!("{camera}a=rid:no.dots send\r\n"),
        format!("{microphone}a=rid:q send\r\n"),
    ] {
        let op = h.op();
        let out = h.frame(
            alice,
            ClientFrame::PublishOffer {
                op,
                sdp,
                source: None,
            },
        );
        assert_eq!(only_refusal(&out, alice, op), ErrorCode::InvalidParam);
    }
}

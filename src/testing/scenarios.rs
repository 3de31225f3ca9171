//! Scenarios over the sans-IO core with exact outputs: a request goes in, and the test names
//! every frame and media command that comes out (and so proves what does *not* happen without
//! waiting for it). No sockets, no runtime, no clock.

use crate::auth::Grants;
use crate::model::{MediaConnection, OperationId, Reason, Role, TrackSource};
use crate::protocol::{ClientFrame, ErrorCode, PROTOCOL_VERSION, ServerFrame};
use crate::server::hub::io::{
    ExtensionMap, LegStart, MediaAction, MediaCommand, MediaFact, MediaKey, MediaReport,
};
use crate::server::hub::{ConnId, Hub, Input, Output, testing};

/// The core and the connections the test made.
pub(super) struct Harness {
    hub: Hub,
    next_conn: ConnId,
    next_op: u64,
    /// The time inputs are given at.
    now: crate::server::hub::Millis,
}

impl Harness {
    pub(super) fn new() -> Self {
        Harness {
            hub: Hub::new(testing::config()),
            next_conn: 0,
            next_op: 100,
            now: 1_000,
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.hub.handle(self.now, input)
    }

    /// `ms` pass: whatever is due by then happens.
    pub(super) fn wait(&mut self, ms: crate::server::hub::Millis) -> Vec<Output> {
        self.now += ms;
        self.input(Input::Tick)
    }

    /// Logs `user` in with `grants`; returns its connection.
    pub(super) fn login_with(&mut self, user: &str, grants: Grants) -> ConnId {
        self.next_conn += 1;
        let conn = self.next_conn;
        let token = testing::token(user, grants);
        let out = self.frame(
            conn,
            ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                token,
            },
        );
        assert!(matches!(
            &out[..],
            [Output::Send {
                frame: ServerFrame::Welcome { .. },
                ..
            }]
        ));
        conn
    }

    pub(super) fn login(&mut self, user: &str) -> ConnId {
        self.login_with(user, Grants::all())
    }

    /// Logs `users` in and has them join `room`, in order.
    pub(super) fn members<const N: usize>(&mut self, room: &str, users: [&str; N]) -> [ConnId; N] {
        users.map(|user| {
            let conn = self.login(user);
            self.join(conn, room);
            conn
        })
    }

    pub(super) fn frame(&mut self, conn: ConnId, frame: ClientFrame) -> Vec<Output> {
        self.input(Input::Frame { conn, frame })
    }

    pub(super) fn op(&mut self) -> OperationId {
        self.next_op += 1;
        OperationId(self.next_op)
    }

    /// Joins `room` (auto-subscribing); returns the outputs.
    pub(super) fn join(&mut self, conn: ConnId, room: &str) -> Vec<Output> {
        let op = self.op();
        self.frame(conn, crate::server::hub::testing::join(room, op))
    }

    pub(super) fn key(&self, conn: ConnId) -> MediaKey {
        let media = self.hub.media_of(conn).expect("in a room");
        let room = self.hub.room_of(conn).expect("in a room");
        MediaKey { room, media }
    }

    /// `conn`'s transport is lost (a network error): the session waits for a resume.
    pub(super) fn lose(&mut self, conn: ConnId) -> Vec<Output> {
        self.input(Input::Disconnected {
            conn,
            reason: Reason::Network,
        })
    }

    pub(super) fn report(&mut self, from: MediaKey, fact: MediaFact) -> Vec<Output> {
        self.input(Input::Media(MediaReport { from, fact }))
    }

    /// `conn` publishes `source`: offer, answer, arrival. Returns the arrival's outputs.
    pub(super) fn publish(&mut self, conn: ConnId, source: TrackSource) -> Vec<Output> {
        self.publish_answered(conn, source, "v=0\r\n")
    }

    /// [`publish`](Self::publish), the shell answering the offer with `answer`.
    pub(super) fn publish_answered(
        &mut self,
        conn: ConnId,
        source: TrackSource,
        answer: &str,
    ) -> Vec<Output> {
        let op = self.op();
        let sdp = super::sim_media::publish_offer(&[source].into_iter().collect());
        let out = self.frame(
            conn,
            ClientFrame::PublishOffer {
                op,
                sdp,
                source: Some(source),
            },
        );
        assert!(matches!(
            &commands(&out)[..],
            [MediaCommand {
                action: MediaAction::AnswerPublish { .. },
                ..
            }]
        ));
        let key = self.key(conn);
        let answered = self.report(
            key.clone(),
            MediaFact::PublishAnswered {
                op,
                result: Ok(answer.into()),
            },
        );
        assert_eq!(
            frames_to(&answered, conn),
            [ServerFrame::PublishAnswer {
                op,
                sdp: answer.into()
            }]
        );
        self.report(
            key,
            MediaFact::TrackArrived {
                track_id: source.as_str().into(),
            },
        )
    }
}

/// The code of the one output there is: `conn`'s request `op` refused.
pub(super) fn only_refusal(outputs: &[Output], conn: ConnId, op: OperationId) -> ErrorCode {
    match outputs {
        [Output::Deliver { to, frame, .. }] if *to == conn => match &**frame {
            ServerFrame::Error {
                op: Some(got),
                code,
                ..
            } if *got == op => *code,
            other => panic!("expected only {op} of {conn} refused, got {other:?}"),
        },
        other => panic!("expected only {op} of {conn} refused, got {other:?}"),
    }
}

/// The participant updates `conn` receives whose changes `flagged` picks, in order.
pub(super) fn updates_to(
    outputs: &[Output],
    conn: ConnId,
    flagged: impl Fn(&crate::model::ParticipantChanges) -> bool,
) -> Vec<(crate::model::Participant, crate::model::ParticipantChanges)> {
    frames_to(outputs, conn)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::ParticipantUpdated {
                participant,
                changes,
                ..
            } if flagged(&changes) => Some((participant, changes)),
            _ => None,
        })
        .collect()
}

/// The frames `conn` receives, in order.
pub(super) fn frames_to(outputs: &[Output], conn: ConnId) -> Vec<ServerFrame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, frame } if *to == conn => Some(frame.clone()),
            Output::Broadcast { to, frame } if to.contains(&conn) => Some((**frame).clone()),
            Output::Deliver { to, frame, .. } if *to == conn => Some((**frame).clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn commands(outputs: &[Output]) -> Vec<MediaCommand> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Media(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn actions_for(outputs: &[Output], key: &MediaKey) -> Vec<MediaAction> {
    commands(outputs)
        .into_iter()
        .filter(|c| &c.to == key)
        .map(|c| c.action)
        .collect()
}

#[test]
fn a_kick_needs_a_host_and_a_refusal_changes_nothing() {
    let mut h = Harness::new();
    let [_alice, bob] = h.members("r", ["alice", "bob"]);
    let op = h.op();
    let out = h.frame(
        bob,
        ClientFrame::Kick {
            op,
            user_id: "alice".into(),
            ban: None,
        },
    );
    assert_eq!(only_refusal(&out, bob, op), ErrorCode::PermissionDenied);
}

#[test]
fn the_longest_present_member_becomes_host_when_the_host_leaves() {
    let mut h = Harness::new();
    let alice = h.login("alice");
    let bob = h.login("bob");
    let carol = h.login("carol");
    h.join(alice, "r");
    h.join(bob, "r");
    h.join(carol, "r");
    let op = h.op();
    let out = h.frame(alice, ClientFrame::Leave { op });
    let to_carol = frames_to(&out, carol);
    match &to_carol[..] {
        [
            ServerFrame::ParticipantLeft {
                participant: left,
                reason: Reason::Quit,
                ..
            },
            ServerFrame::ParticipantUpdated {
                participant,
                changes,
                ..
            },
        ] => {
            assert_eq!(left.user_id.as_str(), "alice");
            assert_eq!(participant.user_id.as_str(), "bob");
            assert_eq!(participant.role, Role::Host);
            assert!(changes.role);
        }
        other => panic!("carol: {other:?}"),
    }
    assert_eq!(
        frames_to(&out, alice),
        [ServerFrame::Done { op, seq: None }]
    );
}

#[test]
fn a_second_screen_share_is_refused_at_its_offer() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Screen);
    let op = h.op();
    let sdp = super::sim_media::publish_offer(&[TrackSource::Screen].into_iter().collect());
    let out = h.frame(
        bob,
        ClientFrame::PublishOffer {
            op,
            sdp,
            source: Some(TrackSource::Screen),
        },
    );
    // Only the refusal: no media command, nothing to anyone else.
    assert_eq!(only_refusal(&out, bob, op), ErrorCode::ScreenShareBusy);
}

#[test]
fn publishing_needs_the_grant_and_is_checked_before_the_shell() {
    let mut h = Harness::new();
    let viewer = h.login_with(
        "viewer",
        Grants {
            publish: false,
            create: true,
            ..Grants::default()
        },
    );
    h.join(viewer, "r");
    let op = h.op();
    let sdp = super::sim_media::publish_offer(&[TrackSource::Camera].into_iter().collect());
    let out = h.frame(
        viewer,
        ClientFrame::PublishOffer {
            op,
            sdp,
            source: None,
        },
    );
    assert_eq!(only_refusal(&out, viewer, op), ErrorCode::MissingGrant);
}

#[test]
fn offers_are_numbered_one_open_at_a_time_and_made_again_after_the_answer() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    let bob_key = h.key(bob);
    // Alice's camera arrives: bob gets a leg and offer 1 is made.
    let out = h.publish(alice, TrackSource::Camera);
    let actions = actions_for(&out, &bob_key);
    assert!(matches!(
        &actions[..],
        [MediaAction::AddLeg { track_id, .. }, MediaAction::CreateOffer {
                negotiation: 1,
                ice_restart: false
            }]
            if track_id == "alice/camera#1"
    ));
    // Her microphone while offer 1 is open: a leg, no second offer.
    let out = h.publish(alice, TrackSource::Microphone);
    assert!(matches!(
        &actions_for(&out, &bob_key)[..],
        [MediaAction::AddLeg { track_id, .. }] if track_id == "alice/microphone#2"
    ));
    // The shell made offer 1: bob gets it.
    let offer = "v=0\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
                 a=msid:alice alice/camera#1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
    let out = h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 1,
            result: Ok(offer.into()),
        },
    );
    assert_eq!(
        frames_to(&out, bob),
        [ServerFrame::SubscribeOffer {
            negotiation: 1,
            sdp: offer.into()
        }]
    );
    // An answer to an offer that was never made is refused; so is a repeated report.
    let op = h.op();
    let out = h.frame(
        bob,
        ClientFrame::SubscribeAnswer {
            op,
            negotiation: 2,
            sdp: String::new(),
        },
    );
    assert!(matches!(
        &frames_to(&out, bob)[..],
        [ServerFrame::Error {
            code: ErrorCode::NoSuchOffer,
            ..
        }]
    ));
    // Bob answers offer 1 (PT 100 for VP8): the core reads the leg's payload type from it.
    let answer = "v=0\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:0\r\n\
                  a=recvonly\r\na=rtpmap:100 VP8/90000\r\n";
    let op = h.op();
    let out = h.frame(
        bob,
        ClientFrame::SubscribeAnswer {
            op,
            negotiation: 1,
            sdp: answer.into(),
        },
    );
    assert!(matches!(
        &actions_for(&out, &bob_key)[..],
        [MediaAction::ApplyAnswer { negotiation: 1, .. }]
    ));
    let out = h.report(
        bob_key.clone(),
        MediaFact::AnswerApplied {
            op,
            negotiation: 1,
            result: Ok(()),
        },
    );
    assert_eq!(frames_to(&out, bob), [ServerFrame::Done { op, seq: None }]);
    let alice_key = h.key(alice);
    assert_eq!(
        actions_for(&out, &bob_key),
        [
            MediaAction::StartLegs {
                legs: vec![LegStart {
                    publication: "alice/camera".into(),
                    payload_type: 100,
                    extensions: ExtensionMap::default(),
                }]
            },
            // The microphone came while offer 1 was open: offer 2 carries it.
            MediaAction::CreateOffer {
                negotiation: 2,
                ice_restart: false
            },
        ]
    );
    assert_eq!(
        actions_for(&out, &alice_key),
        [MediaAction::RequestKeyframe {
            source: TrackSource::Camera
        }]
    );
    // The same report again changes nothing.
    let out = h.report(
        bob_key,
        MediaFact::AnswerApplied {
            op,
            negotiation: 1,
            result: Ok(()),
        },
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn each_rooms_legs_copy_that_rooms_publication() {
    let mut h = Harness::new();
    let in_b = h.login("u1");
    let in_a = h.login("u1");
    h.join(in_b, "b");
    h.join(in_a, "a");
    h.publish(in_b, TrackSource::Camera);
    h.publish(in_a, TrackSource::Camera);
    let bob = h.login("bob");
    let out = h.join(bob, "b");
    let from = h.key(in_b).media;
    assert!(
        actions_for(&out, &h.key(bob))
            .iter()
            .any(|a| matches!(a, MediaAction::AddLeg { from: f, .. } if *f == from)),
        "bob's leg copies room b's camera"
    );
    assert!(
        !actions_for(&out, &h.key(bob))
            .iter()
            .any(|a| matches!(a, MediaAction::AddLeg { from: f, .. } if *f == h.key(in_a).media)),
        "and never room a's"
    );
}

#[test]
fn an_open_negotiation_is_answered_when_its_member_leaves() {
    let mut h = Harness::new();
    let alice = h.login("alice");
    h.join(alice, "r");
    let op = h.op();
    let sdp = super::sim_media::publish_offer(&[TrackSource::Camera].into_iter().collect());
    h.frame(
        alice,
        ClientFrame::PublishOffer {
            op,
            sdp,
            source: Some(TrackSource::Camera),
        },
    );
    let key = h.key(alice);
    let leave = h.op();
    let out = h.frame(alice, ClientFrame::Leave { op: leave });
    assert_eq!(
        frames_to(&out, alice),
        [
            ServerFrame::Error {
                op: Some(op),
                code: ErrorCode::NotInRoom,
                message: "left the room before the media negotiation finished".into(),
            },
            ServerFrame::Done {
                op: leave,
                seq: None
            },
        ]
    );
    assert_eq!(actions_for(&out, &key), [MediaAction::Teardown]);
}

#[test]
fn an_offer_the_shell_could_not_make_is_asked_for_again() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let bob_key = h.key(bob);
    let out = h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 1,
            result: Err("no peer connection".into()),
        },
    );
    assert!(matches!(
        &frames_to(&out, bob)[..],
        [ServerFrame::MediaFailed {
            connection: MediaConnection::Subscribe,
            ..
        }]
    ));
    assert_eq!(
        actions_for(&out, &bob_key),
        [MediaAction::CreateOffer {
            negotiation: 2,
            ice_restart: false
        }],
        "the leg is offered again"
    );
}

#[test]
fn the_servers_candidates_wait_for_the_first_answer() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    h.publish(alice, TrackSource::Camera);
    let bob_key = h.key(bob);
    let candidate = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host";
    let offer = format!(
        "v=0\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
         a=msid:alice alice/camera#1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na={candidate}\r\n"
    );
    let out = h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 1,
            result: Ok(offer),
        },
    );
    // The first offer goes without its candidates; one found later waits too.
    let [ServerFrame::SubscribeOffer { sdp, .. }] = &frames_to(&out, bob)[..] else {
        panic!("{out:?}")
    };
    assert!(!sdp.contains("candidate"), "{sdp}");
    let later = crate::protocol::IceCandidate {
        candidate: "candidate:2 1 udp 1 127.0.0.1 5001 typ host".into(),
        sdp_mid: None,
        sdp_mline_index: None,
        username_fragment: None,
    };
    let out = h.report(
        bob_key.clone(),
        MediaFact::LocalCandidate {
            connection: MediaConnection::Subscribe,
            candidate: later.clone(),
        },
    );
    assert!(out.is_empty(), "{out:?}");
    // Once bob's answer is applied (his credentials known), both go out, with the mid.
    let op = h.op();
    h.frame(
        bob,
        ClientFrame::SubscribeAnswer {
            op,
            negotiation: 1,
            sdp: "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"
                .into(),
        },
    );
    let out = h.report(
        bob_key,
        MediaFact::AnswerApplied {
            op,
            negotiation: 1,
            result: Ok(()),
        },
    );
    let sent: Vec<String> = frames_to(&out, bob)
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::IceCandidate {
                connection: MediaConnection::Subscribe,
                candidate,
            } => {
                assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
                Some(candidate.candidate)
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent, [candidate.to_owned(), later.candidate]);
}

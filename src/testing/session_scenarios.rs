//! Sessions over the sans-IO core with exact outputs: who may resume a session, what a
//! connection whose session was taken over may still do, and what the handshake timer leaves
//! alone.

use crate::auth::Grants;
use crate::model::{OperationId, Reason};
use crate::protocol::{ClientFrame, ErrorCode, PROTOCOL_VERSION, ServerFrame};
use crate::server::hub::{ConnId, Hub, Input, Output, testing};

fn token(user: &str) -> String {
    testing::token(user, Grants::all())
}

fn frame(hub: &mut Hub, conn: ConnId, frame: ClientFrame) -> Vec<Output> {
    hub.handle(1_000, Input::Frame { conn, frame })
}

/// Logs `user` in on `conn` and joins room "r"; returns the resume key.
fn member(hub: &mut Hub, conn: ConnId, user: &str) -> String {
    let out = frame(hub, conn, testing::hello(user));
    let Some(Output::Send {
        frame: ServerFrame::Welcome { resume_key, .. },
        ..
    }) = out.first()
    else {
        panic!("welcome: {out:?}");
    };
    let key = resume_key.clone();
    join_r(hub, conn);
    key
}

/// Joins room "r" on `conn`: the join's outputs.
fn join_r(hub: &mut Hub, conn: ConnId) -> Vec<Output> {
    frame(hub, conn, testing::join("r", OperationId(1)))
}

fn resume(hub: &mut Hub, conn: ConnId, user: &str, key: &str) -> Vec<Output> {
    let resume = ClientFrame::Resume {
        version: PROTOCOL_VERSION,
        token: token(user),
        resume_key: key.to_owned(),
        received: 1,
        room: Some("r".into()),
        seq: Some(1),
    };
    frame(hub, conn, resume)
}

/// The one frame sent to connection `to`.
fn only_to(out: &[Output], to: ConnId) -> ServerFrame {
    let frames: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { to: t, frame, .. } if *t == to => Some((**frame).clone()),
            Output::Send { to: t, frame } if *t == to => Some(frame.clone()),
            _ => None,
        })
        .collect();
    match &frames[..] {
        [one] => one.clone(),
        other => panic!("expected one frame to {to}, got {other:?}"),
    }
}

fn code(frame: &ServerFrame) -> ErrorCode {
    match frame {
        ServerFrame::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_resume_needs_the_sessions_key_and_a_token_of_its_user() {
    let mut hub = Hub::new(testing::config());
    let key = member(&mut hub, 1, "alice");
    member(&mut hub, 2, "bob");
    hub.handle(
        1_000,
        Input::Disconnected {
            conn: 1,
            reason: Reason::Network,
        },
    );
    let mut forged = key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for (conn, user, key) in [
        (10, "alice", forged.as_str()),
        (11, "alice", "1.00"),
        (12, "alice", "2"),
        (13, "bob", key.as_str()),
    ] {
        let out = resume(&mut hub, conn, user, key);
        assert_eq!(
            code(&only_to(&out, conn)),
            ErrorCode::UnknownSession,
            "{user} {key}"
        );
    }
    let out = resume(&mut hub, 14, "alice", &key);
    assert!(matches!(
        out.first(),
        Some(Output::Deliver { to: 14, frame, .. }) if matches!(**frame, ServerFrame::Resumed { .. })
    ));
}

#[test]
fn a_connection_whose_session_was_taken_over_cannot_act_for_it() {
    let mut hub = Hub::new(testing::config());
    let key = member(&mut hub, 1, "alice");
    // The server never noticed connection 1 fail; connection 2 resumes the session anyway.
    let out = resume(&mut hub, 2, "alice", &key);
    assert!(out.contains(&Output::Close {
        conn: 1,
        reason: Reason::Replaced
    }));
    let message = ClientFrame::SendMessage {
        op: OperationId(7),
        to: None,
        content_type: "t".into(),
        content: "x".into(),
    };
    let out = frame(&mut hub, 1, message.clone());
    assert_eq!(code(&only_to(&out, 1)), ErrorCode::NotLoggedIn);
    let out = frame(&mut hub, 1, testing::hello("alice"));
    assert_eq!(code(&only_to(&out, 1)), ErrorCode::AlreadyLoggedIn);
    // The session, on its new connection, is untouched.
    let out = frame(&mut hub, 2, message);
    assert!(matches!(only_to(&out, 2), ServerFrame::Done { .. }));
    assert_eq!(hub.room(&"r".into()).unwrap().participants().len(), 1);
}

#[test]
fn a_resumed_connection_outlives_the_handshake_timer() {
    let mut hub = Hub::new(testing::config());
    let key = member(&mut hub, 1, "alice");
    resume(&mut hub, 2, "alice", &key);
    assert!(
        hub.handle(1_000, Input::HandshakeTimeout { conn: 2 })
            .is_empty()
    );
    assert!(
        hub.handle(1_000, Input::HandshakeTimeout { conn: 9 })
            .contains(&Output::Close {
                conn: 9,
                reason: Reason::Timeout
            })
    );
}

/// Logs `user` in on `conn` with `grants` and joins room "r": the join's outputs.
fn member_with(hub: &mut Hub, conn: ConnId, user: &str, grants: Grants) -> Vec<Output> {
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        token: testing::token(user, grants),
    };
    frame(hub, conn, hello);
    join_r(hub, conn)
}

#[test]
fn a_user_back_on_a_new_session_takes_its_own_seat_without_the_create_grant() {
    let mut hub = Hub::new(testing::config());
    member(&mut hub, 1, "hana");
    member_with(&mut hub, 2, "gus", Grants::default());
    frame(&mut hub, 1, ClientFrame::Leave { op: OperationId(2) });
    // Gus, alone in the room, loses his connection; his seat waits for him.
    hub.handle(
        1_000,
        Input::Disconnected {
            conn: 2,
            reason: Reason::Network,
        },
    );
    // Back on a new session (not a resume), he takes it though he may not make rooms.
    let out = member_with(&mut hub, 3, "gus", Grants::default());
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Deliver { to: 3, frame, .. } if matches!(**frame, ServerFrame::Joined { .. })
        )),
        "{out:?}"
    );
    assert_eq!(hub.room(&"r".into()).unwrap().participants().len(), 1);
}

#[test]
fn a_revoke_answers_its_sender_before_its_own_session_ends() {
    let mut hub = Hub::new(testing::config());
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        token: testing::token("ops", Grants::none().admin(true)),
    };
    frame(&mut hub, 1, hello);
    let revoke = ClientFrame::Revoke {
        op: OperationId(5),
        jti: None,
        user_id: Some("ops".into()),
        issued_before: Some(10),
    };
    let out = frame(&mut hub, 1, revoke);
    let done = out.iter().position(|o| {
        matches!(o, Output::Deliver { to: 1, frame, .. }
            if matches!(**frame, ServerFrame::Done { op: OperationId(5), .. }))
    });
    let close = out.iter().position(|o| {
        matches!(
            o,
            Output::Close {
                conn: 1,
                reason: Reason::TokenRevoked
            }
        )
    });
    assert!(done.is_some() && close.is_some() && done < close, "{out:?}");
}

/// The per-user limit counts connections: sessions waiting for their resume make room (the
/// oldest lost one ends, its room hears it leave) for a user whose network flaps; only a user
/// whose sessions are all connected is refused.
#[test]
fn lost_sessions_make_room_for_a_users_new_connection() {
    let mut hub = Hub::new(testing::config());
    let first_key = member(&mut hub, 1, "alice");
    member(&mut hub, 100, "bob");
    for conn in 2..=8 {
        frame(&mut hub, conn, testing::hello("alice"));
    }
    let out = frame(&mut hub, 9, testing::hello("alice"));
    assert_eq!(code(&only_to(&out, 9)), ErrorCode::TooManyConnections);

    // Alice's first connection (in room r) and second are lost: two sessions wait.
    for conn in [1, 2] {
        hub.handle(
            1_000,
            Input::Disconnected {
                conn,
                reason: Reason::Network,
            },
        );
    }
    // A new connection ends the oldest lost session: Bob hears Alice leave, for `network`.
    let out = frame(&mut hub, 10, testing::hello("alice"));
    assert!(matches!(only_to(&out, 10), ServerFrame::Welcome { .. }));
    let left: Vec<_> = crate::testing::scenarios::frames_to(&out, 100)
        .into_iter()
        .filter_map(|frame| match frame {
            ServerFrame::ParticipantLeft {
                participant,
                reason,
                ..
            } => Some((participant.user_id.to_string(), reason)),
            _ => None,
        })
        .collect();
    assert_eq!(left, [("alice".to_owned(), Reason::Network)]);
    assert_eq!(
        code(&only_to(&resume(&mut hub, 11, "alice", &first_key), 11)),
        ErrorCode::UnknownSession
    );
    // The other lost one makes room once more; then all eight are connected again.
    let out = frame(&mut hub, 12, testing::hello("alice"));
    assert!(matches!(only_to(&out, 12), ServerFrame::Welcome { .. }));
    let out = frame(&mut hub, 13, testing::hello("alice"));
    assert_eq!(code(&only_to(&out, 13)), ErrorCode::TooManyConnections);
}

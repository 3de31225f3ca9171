//! Join, leave, end of call, lost connections.

use jrtc::model::valid_id;
use jrtc::{CallEvent, ErrorCode, JoinOptions, OperationKind, ParticipantEvent, Reason, Role};

use crate::support::{User, done, room_of, server, token};

#[tokio::test]
async fn three_users_join_and_each_sees_the_right_things() {
    let server = server().await;
    let mut alice = User::connect(&server, "alice").await;
    let mut bob = User::connect(&server, "bob").await;
    let mut carol = User::connect(&server, "carol").await;

    let a = alice.join("standup").await;
    assert_eq!((a.room.as_str(), a.seq), ("standup", 1));
    assert_eq!(a.participants.len(), 1);
    assert_eq!(a.participants[0].role, Role::Host, "the first member hosts");

    let b = bob.join("standup").await;
    assert_eq!(b.seq, 2);
    let ids: Vec<_> = b.participants.iter().map(|p| p.user_id.as_str()).collect();
    assert_eq!(
        ids,
        ["alice", "bob"],
        "the snapshot holds everyone already there"
    );
    assert_eq!(b.participant("bob").unwrap().role, Role::Guest);
    assert_eq!(b.participant("bob").unwrap().display_name, "BOB");

    let c = carol.join("standup").await;
    assert_eq!(c.seq, 3);
    assert_eq!(c.participants.len(), 3);

    // Alice saw bob then carol arrive; bob saw carol; carol saw no one arrive (all in her snapshot).
    for (seq, who) in [(2, "bob"), (3, "carol")] {
        match alice.next().await {
            CallEvent::Participant(ParticipantEvent::Joined {
                seq: s,
                participant,
                room,
            }) => {
                assert_eq!(
                    (s, participant.user_id.as_str(), room.as_str()),
                    (seq, who, "standup")
                );
            }
            other => panic!("{other:?}"),
        }
    }
    match bob.next().await {
        CallEvent::Participant(ParticipantEvent::Joined {
            seq: 3,
            participant,
            ..
        }) => {
            assert_eq!(participant.user_id, "carol")
        }
        other => panic!("{other:?}"),
    }
    carol.assert_quiet().await;
    alice.assert_quiet().await;
    assert_eq!(carol.call.room().unwrap().participants.len(), 3);
}

#[tokio::test]
async fn the_server_names_a_room_joined_without_an_id() {
    let server = server().await;
    let mut alice = User::connect(&server, "alice").await;
    let op = alice.call.join_new(JoinOptions::default()).await.unwrap();
    let room = match alice.next().await {
        CallEvent::Joined {
            op: got,
            result: Ok(s),
        } if got == op => s.room,
        other => panic!("{other:?}"),
    };
    assert!(
        valid_id(room.as_str()),
        "a server-made id follows the id rules: {room}"
    );
    let mut bob = User::connect(&server, "bob").await;
    let snap = bob.join(room.as_str()).await;
    assert_eq!(snap.participants.len(), 2);
}

#[tokio::test]
async fn joining_twice_is_refused_and_changes_nothing() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[1]
        .call
        .join("other", JoinOptions::default())
        .await
        .unwrap();
    match users[1].next().await {
        CallEvent::Joined {
            op: got,
            result: Err(e),
        } => {
            assert_eq!(got, op);
            assert_eq!(e.code, ErrorCode::AlreadyJoined);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(users[1].call.room().unwrap().room, "r");
    assert_eq!(server.room_count(), 1, "the refused join made no room");
    users[0].assert_quiet().await;
    users[2].assert_quiet().await;
}

#[tokio::test]
async fn one_user_on_two_connections_is_in_a_room_once() {
    let server = server().await;
    let mut first = User::connect(&server, "dana").await;
    let mut second = User::connect(&server, "dana").await;
    first.join("r").await;
    let op = second.call.join("r", JoinOptions::default()).await.unwrap();
    match second.next().await {
        CallEvent::Joined {
            op: got,
            result: Err(e),
        } if got == op => {
            assert_eq!(e.code, ErrorCode::DuplicateUser)
        }
        other => panic!("{other:?}"),
    }
    // The second device can still be elsewhere.
    second.join("elsewhere").await;
}

#[tokio::test]
async fn leaving_tells_the_others_and_the_leaver() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[2].call.leave().await.unwrap();
    match users[2].next().await {
        CallEvent::Left {
            room,
            reason: Reason::Quit,
            op: Some(got),
        } => {
            assert_eq!((room.as_str(), got), ("r", op))
        }
        other => panic!("{other:?}"),
    }
    assert!(users[2].call.room().is_none());
    for u in &mut users[..2] {
        match u.next().await {
            CallEvent::Participant(ParticipantEvent::Left {
                participant,
                reason: Reason::Quit,
                seq: 4,
                ..
            }) => {
                assert_eq!(participant.user_id, "carol")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(u.call.room().unwrap().participants.len(), 2);
    }
    // Out of the room, room requests are refused with NotInRoom.
    let op = users[2].call.leave().await.unwrap();
    match users[2].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::Leave,
            result: Err(e),
        } if got == op => {
            assert_eq!(e.code, ErrorCode::NotInRoom)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_leaving_host_hands_the_room_to_the_longest_present_member() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    done(&users[0].call, users[0].call.leave().await.unwrap()).await;
    for u in &mut users[1..] {
        assert!(matches!(
            u.next().await,
            CallEvent::Participant(ParticipantEvent::Left { .. })
        ));
        match u.next().await {
            CallEvent::Participant(ParticipantEvent::Updated {
                participant,
                changes,
                seq: 5,
                ..
            }) => {
                assert_eq!(participant.user_id, "bob");
                assert_eq!(participant.role, Role::Host);
                assert!(changes.role && !changes.audio);
            }
            other => panic!("{other:?}"),
        }
    }
    // Bob can now do what hosts do.
    done(&users[1].call, users[1].call.kick("carol").await.unwrap()).await;
}

#[tokio::test]
async fn ending_the_call_puts_everyone_out_with_reason_over() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;

    // A guest may not end the call.
    let op = users[1].call.end().await.unwrap();
    match users[1].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::End,
            result: Err(e),
        } if got == op => {
            assert_eq!(e.code, ErrorCode::PermissionDenied)
        }
        other => panic!("{other:?}"),
    }

    let op = users[0].call.end().await.unwrap();
    for u in &mut users {
        match u.next().await {
            CallEvent::Left {
                room,
                reason: Reason::Over,
                op: None,
            } => assert_eq!(room, "r"),
            other => panic!("{other:?}"),
        }
        assert!(u.call.room().is_none());
    }
    match users[0].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::End,
            result: Ok(()),
        } => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.room_count(), 0);
    // Everyone can join again: the room starts afresh.
    let snap = users[2].join("r").await;
    assert_eq!((snap.seq, snap.participants[0].role), (1, Role::Host));
}

#[tokio::test]
async fn closing_is_quit_and_a_lost_connection_is_network() {
    let server = crate::support::builder()
        .grace_period(std::time::Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let proxy = jrtc_testkit::proxy::Proxy::start(server.local_addr()).await;
    let mut carol = User::connect_once(&proxy.url(), token(&server, "carol")).await;
    carol.join("r").await;
    for u in &mut users {
        assert!(matches!(
            u.next().await,
            CallEvent::Participant(ParticipantEvent::Joined { .. })
        ));
    }

    users[1].call.close().await;
    assert_eq!(
        users[0].participant_left().await,
        ("bob".into(), Reason::Quit)
    );

    assert_eq!(carol.participant_left().await, ("bob".into(), Reason::Quit));
    proxy.cut(jrtc_testkit::proxy::Cut::Reset);
    // Her seat is kept for the grace period, and the room sees it; then she is gone.
    assert_eq!(
        users[0].connection_of().await,
        ("carol".into(), jrtc::ConnectionState::Reconnecting)
    );
    assert_eq!(
        users[0].participant_left().await,
        ("carol".into(), Reason::Network)
    );
    match carol.next().await {
        CallEvent::Left {
            reason: Reason::Network,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    match carol.next().await {
        CallEvent::Closed {
            reason: Reason::Network,
        } => {}
        other => panic!("{other:?}"),
    }
}

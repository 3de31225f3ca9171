//! Kicks, roles and participant updates.

use jrtc::{
    CallEvent, ErrorCode, OperationKind, ParticipantEvent, ParticipantUpdate, Reason, Role,
};

use crate::support::{done, refused, room_of, server};

#[tokio::test]
async fn a_host_kicks_a_guest_and_everyone_hears_of_it() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[0].call.kick("bob").await.unwrap();

    // The operator: the departure, then the kick's result with its op id.
    match users[0].next().await {
        CallEvent::Participant(ParticipantEvent::Left {
            participant,
            reason: Reason::Kicked,
            seq: 4,
            ..
        }) => {
            assert_eq!(participant.user_id, "bob")
        }
        other => panic!("{other:?}"),
    }
    match users[0].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::Kick,
            result: Ok(()),
        } => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    // The kicked: out, with reason Kicked.
    match users[1].next().await {
        CallEvent::Left {
            room,
            reason: Reason::Kicked,
            op: None,
        } => assert_eq!(room, "r"),
        other => panic!("{other:?}"),
    }
    assert!(users[1].call.room().is_none());
    // The bystander.
    match users[2].next().await {
        CallEvent::Participant(ParticipantEvent::Left {
            participant,
            reason: Reason::Kicked,
            ..
        }) => {
            assert_eq!(participant.user_id, "bob")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(users[2].call.room().unwrap().participants.len(), 2);
    // A kicked user may come back.
    users[1].join("r").await;
}

#[tokio::test]
async fn kicking_needs_the_host_role_and_a_member() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[1].call.kick("carol").await.unwrap();
    match users[1].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::Kick,
            result: Err(e),
        } if got == op => {
            assert_eq!(e.code, ErrorCode::PermissionDenied)
        }
        other => panic!("{other:?}"),
    }
    let op = users[0].call.kick("zed").await.unwrap();
    match users[0].next().await {
        CallEvent::Completed {
            op: got,
            result: Err(e),
            ..
        } if got == op => {
            assert_eq!(e.code, ErrorCode::NoSuchParticipant)
        }
        other => panic!("{other:?}"),
    }
    for u in &mut users {
        u.assert_quiet().await;
        assert_eq!(u.call.room().unwrap().participants.len(), 3);
    }
}

#[tokio::test]
async fn participant_updates_carry_changed_flags() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let update = ParticipantUpdate {
        audio: Some(true),
        display_name: Some("Robert".into()),
        video: Some(false), // unchanged: was already off
        ..Default::default()
    };
    let op = users[1].call.update(update).await.unwrap();
    for u in &mut users {
        match u.next().await {
            CallEvent::Participant(ParticipantEvent::Updated {
                participant,
                changes,
                seq: 4,
                ..
            }) => {
                assert_eq!(participant.user_id, "bob");
                assert!(participant.audio);
                assert_eq!(participant.display_name, "Robert");
                assert!(changes.audio && changes.display_name);
                assert!(!changes.video && !changes.role && !changes.state);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            u.call
                .room()
                .unwrap()
                .participant("bob")
                .unwrap()
                .display_name,
            "Robert"
        );
    }
    match users[1].next().await {
        CallEvent::Completed {
            op: got,
            kind: OperationKind::Update,
            result: Ok(()),
        } => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    // An update that changes nothing succeeds quietly.
    let op = users[1]
        .call
        .update(ParticipantUpdate {
            audio: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    done(&users[1].call, op).await;
    users[0].assert_quiet().await;
    // Custom state.
    let op = users[2]
        .call
        .update(ParticipantUpdate {
            state: Some("away".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    done(&users[2].call, op).await;
    match users[0].next().await {
        CallEvent::Participant(ParticipantEvent::Updated {
            participant,
            changes,
            ..
        }) => {
            assert_eq!(participant.state, "away");
            assert!(changes.state && !changes.audio);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_host_hands_out_roles_and_a_room_keeps_one_host() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[0].call.set_role("carol", Role::Host).await.unwrap();
    for u in &mut users {
        match u.next().await {
            CallEvent::Participant(ParticipantEvent::Updated {
                participant,
                changes,
                ..
            }) => {
                assert_eq!(
                    (participant.user_id.as_str(), participant.role),
                    ("carol", Role::Host)
                );
                assert!(changes.role);
            }
            other => panic!("{other:?}"),
        }
    }
    done(&users[0].call, op).await;
    // Carol, now a host, may kick; bob, a guest, may not hand out roles.
    let op = users[1].call.set_role("bob", Role::Host).await.unwrap();
    match users[1].next().await {
        CallEvent::Completed {
            op: got,
            result: Err(e),
            ..
        } if got == op => {
            assert_eq!(e.code, ErrorCode::PermissionDenied)
        }
        other => panic!("{other:?}"),
    }
    // Two hosts: one may step down; the last one may not.
    done(
        &users[0].call,
        users[0].call.set_role("alice", Role::Guest).await.unwrap(),
    )
    .await;
    let op = users[2].call.set_role("carol", Role::Guest).await.unwrap();
    assert_eq!(refused(&users[2].call, op).await, ErrorCode::InvalidParam);
    done(&users[2].call, users[2].call.kick("bob").await.unwrap()).await;
}

//! Invitations end to end: real clients, a real server, both sides' events.

use std::time::Duration;

use jrtc::{
    CallEvent, ErrorCode, Invitation, InviteEvent, InviteOptions, InviteReport, Outcome,
    ParticipantEvent, Reason, Rejection,
};

use crate::support::{User, done, refused, room_of, server};

/// The next invitation event, skipping the others.
async fn invite_event(u: &mut User) -> InviteEvent {
    loop {
        if let CallEvent::Invite(ev) = u.next().await {
            return ev;
        }
    }
}

/// The next invitation received, skipping the results of the user's own (awaited) requests.
async fn received(u: &mut User) -> Invitation {
    loop {
        match invite_event(u).await {
            InviteEvent::Received(inv) => return inv,
            InviteEvent::AcceptResult { .. } | InviteEvent::RejectResult { .. } => {}
            other => panic!(
                "{}: expected an invitation, got {other:?}",
                u.call.user_id()
            ),
        }
    }
}

async fn report(u: &mut User, op: jrtc::OperationId) -> InviteReport {
    match invite_event(u).await {
        InviteEvent::Sent {
            op: got,
            result: Ok(report),
        } if got == op => report,
        other => panic!("expected the report of {op}, got {other:?}"),
    }
}

async fn invite(u: &mut User, callees: &[&str]) -> InviteReport {
    let op = u
        .call
        .invite(callees, InviteOptions::default())
        .await
        .unwrap();
    report(u, op).await
}

#[tokio::test]
async fn an_invitation_from_a_room_accepted() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mut carol = User::connect(&server, "carol").await;

    let options = InviteOptions::default()
        .video(true)
        .extra("quarterly review");
    let op = users[0].call.invite(&["carol"], options).await.unwrap();
    let report = report(&mut users[0], op).await;
    assert_eq!(report.room.as_ref().unwrap(), "r");
    assert!(report.failed.is_empty());
    let sent = &report.invitations[0];
    let inv = received(&mut carol).await;
    assert_eq!(&inv, sent, "both sides see the same invitation");
    assert_eq!(
        (inv.caller.as_str(), inv.caller_name.as_str()),
        ("alice", "ALICE")
    );
    assert_eq!(
        (inv.callee.as_str(), inv.callee_name.as_str()),
        ("carol", "CAROL")
    );
    assert!(inv.video);
    assert_eq!(inv.extra, "quarterly review");
    assert_eq!(inv.timeout_ms, 30_000, "the default timeout");
    assert_eq!(carol.call.invitations(), vec![inv.clone()]);
    assert_eq!(users[0].call.sent_invitations(), vec![inv.clone()]);

    let op = carol.call.accept_invite(inv.id, true).await.unwrap();
    // The accepter: the room's snapshot first, then the accept's result, both with the op id.
    match carol.next().await {
        CallEvent::Joined {
            op: got,
            result: Ok(room),
        } => {
            assert_eq!(got, op);
            assert_eq!(room.room, "r");
            assert_eq!(room.participants.len(), 3);
            assert!(room.participant("carol").unwrap().video);
        }
        other => panic!("{other:?}"),
    }
    match carol.next().await {
        CallEvent::Invite(InviteEvent::AcceptResult {
            op: got,
            result: Ok(()),
        }) => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    assert!(carol.call.invitations().is_empty());
    // The caller: carol joins, then the invitation is accepted.
    assert!(matches!(
        users[0].next().await,
        CallEvent::Participant(ParticipantEvent::Joined { .. })
    ));
    match invite_event(&mut users[0]).await {
        InviteEvent::Accepted { invitation } => assert_eq!(invitation.id, inv.id),
        other => panic!("{other:?}"),
    }
    assert!(users[0].call.sent_invitations().is_empty());
    // The bystander sees a member join.
    match users[1].next().await {
        CallEvent::Participant(ParticipantEvent::Joined { participant, .. }) => {
            assert_eq!(participant.user_id, "carol")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_invite_from_outside_a_room_starts_a_call_for_several_callees() {
    let server = server().await;
    let mut alice = User::connect(&server, "alice").await;
    let mut bob = User::connect(&server, "bob").await;
    let mut carol = User::connect(&server, "carol").await;

    let op = alice
        .call
        .invite(&["bob", "carol"], InviteOptions::default())
        .await
        .unwrap();
    let room = match alice.next().await {
        CallEvent::Joined {
            op: got,
            result: Ok(room),
        } if got == op => room,
        other => panic!("{other:?}"),
    };
    assert_eq!(room.participants.len(), 1, "the caller is in a new room");
    let report = report(&mut alice, op).await;
    assert_eq!(report.room.as_ref(), Some(&room.room));
    assert_eq!(report.invitations.len(), 2);
    // The awaited outcome is the report too.
    assert!(matches!(alice.call.outcome(op).await.unwrap(), Outcome::Invited(r) if r == report));

    let to_bob = received(&mut bob).await;
    let to_carol = received(&mut carol).await;
    assert_eq!(to_bob.room, room.room);
    done(
        &bob.call,
        bob.call.accept_invite(to_bob.id, false).await.unwrap(),
    )
    .await;
    let op = carol
        .call
        .reject_invite(to_carol.id, Rejection::Declined)
        .await
        .unwrap();
    match invite_event(&mut carol).await {
        InviteEvent::RejectResult {
            op: got,
            result: Ok(()),
        } => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    assert!(carol.call.room().is_none(), "rejecting joins nothing");

    assert!(matches!(
        alice.next().await,
        CallEvent::Participant(ParticipantEvent::Joined { .. })
    ));
    assert!(
        matches!(invite_event(&mut alice).await, InviteEvent::Accepted { invitation } if invitation.id == to_bob.id)
    );
    match invite_event(&mut alice).await {
        InviteEvent::Rejected { invitation, reason } => {
            assert_eq!((invitation.id, reason), (to_carol.id, Reason::Rejected))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(alice.call.room().unwrap().participants.len(), 2);
}

#[tokio::test]
async fn a_canceled_invitation_tells_the_callee_and_can_no_longer_be_answered() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice"]).await;
    let mut bob = User::connect(&server, "bob").await;
    let inv = invite(&mut users[0], &["bob"]).await.invitations[0].clone();
    assert_eq!(received(&mut bob).await, inv);
    let op = users[0].call.cancel_invite(inv.id).await.unwrap();
    match invite_event(&mut users[0]).await {
        InviteEvent::CancelResult {
            op: got,
            result: Ok(()),
        } => assert_eq!(got, op),
        other => panic!("{other:?}"),
    }
    match invite_event(&mut bob).await {
        InviteEvent::Canceled { invitation, reason } => {
            assert_eq!((invitation.id, reason), (inv.id, Reason::Canceled))
        }
        other => panic!("{other:?}"),
    }
    assert!(bob.call.invitations().is_empty());
    // Accepting now is refused, and changes nothing.
    let op = bob.call.accept_invite(inv.id, false).await.unwrap();
    assert_eq!(refused(&bob.call, op).await, ErrorCode::NoSuchInvitation);
    assert!(bob.call.room().is_none());
    let op = users[0].call.cancel_invite(inv.id).await.unwrap();
    assert_eq!(
        refused(&users[0].call, op).await,
        ErrorCode::NoSuchInvitation
    );
}

#[tokio::test]
async fn unanswered_invitations_expire_for_both_sides() {
    // A short server default, and a shorter timeout on one invitation.
    let server = crate::support::builder()
        .invite_timeout(Duration::from_millis(400))
        .start()
        .await
        .unwrap();
    let mut users = room_of(&server, "r", &["alice"]).await;
    let mut bob = User::connect(&server, "bob").await;
    let mut carol = User::connect(&server, "carol").await;
    let to_bob = invite(&mut users[0], &["bob"]).await.invitations[0].clone();
    assert_eq!(to_bob.timeout_ms, 400);
    let op = users[0]
        .call
        .invite(
            &["carol"],
            InviteOptions::default().timeout(Duration::from_millis(150)),
        )
        .await
        .unwrap();
    let to_carol = report(&mut users[0], op).await.invitations[0].clone();
    assert_eq!(to_carol.timeout_ms, 150);
    received(&mut bob).await;
    received(&mut carol).await;
    // Carol's expires first.
    for (callee, inv) in [(&mut carol, &to_carol), (&mut bob, &to_bob)] {
        match invite_event(&mut users[0]).await {
            InviteEvent::Rejected { invitation, reason } => {
                assert_eq!((invitation.id, reason), (inv.id, Reason::NoResponse))
            }
            other => panic!("{other:?}"),
        }
        match invite_event(callee).await {
            InviteEvent::Canceled { invitation, reason } => {
                assert_eq!((invitation.id, reason), (inv.id, Reason::NoResponse))
            }
            other => panic!("{other:?}"),
        }
    }
    let op = bob.call.accept_invite(to_bob.id, false).await.unwrap();
    assert_eq!(refused(&bob.call, op).await, ErrorCode::NoSuchInvitation);
}

#[tokio::test]
async fn a_busy_callee_may_switch_calls_or_say_busy() {
    let server = server().await;
    let mut caller = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut others = room_of(&server, "s", &["bob", "dave"]).await;
    // Bob is in another call: still told, and he says busy.
    let first = invite(&mut caller, &["bob"]).await.invitations[0].clone();
    received(&mut others[0]).await;
    done(
        &others[0].call,
        others[0]
            .call
            .reject_invite(first.id, Rejection::Busy)
            .await
            .unwrap(),
    )
    .await;
    match invite_event(&mut caller).await {
        InviteEvent::Rejected { reason, .. } => assert_eq!(reason, Reason::Busy),
        other => panic!("{other:?}"),
    }
    // Invited again, he accepts: he leaves his call for this one.
    let second = invite(&mut caller, &["bob"]).await.invitations[0].clone();
    assert_eq!(received(&mut others[0]).await.id, second.id);
    let op = others[0]
        .call
        .accept_invite(second.id, false)
        .await
        .unwrap();
    match others[0].next().await {
        CallEvent::Left {
            room,
            reason: Reason::Quit,
            ..
        } => assert_eq!(room, "s"),
        other => panic!("{other:?}"),
    }
    match others[0].next().await {
        CallEvent::Joined {
            op: got,
            result: Ok(room),
        } if got == op => assert_eq!(room.room, "r"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        others[1].participant_left().await,
        ("bob".into(), Reason::Quit)
    );
}

#[tokio::test]
async fn with_auto_reject_busy_the_caller_learns_busy_at_once() {
    let server = crate::support::builder()
        .auto_reject_busy(true)
        .start()
        .await
        .unwrap();
    let mut caller = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = room_of(&server, "s", &["bob"]).await.remove(0);
    let mut carol = User::connect(&server, "carol").await;
    let report = invite(&mut caller, &["bob", "carol"]).await;
    assert_eq!(report.invitations.len(), 1);
    assert_eq!(
        (report.failed[0].user_id.as_str(), report.failed[0].reason),
        ("bob", Reason::Busy)
    );
    received(&mut carol).await;
    bob.assert_quiet().await;
}

#[tokio::test]
async fn inviting_an_offline_user_fails_or_waits_for_them() {
    let server = server().await;
    let mut alice = User::connect(&server, "alice").await;
    // From outside a room, reaching no one starts nothing.
    let report = invite(&mut alice, &["zed"]).await;
    assert_eq!(report.room, None);
    assert!(report.invitations.is_empty());
    assert_eq!(
        (report.failed[0].user_id.as_str(), report.failed[0].reason),
        ("zed", Reason::Offline)
    );
    assert!(alice.call.room().is_none());
    assert_eq!(server.room_count(), 0);

    // A server that holds invitations delivers them when the callee logs in.
    let server = crate::support::builder()
        .hold_offline_invitations(true)
        .start()
        .await
        .unwrap();
    let mut alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let inv = invite(&mut alice, &["zed"]).await.invitations[0].clone();
    assert_eq!(
        inv.callee_name, "zed",
        "not connected: the user id stands in for the name"
    );
    let mut zed = User::connect(&server, "zed").await;
    assert_eq!(received(&mut zed).await.id, inv.id);
    done(
        &zed.call,
        zed.call.accept_invite(inv.id, false).await.unwrap(),
    )
    .await;
    assert_eq!(zed.call.room().unwrap().room, "r");
}

#[tokio::test]
async fn every_device_of_a_callee_hears_and_the_others_learn_it_was_handled() {
    let server = server().await;
    let mut alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut phone = User::connect(&server, "bob").await;
    let mut laptop = User::connect(&server, "bob").await;

    let inv = invite(&mut alice, &["bob"]).await.invitations[0].clone();
    assert_eq!(received(&mut phone).await, inv);
    assert_eq!(received(&mut laptop).await, inv);
    done(
        &phone.call,
        phone.call.accept_invite(inv.id, false).await.unwrap(),
    )
    .await;
    match invite_event(&mut laptop).await {
        InviteEvent::Canceled { invitation, reason } => {
            assert_eq!((invitation.id, reason), (inv.id, Reason::AcceptedElsewhere))
        }
        other => panic!("{other:?}"),
    }
    assert!(laptop.call.invitations().is_empty());
    let op = laptop.call.accept_invite(inv.id, false).await.unwrap();
    assert_eq!(
        refused(&laptop.call, op).await,
        ErrorCode::NoSuchInvitation,
        "accepting twice"
    );

    // A second call: the laptop says no, the phone is told.
    let mut carol = room_of(&server, "s", &["carol"]).await.remove(0);
    let inv = invite(&mut carol, &["bob"]).await.invitations[0].clone();
    received(&mut phone).await;
    received(&mut laptop).await;
    done(
        &laptop.call,
        laptop
            .call
            .reject_invite(inv.id, Rejection::Declined)
            .await
            .unwrap(),
    )
    .await;
    match invite_event(&mut phone).await {
        InviteEvent::Canceled { reason, .. } => assert_eq!(reason, Reason::RejectedElsewhere),
        other => panic!("{other:?}"),
    }
    match invite_event(&mut carol).await {
        InviteEvent::Rejected { reason, .. } => assert_eq!(reason, Reason::Rejected),
        other => panic!("{other:?}"),
    }
    // A device that logs in while an invitation is open receives it too.
    let inv = invite(&mut carol, &["bob"]).await.invitations[0].clone();
    received(&mut phone).await;
    received(&mut laptop).await;
    let mut tablet = User::connect(&server, "bob").await;
    assert_eq!(received(&mut tablet).await.id, inv.id);
}

#[tokio::test]
async fn a_caller_leaving_or_ending_the_call_cancels_its_invitations() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "host2"]).await;
    let mut bob = User::connect(&server, "bob").await;
    let mut carol = User::connect(&server, "carol").await;
    let report = invite(&mut users[0], &["bob", "carol"]).await;
    received(&mut bob).await;
    received(&mut carol).await;
    done(&users[0].call, users[0].call.leave().await.unwrap()).await;
    for callee in [&mut bob, &mut carol] {
        match invite_event(callee).await {
            InviteEvent::Canceled { reason, .. } => assert_eq!(reason, Reason::Quit),
            other => panic!("{other:?}"),
        }
    }
    let mut told = Vec::new();
    for _ in 0..2 {
        match invite_event(&mut users[0]).await {
            InviteEvent::Canceled {
                invitation,
                reason: Reason::Quit,
            } => told.push(invitation.id),
            other => panic!("{other:?}"),
        }
    }
    told.sort();
    assert_eq!(
        told,
        report.invitations.iter().map(|i| i.id).collect::<Vec<_>>()
    );

    // The call ended by its host: the host2's invitation ends with `Over`.
    let inv = invite(&mut users[1], &["bob"]).await.invitations[0].clone();
    received(&mut bob).await;
    done(&users[1].call, users[1].call.end().await.unwrap()).await;
    match invite_event(&mut bob).await {
        InviteEvent::Canceled { invitation, reason } => {
            assert_eq!((invitation.id, reason), (inv.id, Reason::Over))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_moves_are_refused_and_change_nothing() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mut carol = User::connect(&server, "carol").await;
    let mut dave = User::connect(&server, "dave").await;
    let inv = invite(&mut users[0], &["carol"]).await.invitations[0].clone();
    received(&mut carol).await;

    let refusals = [
        (
            users[0]
                .call
                .invite(&["alice"], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::InvalidParam,
            "inviting yourself",
        ),
        (
            users[0]
                .call
                .invite(&["bob"], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::AlreadyInRoom,
            "inviting a member",
        ),
        (
            users[0]
                .call
                .invite(&["carol"], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::AlreadyInvited,
            "inviting twice",
        ),
        (
            users[0]
                .call
                .invite(&["dave", "dave"], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::InvalidParam,
            "a callee named twice",
        ),
        (
            users[0]
                .call
                .invite(&[], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::InvalidParam,
            "no callee",
        ),
        (
            users[0]
                .call
                .invite(&["bad id"], InviteOptions::default())
                .await
                .unwrap(),
            ErrorCode::InvalidParam,
            "a bad user id",
        ),
        (
            users[0]
                .call
                .invite(
                    &["dave"],
                    InviteOptions::default().timeout(Duration::from_secs(3600)),
                )
                .await
                .unwrap(),
            ErrorCode::InvalidParam,
            "a timeout over 10 minutes",
        ),
    ];
    for (op, code, what) in refusals {
        assert_eq!(refused(&users[0].call, op).await, code, "{what}");
    }
    let too_big = users[0]
        .call
        .invite(&["dave"], InviteOptions::default().extra("x".repeat(1025)))
        .await;
    assert!(matches!(too_big, Err(jrtc::CallError::InvalidParam { .. })));

    // Someone else's invitation: neither answerable nor cancelable by others.
    let op = dave.call.accept_invite(inv.id, false).await.unwrap();
    assert_eq!(refused(&dave.call, op).await, ErrorCode::NotInvited);
    let op = dave
        .call
        .reject_invite(inv.id, Rejection::Declined)
        .await
        .unwrap();
    assert_eq!(refused(&dave.call, op).await, ErrorCode::NotInvited);
    let op = users[1].call.cancel_invite(inv.id).await.unwrap();
    assert_eq!(refused(&users[1].call, op).await, ErrorCode::NotInvited);
    let op = carol.call.cancel_invite(inv.id).await.unwrap();
    assert_eq!(refused(&carol.call, op).await, ErrorCode::NotInvited);

    // Nothing changed: the invitation is still open on both sides, and still works.
    assert_eq!(users[0].call.sent_invitations(), vec![inv.clone()]);
    assert_eq!(carol.call.invitations(), vec![inv.clone()]);
    for _ in 0..2 {
        assert!(
            matches!(dave.next().await, CallEvent::Invite(_)),
            "the two refusals"
        );
    }
    dave.assert_quiet().await;
    done(
        &carol.call,
        carol.call.accept_invite(inv.id, false).await.unwrap(),
    )
    .await;
    // Cancel after accept.
    let op = users[0].call.cancel_invite(inv.id).await.unwrap();
    assert_eq!(
        refused(&users[0].call, op).await,
        ErrorCode::NoSuchInvitation
    );
}

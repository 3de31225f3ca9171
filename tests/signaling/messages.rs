//! In-call messages: group, one-to-one, limits.

use jrtc::{CallError, CallEvent, ErrorCode, MessageEvent, MessageScope};

use crate::support::{done, refused, room_of, server};

#[tokio::test]
async fn a_group_message_reaches_everyone_else() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[1]
        .call
        .send_message(None, "text/plain", "hello all")
        .await
        .unwrap();
    match users[1].next().await {
        CallEvent::Message(MessageEvent::Sent {
            op: got,
            seq: Some(seq),
            result: Ok(()),
        }) => {
            assert_eq!(got, op);
            // The group message's room number, one past the room's last event before it.
            assert_eq!(Some(seq), users[1].call.room().map(|r| r.seq));
        }
        other => panic!("{other:?}"),
    }
    for i in [0, 2] {
        match users[i].next().await {
            CallEvent::Message(MessageEvent::Received(m)) => {
                assert_eq!(m.from, "bob");
                assert_eq!(m.scope, MessageScope::Group);
                assert_eq!(
                    (m.content_type.as_str(), m.content.as_str()),
                    ("text/plain", "hello all")
                );
                assert_eq!(m.seq, Some(4));
            }
            other => panic!("{other:?}"),
        }
    }
    users[1].assert_quiet().await;
    // The sender's view kept count of the message's sequence number.
    assert_eq!(users[1].call.room().unwrap().seq, 4);
}

#[tokio::test]
async fn a_one_to_one_message_reaches_only_its_target() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[2]
        .call
        .send_message(Some("alice"), "application/json", r#"{"hand":"up"}"#)
        .await
        .unwrap();
    done(&users[2].call, op).await;
    match users[0].next().await {
        CallEvent::Message(MessageEvent::Received(m)) => {
            assert_eq!(
                (m.from.as_str(), m.scope, m.seq),
                ("carol", MessageScope::OneToOne, None)
            );
            assert_eq!(m.content_type, "application/json");
        }
        other => panic!("{other:?}"),
    }
    users[1].assert_quiet().await;
}

#[tokio::test]
async fn message_limits_and_targets() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    // Exactly 4 KiB is fine; one byte more is refused before sending.
    done(
        &users[0].call,
        users[0]
            .call
            .send_message(None, "text/plain", "x".repeat(4096))
            .await
            .unwrap(),
    )
    .await;
    let err = users[0]
        .call
        .send_message(None, "text/plain", "x".repeat(4097))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidParam { .. }), "{err:?}");
    for u in &mut users[1..] {
        match u.next().await {
            CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content.len(), 4096),
            other => panic!("{other:?}"),
        }
    }
    // A member who is not there.
    let op = users[1]
        .call
        .send_message(Some("zed"), "text/plain", "hi")
        .await
        .unwrap();
    let sent = loop {
        if let CallEvent::Message(MessageEvent::Sent {
            op: got, result, ..
        }) = users[1].next().await
        {
            assert_eq!(got, op);
            break result;
        }
    };
    assert_eq!(sent.unwrap_err().code, ErrorCode::NoSuchParticipant);
    // Out of any room.
    done(&users[2].call, users[2].call.leave().await.unwrap()).await;
    let op = users[2]
        .call
        .send_message(None, "text/plain", "anyone?")
        .await
        .unwrap();
    assert_eq!(refused(&users[2].call, op).await, ErrorCode::NotInRoom);
}

//! A table of hostile and malformed frames, sent over a raw WebSocket by a member of a room:
//! each gets its typed answer, the connection stays usable, and the other members are served
//! throughout and never see anything forged.

use futures::{SinkExt, StreamExt};
use jrtc::{CallEvent, MessageEvent};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::support::{WAIT, done, room_of, server, token};

/// What the server must answer.
enum Want {
    /// An `error` frame with this code and this `op` (or none).
    Error(&'static str, Option<u64>),
    /// A `done` frame for this op.
    Done(u64),
}

fn text(v: Value) -> String {
    v.to_string()
}

fn cases() -> Vec<(&'static str, String, Want)> {
    use Want::{Done, Error};
    let long = |n: usize| "x".repeat(n);
    let deep = format!(
        r#"{{"type":"leave","op":1,"x":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    vec![
        // Not JSON, or not an object.
        ("empty frame", String::new(), Error("bad_json", None)),
        ("an open brace", "{".into(), Error("bad_json", None)),
        ("a close brace", "}".into(), Error("bad_json", None)),
        ("a bare word", "nul".into(), Error("bad_json", None)),
        (
            "single quotes",
            "{'type':'leave'}".into(),
            Error("bad_json", None),
        ),
        (
            "a trailing comma",
            r#"{"type":"leave","op":1,}"#.into(),
            Error("bad_json", None),
        ),
        (
            "a comment",
            r#"// hi
{"type":"leave"}"#
                .into(),
            Error("bad_json", None),
        ),
        (
            "NaN",
            r#"{"type":"leave","op":NaN}"#.into(),
            Error("bad_json", None),
        ),
        (
            "a number too big for any float",
            r#"{"type":"leave","op":1e400}"#.into(),
            Error("bad_json", None),
        ),
        ("deep nesting", deep, Error("bad_json", None)),
        (
            "two objects",
            r#"{"type":"leave","op":1}{"type":"leave","op":2}"#.into(),
            Error("bad_json", None),
        ),
        (
            "a string",
            text(json!("leave")),
            Error("invalid_frame", None),
        ),
        ("a number", "42".into(), Error("invalid_frame", None)),
        ("null", "null".into(), Error("invalid_frame", None)),
        (
            "an array",
            text(json!([{"type": "leave", "op": 1}])),
            Error("invalid_frame", None),
        ),
        // Types and ops.
        (
            "no type",
            text(json!({"op": 3})),
            Error("invalid_frame", Some(3)),
        ),
        (
            "type is a number",
            text(json!({"type": 5, "op": 4})),
            Error("invalid_frame", Some(4)),
        ),
        (
            "type is null",
            text(json!({"type": null, "op": 5})),
            Error("invalid_frame", Some(5)),
        ),
        (
            "unknown type",
            text(json!({"type": "become_host", "op": 6})),
            Error("unknown_type", Some(6)),
        ),
        (
            "type in capitals",
            text(json!({"type": "LEAVE", "op": 7})),
            Error("unknown_type", Some(7)),
        ),
        (
            "a very long unknown type",
            text(json!({"type": long(10_000), "op": 8})),
            Error("unknown_type", Some(8)),
        ),
        (
            "op as a string",
            text(json!({"type": "update", "op": "9"})),
            Error("invalid_frame", None),
        ),
        (
            "negative op",
            text(json!({"type": "update", "op": -1})),
            Error("invalid_frame", None),
        ),
        (
            "fractional op",
            text(json!({"type": "update", "op": 1.5})),
            Error("invalid_frame", None),
        ),
        (
            "op past u64",
            r#"{"type":"update","op":18446744073709551616}"#.into(),
            Error("invalid_frame", None),
        ),
        (
            "op missing",
            text(json!({"type": "update"})),
            Error("invalid_frame", None),
        ),
        // Fields of the wrong type.
        (
            "audio as a string",
            text(json!({"type": "update", "op": 10, "audio": "yes"})),
            Error("invalid_frame", Some(10)),
        ),
        (
            "room as a number",
            text(json!({"type": "join", "op": 11, "room": 5})),
            Error("invalid_frame", Some(11)),
        ),
        (
            "content as an object",
            text(json!({"type": "send_message", "op": 12, "content_type": "t", "content": {}})),
            Error("invalid_frame", Some(12)),
        ),
        (
            "content_type null",
            text(json!({"type": "send_message", "op": 13, "content_type": null, "content": "x"})),
            Error("invalid_frame", Some(13)),
        ),
        (
            "an unknown role",
            text(json!({"type": "set_role", "op": 14, "user_id": "bob", "role": "admin"})),
            Error("invalid_frame", Some(14)),
        ),
        (
            "custom as a list",
            text(json!({"type": "set_properties", "op": 15, "custom": ["a"]})),
            Error("invalid_frame", Some(15)),
        ),
        (
            "recording as a string",
            text(json!({"type": "set_properties", "op": 16, "recording": "on"})),
            Error("invalid_frame", Some(16)),
        ),
        (
            "screen share as a number",
            text(json!({"type": "set_properties", "op": 17, "screen_share": 5})),
            Error("invalid_frame", Some(17)),
        ),
        (
            "callees as a string",
            text(json!({"type": "invite", "op": 18, "callees": "bob"})),
            Error("invalid_frame", Some(18)),
        ),
        (
            "invitation as a bool",
            text(json!({"type": "accept_invite", "op": 19, "invitation": true})),
            Error("invalid_frame", Some(19)),
        ),
        (
            "timeout past u64",
            r#"{"type":"invite","op":20,"callees":["zed"],"timeout_ms":99999999999999999999999}"#
                .into(),
            Error("invalid_frame", Some(20)),
        ),
        (
            "an unknown rejection",
            text(json!({"type": "reject_invite", "op": 21, "invitation": 1, "reason": "maybe"})),
            Error("invalid_frame", Some(21)),
        ),
        // Sizes and id rules.
        (
            "a 65-byte room id",
            text(json!({"type": "join", "op": 22, "room": long(65)})),
            Error("already_joined", Some(22)),
        ),
        (
            "display name over 128 bytes",
            text(json!({"type": "update", "op": 23, "display_name": long(129)})),
            Error("invalid_param", Some(23)),
        ),
        (
            "state over 1 KiB",
            text(json!({"type": "update", "op": 24, "state": long(1025)})),
            Error("invalid_param", Some(24)),
        ),
        (
            "content type over 128 bytes",
            text(
                json!({"type": "send_message", "op": 25, "content_type": long(129), "content": "x"}),
            ),
            Error("invalid_param", Some(25)),
        ),
        (
            "message over 4 KiB",
            text(
                json!({"type": "send_message", "op": 26, "content_type": "t", "content": long(4097)}),
            ),
            Error("message_too_large", Some(26)),
        ),
        (
            "a multibyte message over 4 KiB",
            text(
                json!({"type": "send_message", "op": 27, "content_type": "t", "content": "é".repeat(2049)}),
            ),
            Error("message_too_large", Some(27)),
        ),
        (
            "invite extra over 1 KiB",
            text(json!({"type": "invite", "op": 28, "callees": ["zed"], "extra": long(1025)})),
            Error("invalid_param", Some(28)),
        ),
        (
            "a zero invite timeout",
            text(json!({"type": "invite", "op": 29, "callees": ["zed"], "timeout_ms": 0})),
            Error("invalid_param", Some(29)),
        ),
        (
            "seventeen callees",
            text(
                json!({"type": "invite", "op": 30, "callees": (0..17).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
            ),
            Error("invalid_param", Some(30)),
        ),
        (
            "a callee id with a slash",
            text(json!({"type": "invite", "op": 31, "callees": ["../bob"]})),
            Error("invalid_param", Some(31)),
        ),
        (
            "a frame over 64 KiB",
            text(json!({"type": "leave", "op": 32, "pad": long(70_000)})),
            Error("frame_too_large", None),
        ),
        // Forged identities and other rooms.
        (
            "a second hello",
            text(json!({"type": "hello", "version": 1, "token": "x"})),
            Error("already_logged_in", None),
        ),
        (
            "kicking as a guest",
            text(json!({"type": "kick", "op": 33, "user_id": "alice"})),
            Error("permission_denied", Some(33)),
        ),
        (
            "ending as a guest",
            text(json!({"type": "end", "op": 34})),
            Error("permission_denied", Some(34)),
        ),
        (
            "making oneself host",
            text(json!({"type": "set_role", "op": 35, "user_id": "mallory", "role": "host"})),
            Error("permission_denied", Some(35)),
        ),
        (
            "recording as a guest",
            text(json!({"type": "set_properties", "op": 36, "recording": true})),
            Error("permission_denied", Some(36)),
        ),
        (
            "sharing as someone else",
            text(
                json!({"type": "set_properties", "op": 37, "screen_share": {"user_id": "bob", "stream_id": "s"}}),
            ),
            Error("permission_denied", Some(37)),
        ),
        (
            "messaging someone in another room",
            text(
                json!({"type": "send_message", "op": 38, "to": "carol", "content_type": "t", "content": "x"}),
            ),
            Error("no_such_participant", Some(38)),
        ),
        (
            "messaging oneself",
            text(
                json!({"type": "send_message", "op": 39, "to": "mallory", "content_type": "t", "content": "x"}),
            ),
            Error("invalid_param", Some(39)),
        ),
        (
            "answering someone else's invitation",
            text(json!({"type": "accept_invite", "op": 40, "invitation": 1})),
            Error("not_invited", Some(40)),
        ),
        (
            "canceling someone else's invitation",
            text(json!({"type": "cancel_invite", "op": 41, "invitation": 1})),
            Error("not_invited", Some(41)),
        ),
        (
            "an invitation that never was",
            text(
                json!({"type": "reject_invite", "op": 42, "invitation": 987654, "reason": "busy"}),
            ),
            Error("no_such_invitation", Some(42)),
        ),
        (
            "inviting a member",
            text(json!({"type": "invite", "op": 43, "callees": ["alice"]})),
            Error("already_in_room", Some(43)),
        ),
        (
            "inviting oneself",
            text(json!({"type": "invite", "op": 44, "callees": ["mallory"]})),
            Error("invalid_param", Some(44)),
        ),
        // Accepted, with the forged or unknown parts ignored.
        (
            "a forged sender on a message",
            text(
                json!({"type": "send_message", "op": 45, "from": "alice", "content_type": "t", "content": "who am i"}),
            ),
            Done(45),
        ),
        (
            "a forged user on an update",
            text(json!({"type": "update", "op": 46, "user_id": "alice", "state": "mine"})),
            Done(46),
        ),
        (
            "unknown fields",
            text(json!({"type": "update", "op": 47, "admin": true, "role": "host"})),
            Done(47),
        ),
        // A repeated op id is answered again with its first answer and not applied again
        // (the exactly-once rule: the audio flag stays off).
        (
            "a replayed op id",
            text(json!({"type": "update", "op": 47, "audio": true})),
            Done(47),
        ),
        ("op zero", text(json!({"type": "update", "op": 0})), Done(0)),
        (
            "the largest op",
            text(json!({"type": "update", "op": u64::MAX})),
            Done(u64::MAX),
        ),
    ]
}

/// The next event that is not about invitations (bob has one from carol, elsewhere).
async fn room_event(u: &mut crate::support::User) -> CallEvent {
    loop {
        match u.next().await {
            CallEvent::Invite(_) => {}
            other => return other,
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Value::Null,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn at_least_fifty_hostile_frames_get_typed_answers_and_harm_no_one() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mut carol = room_of(&server, "elsewhere", &["carol"]).await.remove(0);
    // Carol invites bob, so invitation 1 exists and is not mallory's.
    done(
        &carol.call,
        carol
            .call
            .invite(&["bob"], Default::default())
            .await
            .unwrap(),
    )
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    let hello = json!({"type": "hello", "version": 1, "token": token(&server, "mallory")});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    ws.send(Message::text(
        json!({"type": "join", "op": 1, "room": "r"}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "joined");

    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (name, frame, want) in cases {
        ws.send(Message::text(frame)).await.unwrap();
        // The answer; room events the request caused (her own update) come before it.
        let reply = loop {
            let frame = recv(&mut ws).await;
            if frame["type"] != "participant_updated" {
                break frame;
            }
        };
        match want {
            Want::Error(code, op) => {
                assert_eq!(reply["type"], "error", "{name}: {reply}");
                assert_eq!(reply["code"], code, "{name}: {reply}");
                assert_eq!(reply["op"].as_u64(), op, "{name}: {reply}");
            }
            Want::Done(op) => {
                assert_eq!(reply["type"], "done", "{name}: {reply}");
                assert_eq!(reply["op"].as_u64(), Some(op), "{name}: {reply}");
            }
        }
    }
    // Binary frames.
    ws.send(Message::binary(vec![0xff; 64])).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "binary_frame");

    // The others saw only what was real: mallory joining, her message under her own name, her
    // own updates.
    for u in &mut users {
        assert!(
            matches!(room_event(u).await, CallEvent::Participant(_)),
            "mallory joined"
        );
        match room_event(u).await {
            CallEvent::Message(MessageEvent::Received(m)) => {
                assert_eq!(
                    (m.from.as_str(), m.content.as_str()),
                    ("mallory", "who am i")
                )
            }
            other => panic!("{other:?}"),
        }
        match room_event(u).await {
            CallEvent::Participant(jrtc::ParticipantEvent::Updated { participant, .. }) => {
                assert_eq!(
                    (participant.user_id.as_str(), participant.state.as_str()),
                    ("mallory", "mine")
                )
            }
            other => panic!("{other:?}"),
        }
        let room = u.call.room().unwrap();
        assert!(
            !room.participant("mallory").unwrap().audio,
            "the repeated op was not applied"
        );
        assert_eq!(
            room.participant("alice").unwrap().state,
            "",
            "alice untouched"
        );
        assert_eq!(room.participant("alice").unwrap().role, jrtc::Role::Host);
        assert_eq!(room.participant("mallory").unwrap().role, jrtc::Role::Guest);
    }
    // Carol's invitation is still open and answerable by bob.
    let invitation = users[1].call.invitations().pop().expect("bob's invitation");
    assert_eq!(carol.call.sent_invitations().len(), 1);
    done(
        &users[1].call,
        users[1]
            .call
            .reject_invite(invitation.id, jrtc::Rejection::Declined)
            .await
            .unwrap(),
    )
    .await;
    // Carol hears the answer to her invitation (after her own invite's report).
    loop {
        match carol.next().await {
            CallEvent::Invite(jrtc::InviteEvent::Sent { .. }) => {}
            CallEvent::Invite(jrtc::InviteEvent::Rejected {
                invitation: i,
                reason,
            }) => {
                assert_eq!((i.id, reason), (invitation.id, jrtc::Reason::Rejected));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    // The room is served as before.
    done(
        &users[0].call,
        users[0]
            .call
            .send_message(Some("bob"), "t", "fine")
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_closes_only_that_connection() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    let hello = json!({"type": "hello", "version": 1, "token": token(&server, "mallory")});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    let bad = Frame::message(vec![b'{', 0xc3, 0x28, b'}'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).await.unwrap();
    // The protocol requires UTF-8 text: the connection ends.
    assert_eq!(recv(&mut ws).await, Value::Null);
    done(
        &users[0].call,
        users[0].call.send_message(None, "t", "fine").await.unwrap(),
    )
    .await;
    assert!(matches!(users[1].next().await, CallEvent::Message(_)));
}

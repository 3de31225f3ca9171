//! Bad input over a raw WebSocket: every case gets a typed error frame, the server keeps serving
//! everyone else, and the connection stays usable where the protocol allows.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jrtc::{CallEvent, MessageEvent};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{User, WAIT, done, room_of, server, token};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client speaking the wire protocol by hand, as a client in another language would.
pub struct Raw {
    ws: Ws,
}

impl Raw {
    pub async fn connect(url: &str) -> Raw {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Raw { ws }
    }

    pub async fn login(url: &str, token: &str) -> Raw {
        let mut raw = Raw::connect(url).await;
        let welcome = raw
            .ask(json!({"type": "hello", "version": 1, "token": token}))
            .await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        raw
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Close(_))) | None => return Value::Null,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
            }
        }
    }

    pub async fn ask(&mut self, frame: Value) -> Value {
        self.send_text(frame.to_string()).await;
        self.recv().await
    }

    /// Sends `text` and expects an error frame with `code` (and `op`, when given).
    pub async fn expect_error(&mut self, text: String, code: &str, op: Option<u64>) {
        self.send_text(text).await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply["op"], op.map_or(Value::Null, Value::from), "{reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_harms_no_one() {
    let server = server().await;
    // Two well-behaved members whose call must go on undisturbed.
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;

    let mut raw = Raw::connect(&server.url()).await;
    // Before hello.
    raw.expect_error(
        json!({"type": "join", "op": 1, "room": "r"}).to_string(),
        "not_logged_in",
        Some(1),
    )
    .await;
    let mallory = token(&server, "mallory");
    raw.expect_error(
        json!({"type": "hello", "version": 99, "token": mallory}).to_string(),
        "unsupported_version",
        None,
    )
    .await;
    raw.expect_error(
        json!({"type": "hello", "version": 1, "token": "not.a.token"}).to_string(),
        "invalid_token",
        None,
    )
    .await;
    raw.expect_error(
        json!({"type": "hello", "version": 1, "user_id": "mallory"}).to_string(),
        "invalid_frame",
        None,
    )
    .await;
    // The connection is still usable: log in properly.
    let welcome = raw
        .ask(json!({"type": "hello", "version": 1, "token": mallory}))
        .await;
    assert_eq!(welcome["type"], "welcome");
    raw.expect_error(
        json!({"type": "hello", "version": 1, "token": mallory}).to_string(),
        "already_logged_in",
        None,
    )
    .await;

    // Frames the server cannot read.
    raw.expect_error("{not json".into(), "bad_json", None).await;
    raw.expect_error("[1, 2]".into(), "invalid_frame", None)
        .await;
    raw.expect_error(json!({"op": 2}).to_string(), "invalid_frame", Some(2))
        .await;
    raw.expect_error(
        json!({"type": "teleport", "op": 3}).to_string(),
        "unknown_type",
        Some(3),
    )
    .await;
    raw.expect_error(
        json!({"type": "kick", "op": 4}).to_string(),
        "invalid_frame",
        Some(4),
    )
    .await;
    raw.expect_error(
        json!({"type": "join", "op": "five"}).to_string(),
        "invalid_frame",
        None,
    )
    .await;
    raw.expect_error(
        json!({"type": "send_message", "op": 6, "content": 7, "content_type": "t"}).to_string(),
        "invalid_frame",
        Some(6),
    )
    .await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    raw.expect_error(deep, "bad_json", None).await;
    let big = json!({"type": "leave", "op": 8, "pad": "x".repeat(100 * 1024)}).to_string();
    raw.expect_error(big, "frame_too_large", None).await;
    raw.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let reply = raw.recv().await;
    assert_eq!(reply["code"], "binary_frame");

    // Invitation frames with bad fields, and answers to invitations that do not exist.
    for (frame, code, op) in [
        (
            json!({"type": "invite", "op": 30, "callees": "bob"}),
            "invalid_frame",
            Some(30),
        ),
        (
            json!({"type": "invite", "op": 31, "callees": []}),
            "invalid_param",
            Some(31),
        ),
        (
            json!({"type": "invite", "op": 32, "callees": ["mallory"]}),
            "invalid_param",
            Some(32),
        ),
        (
            json!({"type": "invite", "op": 33, "callees": ["bob"], "timeout_ms": -1}),
            "invalid_frame",
            Some(33),
        ),
        (
            json!({"type": "reject_invite", "op": 34, "invitation": 1, "reason": "maybe"}),
            "invalid_frame",
            Some(34),
        ),
        (
            json!({"type": "accept_invite", "op": 35, "invitation": "one"}),
            "invalid_frame",
            Some(35),
        ),
        (
            json!({"type": "accept_invite", "op": 36, "invitation": 999}),
            "no_such_invitation",
            Some(36),
        ),
        (
            json!({"type": "cancel_invite", "op": 37, "invitation": 999}),
            "no_such_invitation",
            Some(37),
        ),
    ] {
        raw.expect_error(frame.to_string(), code, op).await;
    }

    // A media frame outside a room.
    raw.expect_error(
        json!({"type": "ice_candidate", "connection": "publish", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}).to_string(),
        "not_in_room",
        None,
    )
    .await;
    raw.expect_error(
        json!({"type": "ice_candidate", "connection": "sideways", "candidate": {"candidate": "x"}})
            .to_string(),
        "invalid_frame",
        None,
    )
    .await;

    // Requests that need a room, before joining one.
    raw.expect_error(
        json!({"type": "send_message", "op": 9, "content_type": "t", "content": "x"}).to_string(),
        "not_in_room",
        Some(9),
    )
    .await;
    raw.expect_error(
        json!({"type": "leave", "op": 10}).to_string(),
        "not_in_room",
        Some(10),
    )
    .await;
    raw.expect_error(
        json!({"type": "join", "op": 11, "room": "../etc"}).to_string(),
        "invalid_param",
        Some(11),
    )
    .await;

    // Join, then misbehave inside the room.
    let joined = raw
        .ask(json!({"type": "join", "op": 12, "room": "r"}))
        .await;
    assert_eq!(
        (joined["type"].as_str(), joined["op"].as_u64()),
        (Some("joined"), Some(12)),
        "{joined}"
    );
    assert_eq!(joined["participants"].as_array().unwrap().len(), 3);
    raw.expect_error(
        json!({"type": "join", "op": 13, "room": "s"}).to_string(),
        "already_joined",
        Some(13),
    )
    .await;
    raw.expect_error(
        json!({"type": "kick", "op": 14, "user_id": "alice"}).to_string(),
        "permission_denied",
        Some(14),
    )
    .await;
    raw.expect_error(
        json!({"type": "end", "op": 15}).to_string(),
        "permission_denied",
        Some(15),
    )
    .await;
    let long = "y".repeat(4097);
    raw.expect_error(
        json!({"type": "send_message", "op": 16, "content_type": "t", "content": long}).to_string(),
        "message_too_large",
        Some(16),
    )
    .await;
    raw.expect_error(json!({"type": "send_message", "op": 17, "to": "nobody", "content_type": "t", "content": "x"}).to_string(), "no_such_participant", Some(17)).await;
    raw.expect_error(
        json!({"type": "set_properties", "op": 18, "recording": true}).to_string(),
        "permission_denied",
        Some(18),
    )
    .await;

    // Still usable: a valid group message goes through, and the others hear it.
    let done_frame = raw.ask(json!({"type": "send_message", "op": 19, "content_type": "text/plain", "content": "ok"})).await;
    assert_eq!(
        (done_frame["type"].as_str(), done_frame["op"].as_u64()),
        (Some("done"), Some(19)),
        "{done_frame}"
    );

    for u in &mut users {
        assert!(
            matches!(u.next().await, CallEvent::Participant(_)),
            "mallory joined"
        );
        match u.next().await {
            CallEvent::Message(MessageEvent::Received(m)) => {
                assert_eq!((m.from.as_str(), m.content.as_str()), ("mallory", "ok"))
            }
            other => panic!("{other:?}"),
        }
    }
    // And the well-behaved members were served all along.
    done(
        &users[0].call,
        users[0]
            .call
            .send_message(Some("bob"), "text/plain", "still here")
            .await
            .unwrap(),
    )
    .await;
    match users[1].next().await {
        CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content, "still here"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_frame_over_the_hard_limit_closes_only_that_connection() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mut raw = Raw::login(&server.url(), &token(&server, "mallory")).await;
    raw.send_text("z".repeat(2 * 1024 * 1024)).await;
    let reply = raw.recv().await;
    assert_eq!(reply["code"], "frame_too_large", "{reply}");
    assert_eq!(raw.recv().await, Value::Null, "then the connection closes");
    done(
        &users[0].call,
        users[0]
            .call
            .send_message(None, "text/plain", "fine")
            .await
            .unwrap(),
    )
    .await;
    assert!(matches!(users[1].next().await, CallEvent::Message(_)));
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed_with_reason_timeout() {
    let server = crate::support::builder()
        .handshake_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut raw = Raw::connect(&server.url()).await;
    let bye = raw.recv().await;
    assert_eq!(
        (bye["type"].as_str(), bye["reason"].as_str()),
        (Some("goodbye"), Some("timeout")),
        "{bye}"
    );
    assert_eq!(raw.recv().await, Value::Null);
    // A client that logs in in time is not affected by the deadline.
    let mut user = User::connect(&server, "alice").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    user.join("r").await;
}

#[tokio::test]
async fn a_member_that_stops_reading_is_dropped_and_the_others_go_on() {
    let server = crate::support::builder()
        .outbound_queue(16)
        .grace_period(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let mut sloth = Raw::login(&server.url(), &token(&server, "sloth")).await;
    let joined = sloth
        .ask(json!({"type": "join", "op": 1, "room": "r"}))
        .await;
    assert_eq!(joined["type"], "joined");
    for u in &mut users {
        assert!(matches!(u.next().await, CallEvent::Participant(_)));
    }
    // From here on the sloth reads nothing. 4 KiB messages fill its socket buffers, then its
    // queue of 16 frames; the server then closes it. Bob keeps reading all along.
    let mut bob_chat = users[1].call.events().messages();
    let content = "m".repeat(4096);
    let mut sent = 0;
    let left = loop {
        let op = users[0]
            .call
            .send_message(None, "text/plain", content.clone())
            .await
            .unwrap();
        done(&users[0].call, op).await;
        sent += 1;
        let got = tokio::time::timeout(WAIT, bob_chat.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(got, MessageEvent::Received(_)));
        if server.connection_count() == 2 {
            break sent;
        }
        assert!(sent < 20_000, "the sloth was never dropped");
    };
    // Alice hears that the sloth is gone (its connection counts as lost).
    loop {
        match users[0].next().await {
            CallEvent::Participant(jrtc::ParticipantEvent::Left {
                participant,
                reason,
                ..
            }) => {
                assert_eq!(
                    (participant.user_id.as_str(), reason),
                    ("sloth", jrtc::Reason::Network)
                );
                break;
            }
            _ => continue,
        }
    }
    assert!(left > 16);
    eprintln!("the sloth was dropped after {left} messages");
    drop(sloth);
}

#[tokio::test]
async fn a_flood_is_slowed_with_typed_errors_not_a_disconnect() {
    let limits = jrtc::Limits::default()
        .requests_per_second(5)
        .request_burst(5);
    let server = crate::support::builder()
        .limits(limits)
        .start()
        .await
        .unwrap();
    let mut bob = room_of(&server, "r", &["bob"]).await.remove(0);
    let mut raw = Raw::login(&server.url(), &token(&server, "mallory")).await;
    let joined = raw.ask(json!({"type": "join", "op": 1, "room": "r"})).await;
    assert_eq!(joined["type"], "joined");
    for op in 2..22 {
        let frame = json!({"type": "send_message", "op": op, "content_type": "t", "content": format!("{op}")});
        raw.send_text(frame.to_string()).await;
    }
    let (mut accepted, mut limited) = (Vec::new(), 0);
    for _ in 2..22 {
        let reply = raw.recv().await;
        match reply["type"].as_str() {
            Some("done") => accepted.push(reply["op"].as_u64().unwrap()),
            Some("error") => {
                assert_eq!(reply["code"], "rate_limited", "{reply}");
                assert!(
                    reply["op"].as_u64().is_some(),
                    "the refusal names its request"
                );
                limited += 1;
            }
            _ => panic!("{reply}"),
        }
    }
    assert!(limited >= 10, "{limited} of 20 refused");
    assert!(!accepted.is_empty() && accepted.len() <= 5, "{accepted:?}");
    // Bob got exactly the accepted messages.
    assert!(matches!(bob.next().await, CallEvent::Participant(_)));
    for op in &accepted {
        match bob.next().await {
            CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content, op.to_string()),
            other => panic!("{other:?}"),
        }
    }
    bob.assert_quiet().await;
    // Still connected: after a pause, requests go through again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = raw
        .ask(json!({"type": "send_message", "op": 99, "content_type": "t", "content": "later"}))
        .await;
    assert_eq!(reply["type"], "done", "{reply}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_live_call_is_not() {
    let limits = crate::support::unlimited()
        .ping_interval(Duration::from_millis(50))
        .idle_timeout(Duration::from_millis(200));
    let server = crate::support::builder()
        .limits(limits)
        .grace_period(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut live = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut raw = Raw::login(&server.url(), &token(&server, "mallory")).await;
    let joined = raw.ask(json!({"type": "join", "op": 1, "room": "r"})).await;
    assert_eq!(joined["type"], "joined");
    assert!(matches!(live.next().await, CallEvent::Participant(_)));
    // The raw client reads nothing from now on, so it answers no ping: the server counts its
    // connection lost, keeps the seat for the grace period (the room sees it), then drops it.
    assert_eq!(
        live.connection_of().await,
        ("mallory".into(), jrtc::ConnectionState::Reconnecting)
    );
    assert_eq!(
        live.participant_left().await,
        ("mallory".into(), jrtc::Reason::Network)
    );
    assert_eq!(server.connection_count(), 1);
    // The call's task answers pings by itself: it is still connected and served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let op = live
        .call
        .send_message(None, "t", "still here")
        .await
        .unwrap();
    done(&live.call, op).await;
    drop(raw);
}

#[tokio::test]
async fn the_frame_size_limit_is_the_servers_setting() {
    let limits = crate::support::unlimited().max_frame_len(200 * 1024);
    let server = crate::support::builder()
        .limits(limits)
        .start()
        .await
        .unwrap();
    let mut raw = Raw::login(&server.url(), &token(&server, "mallory")).await;
    // 100 KiB: over the default 64 KiB, within this server's 200 KiB, so it is read.
    let padded = json!({"type": "leave", "op": 1, "pad": "x".repeat(100 * 1024)}).to_string();
    raw.expect_error(padded, "not_in_room", Some(1)).await;
    let oversized = json!({"type": "leave", "op": 2, "pad": "x".repeat(300 * 1024)}).to_string();
    raw.expect_error(oversized, "frame_too_large", None).await;
}

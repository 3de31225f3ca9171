//! Access tokens, grants and limits, over real connections: every refusal is typed.

use std::time::{Duration, SystemTime};

use jrtc::{
    AccessToken, Call, CallError, ErrorCode, Grants, InviteOptions, JoinOptions, PropertyUpdate,
    Role, ScreenShare, ServerHandle,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{User, done, refused, room_of, unlimited};

const SECRET: &[u8] = b"the secret of the security tests, 32+ bytes long";

async fn server() -> ServerHandle {
    jrtc::Server::builder()
        .secret(SECRET)
        .limits(unlimited())
        .start()
        .await
        .unwrap()
}

/// The code a login with `token` is refused with.
async fn login_refused(server: &ServerHandle, token: &str) -> ErrorCode {
    match Call::connect(&server.url(), token).await {
        Err(CallError::Rejected(e)) => e.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A token with these exact claims, signed with `secret` and `alg`.
fn forge(claims: serde_json::Value, secret: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

#[tokio::test]
async fn forged_expired_tampered_and_malformed_tokens_are_refused() {
    let server = server().await;
    let good = AccessToken::new("alice").sign(SECRET).unwrap();
    let admin_elsewhere = AccessToken::new("admin")
        .grants(Grants::all())
        .sign(b"some other secret, also 32 bytes or more")
        .unwrap();
    // The claims of one token under the signature of another.
    let parts: Vec<&str> = good.split('.').collect();
    let other: Vec<&str> = admin_elsewhere.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], other[1], parts[2]);
    let unsigned = format!(
        "{}.{}.",
        // {"alg":"none","typ":"JWT"}
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
        parts[1]
    );
    let mut altered = format!("{}.{}.", parts[0], parts[1]);
    let sig = parts[2];
    altered.push(if sig.starts_with('A') { 'B' } else { 'A' });
    altered.push_str(&sig[1..]);
    let past = SystemTime::now() - Duration::from_secs(3600);
    let future = SystemTime::now() + Duration::from_secs(3600);
    let cases: Vec<(&str, String, ErrorCode)> = vec![
        ("garbage", "not a token".into(), ErrorCode::InvalidToken),
        ("empty", String::new(), ErrorCode::InvalidToken),
        ("two parts", "abc.def".into(), ErrorCode::InvalidToken),
        ("bad base64", "!!!.???.***".into(), ErrorCode::InvalidToken),
        (
            "another secret",
            admin_elsewhere.clone(),
            ErrorCode::BadSignature,
        ),
        ("tampered claims", tampered, ErrorCode::BadSignature),
        ("altered signature", altered, ErrorCode::BadSignature),
        ("alg none", unsigned, ErrorCode::InvalidToken),
        (
            "HS512 instead of HS256",
            forge(
                json!({"sub": "alice", "exp": in_an_hour()}),
                SECRET,
                Algorithm::HS512,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "expired",
            AccessToken::new("alice")
                .expires_at(past)
                .sign(SECRET)
                .unwrap(),
            ErrorCode::TokenExpired,
        ),
        (
            "not yet valid",
            AccessToken::new("alice")
                .not_before(future)
                .sign(SECRET)
                .unwrap(),
            ErrorCode::TokenNotYetValid,
        ),
        (
            "user id breaking the rules",
            forge(
                json!({"sub": "-root", "exp": in_an_hour()}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidUserId,
        ),
        (
            "user id too long",
            forge(
                json!({"sub": "a".repeat(65), "exp": in_an_hour()}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidUserId,
        ),
        (
            "no expiry",
            forge(json!({"sub": "alice"}), SECRET, Algorithm::HS256),
            ErrorCode::InvalidToken,
        ),
        (
            "expiry of the wrong type",
            forge(
                json!({"sub": "alice", "exp": "tomorrow"}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "grants of the wrong type",
            forge(
                json!({"sub": "alice", "exp": in_an_hour(), "grants": "all"}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "a bad room id",
            forge(
                json!({"sub": "alice", "exp": in_an_hour(), "rooms": ["../x"]}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "no iat (its lifetime is unknown, so no revocation could be kept long enough)",
            forge(
                json!({"sub": "alice", "exp": in_an_hour()}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidToken,
        ),
        (
            "issued in the future",
            forge(
                json!({"sub": "alice", "exp": in_an_hour(), "iat": in_an_hour() - 60}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::TokenNotYetValid,
        ),
        (
            "an empty token id",
            forge(
                json!({"sub": "alice", "exp": in_an_hour(), "iat": in_an_hour() - 3600, "jti": ""}),
                SECRET,
                Algorithm::HS256,
            ),
            ErrorCode::InvalidToken,
        ),
    ];
    assert!(cases.len() >= 12);
    for (what, token, code) in cases {
        assert_eq!(login_refused(&server, &token).await, code, "{what}");
    }
    // The genuine token still works, and nothing above left a connection behind.
    let call = Call::connect(&server.url(), good).await.unwrap();
    assert_eq!(call.user_id(), "alice");
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn tokens_bound_to_rooms_keep_their_holders_out_of_other_rooms() {
    let server = server().await;
    let scoped = |user: &str| {
        AccessToken::new(user)
            .room("standup")
            .room("retro")
            .grants(Grants::default().create(true))
            .sign(SECRET)
            .unwrap()
    };
    let mut bob = User::connect_url(&server.url(), scoped("bob")).await;
    let op = bob
        .call
        .join("board-meeting", JoinOptions::default())
        .await
        .unwrap();
    assert_eq!(refused(&bob.call, op).await, ErrorCode::WrongRoom);
    let op = bob.call.join_new(JoinOptions::default()).await.unwrap();
    assert_eq!(
        refused(&bob.call, op).await,
        ErrorCode::WrongRoom,
        "a server-named room"
    );
    let op = bob
        .call
        .invite(&["carol"], InviteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        refused(&bob.call, op).await,
        ErrorCode::WrongRoom,
        "starting a call makes a server-named room"
    );
    bob.events = bob.call.events();
    bob.join("retro").await;

    // An invitation to a room the token does not allow cannot be accepted.
    let alice = AccessToken::new("alice")
        .grants(Grants::all())
        .sign(SECRET)
        .unwrap();
    let mut alice = User::connect_url(&server.url(), alice).await;
    alice.join("board-meeting").await;
    let mut carol = User::connect_url(&server.url(), scoped("carol")).await;
    let op = alice
        .call
        .invite(&["carol"], InviteOptions::default())
        .await
        .unwrap();
    done(&alice.call, op).await;
    let invitation = loop {
        if let Some(i) = carol.call.invitations().pop() {
            break i;
        }
        carol.next().await;
    };
    let op = carol
        .call
        .accept_invite(invitation.id, false)
        .await
        .unwrap();
    assert_eq!(refused(&carol.call, op).await, ErrorCode::WrongRoom);
    assert_eq!(
        carol.call.invitations().len(),
        1,
        "the refusal changed nothing"
    );
}

#[tokio::test]
async fn each_request_needs_its_grant() {
    let server = server().await;
    // Alice hosts (first in the room) but her token grants nothing beyond the defaults and
    // making the room.
    let plain = AccessToken::new("alice")
        .grants(Grants::default().create(true))
        .sign(SECRET)
        .unwrap();
    let mut alice = User::connect_url(&server.url(), plain).await;
    alice.join("r").await;
    let mut bob =
        User::connect_url(&server.url(), AccessToken::new("bob").sign(SECRET).unwrap()).await;
    bob.join("r").await;

    let mut custom = PropertyUpdate::default();
    custom.custom.insert("topic".into(), Some("x".into()));
    let record = PropertyUpdate {
        recording: Some(true),
        ..Default::default()
    };
    let checks = [
        (alice.call.kick("bob").await.unwrap(), "kick"),
        (alice.call.end().await.unwrap(), "end"),
        (
            alice.call.set_role("bob", Role::Host).await.unwrap(),
            "set_role",
        ),
        (
            alice.call.set_properties(custom).await.unwrap(),
            "custom properties",
        ),
        (
            alice.call.set_properties(record).await.unwrap(),
            "recording",
        ),
    ];
    for (op, what) in checks {
        assert_eq!(
            refused(&alice.call, op).await,
            ErrorCode::MissingGrant,
            "{what}"
        );
    }
    // The defaults allow messages and screen sharing.
    done(
        &alice.call,
        alice
            .call
            .send_message(None, "text/plain", "hi")
            .await
            .unwrap(),
    )
    .await;

    // A listener's token allows neither.
    let listener = AccessToken::new("lee")
        .grants(Grants::none())
        .sign(SECRET)
        .unwrap();
    let lee = User::connect_url(&server.url(), listener).await;
    let mut lee = lee;
    lee.join("r").await;
    let op = lee
        .call
        .send_message(None, "text/plain", "hi")
        .await
        .unwrap();
    assert_eq!(refused(&lee.call, op).await, ErrorCode::MissingGrant);
    let share = PropertyUpdate {
        screen_share: Some(Some(ScreenShare {
            user_id: "lee".into(),
            stream_id: "s".into(),
        })),
        ..Default::default()
    };
    let op = lee.call.set_properties(share).await.unwrap();
    assert_eq!(refused(&lee.call, op).await, ErrorCode::MissingGrant);
    assert_eq!(alice.call.room().unwrap().properties.screen_share, None);
}

#[tokio::test]
async fn a_host_token_makes_a_host_in_any_room() {
    let server = server().await;
    let gus = AccessToken::new("gus")
        .grants(Grants::default().create(true))
        .sign(SECRET)
        .unwrap();
    let mut guest = User::connect_url(&server.url(), gus).await;
    assert_eq!(
        guest.join("r").await.participants[0].role,
        Role::Host,
        "the first member hosts"
    );
    let host = AccessToken::new("hana")
        .role(Role::Host)
        .grants(Grants::all())
        .sign(SECRET)
        .unwrap();
    let mut hana = User::connect_url(&server.url(), host).await;
    let snap = hana.join("r").await;
    assert_eq!(snap.participant("hana").unwrap().role, Role::Host);
    done(&hana.call, hana.call.kick("gus").await.unwrap()).await;
}

#[tokio::test]
async fn server_limits_refuse_with_typed_errors() {
    let limits = unlimited()
        .max_participants(2)
        .max_rooms(1)
        .max_connections_per_user(2);
    let server = crate::support::builder()
        .limits(limits)
        .start()
        .await
        .unwrap();
    let users = room_of(&server, "r", &["alice", "bob"]).await;
    let carol = User::connect(&server, "carol").await;
    let op = carol.call.join("r", JoinOptions::default()).await.unwrap();
    assert_eq!(refused(&carol.call, op).await, ErrorCode::RoomFull);
    let op = carol.call.join("s", JoinOptions::default()).await.unwrap();
    assert_eq!(refused(&carol.call, op).await, ErrorCode::TooManyRooms);
    // A third connection of one user.
    let _second = User::connect(&server, "alice").await;
    match Call::connect(&server.url(), crate::support::token(&server, "alice")).await {
        Err(CallError::Rejected(e)) => assert_eq!(e.code, ErrorCode::TooManyConnections),
        other => panic!("{other:?}"),
    }
    // The members were not disturbed.
    done(
        &users[0].call,
        users[0]
            .call
            .send_message(None, "t", "still fine")
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_server_refuses_to_start_without_a_proper_secret() {
    let err = jrtc::Server::builder().start().await.unwrap_err();
    assert!(matches!(err, jrtc::ServerError::NoSecret), "{err}");
    let err = jrtc::Server::builder()
        .secret("short")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, jrtc::ServerError::WeakSecret), "{err}");
    let err = AccessToken::new("alice").sign(b"short").unwrap_err();
    assert_eq!(err, jrtc::TokenError::WeakSecret);
    let err = AccessToken::new("not valid!").sign(SECRET).unwrap_err();
    assert!(matches!(err, jrtc::TokenError::InvalidUserId(_)));
    // A development server makes its own secret: tokens minted elsewhere do not work there.
    let dev = jrtc::Server::builder().development().start().await.unwrap();
    let foreign = AccessToken::new("alice").sign(SECRET).unwrap();
    assert_eq!(login_refused(&dev, &foreign).await, ErrorCode::BadSignature);
}

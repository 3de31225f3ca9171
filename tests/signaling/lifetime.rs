//! Token lifetimes: a session ends when its token expires unless it was refreshed (by the
//! application or by the call's token provider), tokens valid for too long are refused, and
//! revoked tokens are refused and end their sessions.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use jrtc::{
    AccessToken, CallError, CallEvent, CallOptions, ErrorCode, Grants, Limits, Reason, Revocation,
    ServerHandle, TokenProvider,
};

use crate::support::{User, builder, done, refused, room_of, unlimited};

fn short(server: &ServerHandle, user: &str, ttl: Duration) -> String {
    server
        .mint(&AccessToken::new(user).grants(Grants::all()).ttl(ttl))
        .unwrap()
}

/// Reads `user`'s events until `Closed`; returns the reason of its `Left` (if it was in a room)
/// and of `Closed`.
async fn until_closed(user: &mut User, within: Duration) -> (Option<Reason>, Reason) {
    let mut left = None;
    loop {
        let event = tokio::time::timeout(within, user.events.next())
            .await
            .expect("the call closes in time")
            .expect("Closed comes before the end");
        match event {
            CallEvent::Left { reason, .. } => left = Some(reason),
            CallEvent::Closed { reason } => return (left, reason),
            _ => {}
        }
    }
}

async fn login_refused(server: &ServerHandle, token: String) -> ErrorCode {
    match jrtc::Call::connect(&server.url(), token).await {
        Err(CallError::Rejected(e)) => e.code,
        other => panic!("expected a refused login, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_its_token_expires_unless_it_is_refreshed() {
    let server = builder().start().await.unwrap();
    let mut users = room_of(&server, "r", &["hana"]).await;
    let mut hana = users.pop().unwrap();
    let ttl = Duration::from_secs(3);

    // Alice does nothing about her token; Bob refreshes his by hand; Carol's call has a token
    // provider and refreshes by itself.
    let mut alice = User::connect_url(&server.url(), short(&server, "alice", ttl)).await;
    let mut bob = User::connect_url(&server.url(), short(&server, "bob", ttl)).await;
    let long = server
        .mint(&AccessToken::new("carol").grants(Grants::all()))
        .unwrap();
    let provided = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let count = provided.clone();
    let provider = TokenProvider::new(move || {
        let token = long.clone();
        *count.lock().unwrap() += 1;
        async move { Ok(token) }
    });
    let mut carol = User::connect_with(
        &server.url(),
        short(&server, "carol", ttl),
        CallOptions::default().token_provider(provider),
    )
    .await;
    for user in [&mut alice, &mut bob, &mut carol] {
        user.join("r").await;
    }
    let expires = alice.call.token_expires_at().unwrap();
    assert!(expires <= SystemTime::now() + ttl);
    // When the first tokens of bob and carol expire (minted a moment after alice's).
    let first_expiry = [&bob, &carol]
        .iter()
        .map(|u| u.call.token_expires_at().unwrap())
        .fold(expires, SystemTime::max);

    let refreshed = server
        .mint(&AccessToken::new("bob").grants(Grants::all()))
        .unwrap();
    let op = bob.call.refresh_token(refreshed).await.unwrap();
    done(&bob.call, op).await;
    assert!(bob.call.token_expires_at().unwrap() > SystemTime::now() + Duration::from_secs(3000));

    // Alice's session ends at expiry, with the reason, in order: out of the room, then closed.
    let (left, closed) = until_closed(&mut alice, Duration::from_secs(6)).await;
    let late = SystemTime::now()
        .duration_since(expires)
        .unwrap_or_default();
    println!(
        "session closed {} ms after its token's expiry",
        late.as_millis()
    );
    assert_eq!(left, Some(Reason::TokenExpired));
    assert_eq!(closed, Reason::TokenExpired);

    // The others saw her go for that reason (the first departure they saw)…
    loop {
        if let CallEvent::Participant(jrtc::ParticipantEvent::Left {
            participant,
            reason,
            ..
        }) = crate::support::next(&mut hana.events).await
        {
            assert_eq!(
                (participant.user_id.as_str(), reason),
                ("alice", Reason::TokenExpired)
            );
            break;
        }
    }
    // …and once the others' first tokens are past their expiry too, they are still in the call.
    let past = first_expiry
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(past + Duration::from_millis(100)).await;
    let room = hana.call.room().unwrap();
    assert!(room.participant("bob").is_some(), "bob refreshed by hand");
    assert!(
        room.participant("carol").is_some(),
        "carol's call refreshed"
    );
    assert_eq!(*provided.lock().unwrap(), 1);
    assert!(carol.call.token_expires_at().unwrap() > SystemTime::now() + Duration::from_secs(3000));
    for user in [&bob, &carol] {
        let op = user
            .call
            .send_message(None, "text/plain", "still here")
            .await
            .unwrap();
        done(&user.call, op).await;
    }
}

#[tokio::test]
async fn a_refresh_must_be_for_the_same_user_and_a_valid_token() {
    let server = builder()
        .limits(unlimited().max_token_lifetime(Duration::from_secs(7 * 3600)))
        .start()
        .await
        .unwrap();
    let mut users = room_of(&server, "r", &["alice"]).await;
    let alice = users.pop().unwrap();
    let before = alice.call.token_expires_at().unwrap();
    let cases = [
        (
            AccessToken::new("bob").grants(Grants::all()),
            ErrorCode::WrongUser,
        ),
        (
            AccessToken::new("alice").ttl(Duration::from_secs(8 * 3600)),
            ErrorCode::TokenTooLongLived,
        ),
        (
            AccessToken::new("alice").room("elsewhere"),
            ErrorCode::WrongRoom,
        ),
    ];
    for (token, code) in cases {
        let op = alice
            .call
            .refresh_token(server.mint(&token).unwrap())
            .await
            .unwrap();
        assert_eq!(refused(&alice.call, op).await, code);
    }
    let op = alice.call.refresh_token("not a token").await.unwrap();
    assert_eq!(refused(&alice.call, op).await, ErrorCode::InvalidToken);
    assert_eq!(
        alice.call.token_expires_at().unwrap(),
        before,
        "a refused refresh changes nothing"
    );
}

#[tokio::test]
async fn tokens_valid_for_longer_than_the_server_allows_are_refused() {
    let server = builder()
        .limits(Limits::default().max_token_lifetime(Duration::from_secs(3600)))
        .start()
        .await
        .unwrap();
    let mint = |ttl: u64| {
        server
            .mint(&AccessToken::new("alice").ttl(Duration::from_secs(ttl)))
            .unwrap()
    };
    assert_eq!(
        login_refused(&server, mint(7200)).await,
        ErrorCode::TokenTooLongLived
    );
    // `exp` at the end of time.
    let forever = server
        .mint(
            &AccessToken::new("alice")
                .expires_at(SystemTime::UNIX_EPOCH + Duration::from_secs(u32::MAX as u64 * 4)),
        )
        .unwrap();
    assert_eq!(
        login_refused(&server, forever).await,
        ErrorCode::TokenTooLongLived
    );
    jrtc::Call::connect(&server.url(), mint(1800))
        .await
        .expect("a token within the limit logs in");
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_end_their_sessions() {
    let server = builder().start().await.unwrap();
    let mut users = room_of(&server, "r", &["hana"]).await;
    let mut hana = users.pop().unwrap();
    let marked = server
        .mint(&AccessToken::new("mallory").id("t-1").grants(Grants::all()))
        .unwrap();
    let mut mallory = User::connect_url(&server.url(), marked.clone()).await;
    mallory.join("r").await;
    assert!(matches!(
        hana.next().await,
        CallEvent::Participant(jrtc::ParticipantEvent::Joined { .. })
    ));

    let started = Instant::now();
    assert_eq!(server.revoke(Revocation::token("t-1")).unwrap(), 1);
    assert!(matches!(
        server.revoke(Revocation::token("")),
        Err(jrtc::ServerError::Refused {
            code: ErrorCode::InvalidParam,
            ..
        })
    ));
    let (left, closed) = until_closed(&mut mallory, Duration::from_secs(5)).await;
    println!(
        "revoked session closed in {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(
        (left, closed),
        (Some(Reason::TokenRevoked), Reason::TokenRevoked)
    );
    assert_eq!(
        hana.participant_left().await,
        ("mallory".to_owned(), Reason::TokenRevoked)
    );
    assert_eq!(
        login_refused(&server, marked).await,
        ErrorCode::TokenRevoked
    );

    // Another token of the user still works, until all of the user's tokens issued before now
    // are revoked, by an admin over the protocol.
    let other = server
        .mint(&AccessToken::new("mallory").grants(Grants::host()))
        .unwrap();
    let mut mallory = User::connect_url(&server.url(), other.clone()).await;
    let op = mallory.call.revoke(Revocation::token("x")).await.unwrap();
    assert_eq!(refused(&mallory.call, op).await, ErrorCode::MissingGrant);
    let admin = server
        .mint(&AccessToken::new("ops").grants(Grants::none().admin(true)))
        .unwrap();
    let admin = User::connect_url(&server.url(), admin).await;
    let cutoff = SystemTime::now() + Duration::from_secs(1);
    let op = admin
        .call
        .revoke(Revocation::user_before("mallory", cutoff))
        .await
        .unwrap();
    done(&admin.call, op).await;
    mallory.events = mallory.call.events();
    let (_, closed) = until_closed(&mut mallory, Duration::from_secs(5)).await;
    assert_eq!(closed, Reason::TokenRevoked);
    assert_eq!(login_refused(&server, other).await, ErrorCode::TokenRevoked);
    assert!(
        admin.call.closed_reason().is_none(),
        "other users are untouched"
    );
}

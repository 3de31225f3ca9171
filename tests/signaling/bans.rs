//! Bans and room-creation rights: a kicked-and-banned user stays out on every path (the same
//! connection, a new one, a new token, an invitation, the room made again), hosts list and lift
//! bans, and only holders of the `create` grant make rooms.

use std::time::Duration;

use jrtc::{
    AccessToken, BanTerm, CallEvent, ErrorCode, Grants, InviteOptions, JoinOptions, Outcome,
    Reason, Role, ServerHandle,
};

use crate::support::{User, done, refused, room_of, server};

fn token_with(server: &ServerHandle, user: &str, grants: Grants) -> String {
    server.mint(&AccessToken::new(user).grants(grants)).unwrap()
}

async fn join_refused(user: &User, room: &str) -> ErrorCode {
    let op = user.call.join(room, JoinOptions::default()).await.unwrap();
    refused(&user.call, op).await
}

#[tokio::test]
async fn a_banned_user_is_refused_on_every_path() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["hana", "mallory", "gus"]).await;
    let mut gus = users.pop().unwrap();
    let mut mallory = users.pop().unwrap();
    let mut hana = users.pop().unwrap();

    // A guest cannot ban.
    let op = mallory
        .call
        .ban("gus", BanTerm::lasting(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        refused(&mallory.call, op).await,
        ErrorCode::PermissionDenied
    );
    mallory.events = mallory.call.events();

    let op = hana
        .call
        .ban("mallory", BanTerm::lasting(Duration::from_secs(60)))
        .await
        .unwrap();
    done(&hana.call, op).await;
    assert_eq!(
        hana.participant_left().await,
        ("mallory".to_owned(), Reason::Kicked)
    );
    assert_eq!(
        gus.participant_left().await,
        ("mallory".to_owned(), Reason::Kicked)
    );
    match mallory.next().await {
        CallEvent::Left { reason, .. } => assert_eq!(reason, Reason::Kicked),
        other => panic!("expected Left, got {other:?}"),
    }

    // The same connection, a new connection, a new token: all refused.
    assert_eq!(join_refused(&mallory, "r").await, ErrorCode::Banned);
    let again = User::connect(&server, "mallory").await;
    assert_eq!(join_refused(&again, "r").await, ErrorCode::Banned);
    let fresh = token_with(&server, "mallory", Grants::all());
    let fresh = User::connect_url(&server.url(), fresh).await;
    assert_eq!(join_refused(&fresh, "r").await, ErrorCode::Banned);

    // An invitation reaches the banned user, but accepting it is refused, and the refusal
    // changes nothing: the invitation stays open and gus stays in the room.
    let op = hana
        .call
        .invite(&["mallory"], InviteOptions::default())
        .await
        .unwrap();
    let Outcome::Invited(report) = done(&hana.call, op).await else {
        panic!("an invite report");
    };
    let invitation = report.invitations[0].id;
    let op = mallory.call.accept_invite(invitation, false).await.unwrap();
    assert_eq!(refused(&mallory.call, op).await, ErrorCode::Banned);
    assert!(
        mallory
            .call
            .invitations()
            .iter()
            .any(|i| i.id == invitation)
    );
    done(
        &hana.call,
        hana.call.cancel_invite(invitation).await.unwrap(),
    )
    .await;

    // The host lists the ban.
    let op = hana.call.list_bans().await.unwrap();
    let Outcome::Bans(bans) = done(&hana.call, op).await else {
        panic!("a ban list");
    };
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].user_id, "mallory");
    assert_eq!(bans[0].by, "hana");
    assert!(bans[0].until_ms.is_some());

    // Everyone leaves: the room is gone, but the timed ban is not, so mallory (who may create
    // rooms) cannot make it again.
    for user in [&hana, &gus] {
        done(&user.call, user.call.leave().await.unwrap()).await;
    }
    assert_eq!(server.room_count(), 0);
    assert_eq!(join_refused(&fresh, "r").await, ErrorCode::Banned);

    // Made again by its host, the room still holds the ban; lifted, mallory gets in.
    hana.events = hana.call.events();
    hana.join("r").await;
    let op = hana.call.unban("mallory").await.unwrap();
    done(&hana.call, op).await;
    let op = hana.call.unban("mallory").await.unwrap();
    assert_eq!(refused(&hana.call, op).await, ErrorCode::NotBanned);
    mallory.events = mallory.call.events();
    mallory.join("r").await;
}

#[tokio::test]
async fn a_ban_for_the_room_ends_with_the_room_and_a_ban_needs_no_presence() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["hana", "bob"]).await;
    let bob = users.pop().unwrap();
    let hana = users.pop().unwrap();
    // Banned before they ever came: only the ban is made.
    done(
        &hana.call,
        hana.call.ban("mallory", BanTerm::room()).await.unwrap(),
    )
    .await;
    let mallory = User::connect(&server, "mallory").await;
    assert_eq!(join_refused(&mallory, "r").await, ErrorCode::Banned);
    // Only user ids can be banned: no storing of arbitrary strings.
    let op = hana
        .call
        .ban(&"x".repeat(1000), BanTerm::room())
        .await
        .unwrap();
    assert_eq!(refused(&hana.call, op).await, ErrorCode::InvalidParam);
    // A host cannot ban itself; bad terms are refused before anything changes.
    let op = hana.call.ban("hana", BanTerm::room()).await.unwrap();
    assert_eq!(refused(&hana.call, op).await, ErrorCode::InvalidParam);
    let op = hana
        .call
        .ban(
            "bob",
            BanTerm::lasting(Duration::from_secs(400 * 24 * 3600)),
        )
        .await
        .unwrap();
    assert_eq!(refused(&hana.call, op).await, ErrorCode::InvalidParam);
    assert!(hana.call.room().unwrap().participant("bob").is_some());

    // The host ends the call: the room is over, and its bans "for the room" with it.
    done(&hana.call, hana.call.end().await.unwrap()).await;
    drop(bob);
    let mut mallory = mallory;
    mallory.events = mallory.call.events();
    let snap = mallory.join("r").await;
    assert_eq!(snap.participants[0].role, Role::Host, "a new room, theirs");
}

#[tokio::test]
async fn without_the_create_grant_only_rooms_that_exist_can_be_joined() {
    let server = server().await;
    let guest = |user: &str| token_with(&server, user, Grants::default());
    let mut gus = User::connect_url(&server.url(), guest("gus")).await;
    assert_eq!(join_refused(&gus, "r").await, ErrorCode::NoSuchRoom);
    let op = gus.call.join_new(JoinOptions::default()).await.unwrap();
    assert_eq!(refused(&gus.call, op).await, ErrorCode::NoSuchRoom);
    let _bob = User::connect(&server, "bob").await;
    let op = gus
        .call
        .invite(&["bob"], InviteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        refused(&gus.call, op).await,
        ErrorCode::NoSuchRoom,
        "an invite from outside a room makes one"
    );
    assert_eq!(server.room_count(), 0);

    // A room someone with the grant made can be joined…
    let mut hana = User::connect(&server, "hana").await;
    hana.join("r").await;
    gus.events = gus.call.events();
    let snap = gus.join("r").await;
    assert_eq!(snap.participant("gus").unwrap().role, Role::Guest);
    // …and once its host ends it, it cannot be made again by a guest who stays behind.
    done(&hana.call, hana.call.end().await.unwrap()).await;
    gus.events = gus.call.events();
    assert_eq!(join_refused(&gus, "r").await, ErrorCode::NoSuchRoom);
}

#[tokio::test]
async fn a_host_of_claim_makes_a_host_in_that_room_only() {
    let server = server().await;
    let mut users = room_of(&server, "board", &["alice"]).await;
    let mut other = room_of(&server, "lobby", &["bob"]).await;
    let claimed = server
        .mint(&AccessToken::new("hana").host_of("board"))
        .unwrap();
    let mut hana = User::connect_url(&server.url(), claimed).await;
    let snap = hana.join("board").await;
    assert_eq!(snap.participant("hana").unwrap().role, Role::Host);
    assert_eq!(snap.participant("alice").unwrap().role, Role::Host);
    done(&hana.call, hana.call.leave().await.unwrap()).await;
    hana.events = hana.call.events();
    let snap = hana.join("lobby").await;
    assert_eq!(snap.participant("hana").unwrap().role, Role::Guest);
    drop((users.pop(), other.pop()));
}

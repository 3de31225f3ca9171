//! Call properties: custom keys, recording, screen share.

use jrtc::{CallEvent, ErrorCode, PropertyEvent, PropertyUpdate, ScreenShare};

use crate::support::{User, done, refused, room_of, server};

fn custom(key: &str, value: Option<&str>) -> PropertyUpdate {
    let mut update = PropertyUpdate::default();
    update.custom.insert(key.into(), value.map(str::to_owned));
    update
}

fn share(user: &str) -> PropertyUpdate {
    PropertyUpdate {
        screen_share: Some(Some(ScreenShare {
            user_id: user.into(),
            stream_id: format!("{user}-screen"),
        })),
        ..Default::default()
    }
}

/// The next property change, skipping the outcomes of the user's own requests (awaited with
/// `done` or `refused`).
async fn expect_change(u: &mut User) -> (jrtc::CallProperties, jrtc::PropertyChanges, String) {
    loop {
        match u.next().await {
            CallEvent::Property(PropertyEvent::Changed {
                properties,
                changes,
                by,
                ..
            }) => {
                return (properties, changes, by.to_string());
            }
            CallEvent::Completed { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn the_host_sets_custom_properties_and_everyone_sees_them() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    done(
        &users[0].call,
        users[0]
            .call
            .set_properties(custom("topic", Some("budget")))
            .await
            .unwrap(),
    )
    .await;
    for u in &mut users {
        let (props, changes, by) = expect_change(u).await;
        assert_eq!(
            props.custom.get("topic").map(String::as_str),
            Some("budget")
        );
        assert_eq!(changes.custom, ["topic"]);
        assert!(!changes.screen_share && !changes.recording);
        assert_eq!(by, "alice");
    }
    done(
        &users[0].call,
        users[0]
            .call
            .set_properties(custom("topic", None))
            .await
            .unwrap(),
    )
    .await;
    for u in &mut users {
        let (props, changes, _) = expect_change(u).await;
        assert!(props.custom.is_empty());
        assert_eq!(changes.custom, ["topic"]);
    }
    // A late joiner finds the properties in its snapshot.
    done(
        &users[0].call,
        users[0]
            .call
            .set_properties(custom("mode", Some("qa")))
            .await
            .unwrap(),
    )
    .await;
    let mut dave = User::connect(&server, "dave").await;
    let snap = dave.join("r").await;
    assert_eq!(
        snap.properties.custom.get("mode").map(String::as_str),
        Some("qa")
    );
}

#[tokio::test]
async fn guests_may_not_set_custom_properties_or_record() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    let op = users[1]
        .call
        .set_properties(custom("topic", Some("x")))
        .await
        .unwrap();
    assert_eq!(
        refused(&users[1].call, op).await,
        ErrorCode::PermissionDenied
    );
    let rec = PropertyUpdate {
        recording: Some(true),
        ..Default::default()
    };
    let op = users[1].call.set_properties(rec.clone()).await.unwrap();
    assert_eq!(
        refused(&users[1].call, op).await,
        ErrorCode::PermissionDenied
    );
    users[2].assert_quiet().await;

    // Not even a host sets the recording state: it follows the recorder (start_recording).
    let op = users[0].call.set_properties(rec).await.unwrap();
    assert_eq!(refused(&users[0].call, op).await, ErrorCode::InvalidParam);
    users[2].assert_quiet().await;
    // Oversized values are refused whole.
    let op = users[0]
        .call
        .set_properties(custom("big", Some(&"x".repeat(2000))))
        .await
        .unwrap();
    assert_eq!(refused(&users[0].call, op).await, ErrorCode::InvalidParam);
    users[2].assert_quiet().await;
}

#[tokio::test]
async fn one_screen_sharer_at_a_time() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
    done(
        &users[1].call,
        users[1].call.set_properties(share("bob")).await.unwrap(),
    )
    .await;
    for u in &mut users {
        let (props, changes, by) = expect_change(u).await;
        assert!(changes.screen_share);
        assert_eq!(props.screen_share.unwrap().user_id, "bob");
        assert_eq!(by, "bob");
    }
    // Carol may not take over, nor name someone else as sharer.
    let op = users[2].call.set_properties(share("carol")).await.unwrap();
    assert_eq!(
        refused(&users[2].call, op).await,
        ErrorCode::ScreenShareBusy
    );
    let op = users[2].call.set_properties(share("alice")).await.unwrap();
    assert_eq!(
        refused(&users[2].call, op).await,
        ErrorCode::PermissionDenied
    );
    // Nor stop Bob's share.
    let stop = PropertyUpdate {
        screen_share: Some(None),
        ..Default::default()
    };
    let op = users[2].call.set_properties(stop.clone()).await.unwrap();
    assert_eq!(
        refused(&users[2].call, op).await,
        ErrorCode::PermissionDenied
    );
    users[0].assert_quiet().await;

    // Bob stops; carol starts; carol leaving ends her share for everyone.
    done(
        &users[1].call,
        users[1].call.set_properties(stop).await.unwrap(),
    )
    .await;
    for u in &mut users {
        assert!(expect_change(u).await.0.screen_share.is_none());
    }
    done(
        &users[2].call,
        users[2].call.set_properties(share("carol")).await.unwrap(),
    )
    .await;
    for u in &mut users {
        expect_change(u).await;
    }
    done(&users[2].call, users[2].call.leave().await.unwrap()).await;
    for u in &mut users[..2] {
        loop {
            match u.next().await {
                CallEvent::Completed { .. } => {}
                CallEvent::Participant(_) => break,
                other => panic!("{other:?}"),
            }
        }
        let (props, changes, _) = expect_change(u).await;
        assert!(changes.screen_share && props.screen_share.is_none());
    }
}

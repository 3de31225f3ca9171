//! The server API over real HTTP: every call, and its refusals.

// `support::heavy()` is held for a whole test: each test has a runtime of its own, so waiting
// on it blocks only that test's thread.
#![allow(clippy::await_holding_lock)]

use std::time::Duration;

use jrtc::{AccessToken, CallEvent, Grants, ServerHandle, TrackSource};
use serde_json::{Value, json};

use crate::support::{User, WAIT, builder, room_of};

/// A server API client for one server and token.
pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client with an admin token (user `backend`).
    pub fn admin(server: &ServerHandle) -> Api {
        let token = server
            .mint(&AccessToken::new("backend").grants(Grants::none().admin(true)))
            .unwrap();
        Api::with(server, Some(token))
    }

    pub fn with(server: &ServerHandle, token: Option<String>) -> Api {
        Api {
            base: server.http_url(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with a JSON body (or none): the status and the JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
        (status, value)
    }

    /// A call that must succeed.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {value}");
        value
    }

    /// A call that must be refused with `status` and `code`.
    pub async fn refused(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let (got, value) = self.call(method, path, body).await;
        assert_eq!(
            (got, value["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {value}"
        );
    }
}

#[tokio::test]
async fn the_api_needs_an_admin_token() {
    let server = builder().start().await.unwrap();
    Api::with(&server, None)
        .refused("GET", "/api/rooms", None, 401, "invalid_token")
        .await;
    Api::with(&server, Some("not a token".into()))
        .refused("GET", "/api/rooms", None, 401, "invalid_token")
        .await;
    let host = server
        .mint(&AccessToken::new("carol").grants(Grants::host()))
        .unwrap();
    Api::with(&server, Some(host))
        .refused("GET", "/api/rooms", None, 403, "missing_grant")
        .await;
    let other = jrtc::Server::builder()
        .development()
        .bind("127.0.0.1:0")
        .start()
        .await
        .unwrap();
    // Signed with another server's secret.
    let foreign = other
        .mint(&AccessToken::new("backend").grants(Grants::none().admin(true)))
        .unwrap();
    Api::with(&server, Some(foreign))
        .refused("GET", "/api/rooms", None, 401, "bad_signature")
        .await;
    let api = Api::admin(&server);
    assert_eq!(
        api.ok("GET", "/api/rooms", None).await,
        json!({ "rooms": [] })
    );
    // Bodies are checked before anything is done.
    api.refused(
        "POST",
        "/api/rooms",
        Some(json!({ "room": "x", "colour": "red" })),
        400,
        "invalid_frame",
    )
    .await;
    let (status, value) = api.call("GET", "/api/rooms", None).await;
    assert_eq!((status, value), (200, json!({ "rooms": [] })));
    let page = crate::operations::scrape(&server).await;
    assert_eq!(
        crate::operations::value(&page, "jrtc_api_requests_total{kind=\"missing_grant\"}"),
        1.0
    );
}

#[tokio::test]
async fn rooms_are_made_listed_shown_and_ended() {
    let server = builder().start().await.unwrap();
    let api = Api::admin(&server);
    let made = api
        .ok(
            "POST",
            "/api/rooms",
            Some(json!({ "room": "standup", "max_participants": 2, "empty_timeout_secs": 60 })),
        )
        .await;
    assert_eq!(made["room"], "standup");
    assert_eq!(made["managed"], true);
    assert_eq!(made["options"]["max_participants"], 2);
    api.refused(
        "POST",
        "/api/rooms",
        Some(json!({ "room": "standup" })),
        409,
        "room_exists",
    )
    .await;
    api.refused(
        "POST",
        "/api/rooms",
        Some(json!({ "room": "-bad" })),
        400,
        "invalid_param",
    )
    .await;
    api.refused(
        "POST",
        "/api/rooms",
        Some(json!({ "room": "zero", "max_participants": 0 })),
        400,
        "invalid_param",
    )
    .await;
    for bad in [
        json!({ "room": "loud", "speaker_threshold_dbov": 128 }),
        json!({ "room": "fast", "speaker_interval_ms": 10 }),
    ] {
        api.refused("POST", "/api/rooms", Some(bad), 400, "invalid_param")
            .await;
    }

    // A made room takes members without the create grant, up to its own size.
    let joiner = |id: &str| {
        server
            .mint(&AccessToken::new(id).grants(Grants::host().create(false)))
            .unwrap()
    };
    let mut alice = User::connect_url(&server.url(), joiner("alice")).await;
    alice.join("standup").await;
    let mut bob = User::connect_url(&server.url(), joiner("bob")).await;
    bob.join("standup").await;
    let carol = User::connect_url(&server.url(), joiner("carol")).await;
    let op = carol
        .call
        .join("standup", jrtc::JoinOptions::default())
        .await
        .unwrap();
    assert_eq!(
        crate::support::refused(&carol.call, op).await,
        jrtc::ErrorCode::RoomFull
    );

    let rooms = api.ok("GET", "/api/rooms", None).await;
    assert_eq!(rooms["rooms"][0]["room"], "standup");
    assert_eq!(rooms["rooms"][0]["participants"], 2);
    let room = api.ok("GET", "/api/rooms/standup", None).await;
    let ids: Vec<&str> = room["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert_eq!(room["participants"][0]["role"], "host");
    assert_eq!(room["properties"]["recording"]["state"], "idle");
    api.refused("GET", "/api/rooms/nowhere", None, 404, "no_such_room")
        .await;

    // Ended: everyone is out, the room is gone.
    assert_eq!(
        api.ok("DELETE", "/api/rooms/standup", None).await,
        json!({ "done": true })
    );
    for user in [&mut alice, &mut bob] {
        loop {
            match user.next().await {
                CallEvent::Left { reason, .. } => {
                    assert_eq!(reason, jrtc::Reason::Over);
                    break;
                }
                CallEvent::Participant(_) => {}
                other => panic!("expected the end, got {other:?}"),
            }
        }
    }
    api.refused("GET", "/api/rooms/standup", None, 404, "no_such_room")
        .await;
    api.refused("DELETE", "/api/rooms/standup", None, 404, "no_such_room")
        .await;
}

#[tokio::test]
async fn an_empty_made_room_goes_after_its_timeout() {
    let server = builder().start().await.unwrap();
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/api/rooms",
        Some(json!({ "room": "brief", "empty_timeout_secs": 1 })),
    )
    .await;
    let mut alice = User::connect(&server, "alice").await;
    alice.join("brief").await;
    // With a member it stays past its timeout.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    api.ok("GET", "/api/rooms/brief", None).await;
    let op = alice.call.leave().await.unwrap();
    crate::support::done(&alice.call, op).await;
    // Empty, it stays for its timeout, then goes.
    api.ok("GET", "/api/rooms/brief", None).await;
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = api.call("GET", "/api/rooms/brief", None).await;
        if status == 404 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "the empty room stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_backend_moderates_speaks_and_sets_properties() {
    let server = builder().embedded_recorder(false).start().await.unwrap();
    let api = Api::admin(&server);
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;

    // Properties: every member hears them, set by the backend.
    api.ok(
        "PATCH",
        "/api/rooms/r/properties",
        Some(json!({ "custom": { "topic": "planning" } })),
    )
    .await;
    for user in &mut users {
        match user.next().await {
            CallEvent::Property(jrtc::PropertyEvent::Changed { properties, by, .. }) => {
                assert_eq!(properties.custom["topic"], "planning");
                assert_eq!(by.as_str(), "backend");
            }
            other => panic!("expected the properties, got {other:?}"),
        }
    }
    // Messages to the room and to one member.
    let sent = api
        .ok(
            "POST",
            "/api/rooms/r/messages",
            Some(json!({ "content": "welcome" })),
        )
        .await;
    assert!(sent["seq"].is_u64());
    for user in &mut users {
        match user.next().await {
            CallEvent::Message(jrtc::MessageEvent::Received(m)) => {
                assert_eq!((m.from.as_str(), &*m.content), ("backend", "welcome"));
                assert_eq!(m.scope, jrtc::MessageScope::Group);
            }
            other => panic!("expected the message, got {other:?}"),
        }
    }
    api.ok(
        "POST",
        "/api/rooms/r/messages",
        Some(json!({ "to": "bob", "content_type": "application/json", "content": "{}" })),
    )
    .await;
    match users[1].next().await {
        CallEvent::Message(jrtc::MessageEvent::Received(m)) => {
            assert_eq!(m.scope, jrtc::MessageScope::OneToOne);
            assert_eq!(&*m.content_type, "application/json");
        }
        other => panic!("expected the message, got {other:?}"),
    }
    users[0].assert_quiet().await;
    api.refused(
        "POST",
        "/api/rooms/r/messages",
        Some(json!({ "to": "nobody", "content": "x" })),
        404,
        "no_such_participant",
    )
    .await;
    api.refused(
        "POST",
        "/api/rooms/r/messages",
        Some(json!({ "content": "x".repeat(5000) })),
        400,
        "message_too_large",
    )
    .await;

    // Recording: refused without a recorder; stopping nothing is refused.
    api.refused("POST", "/api/rooms/r/recording", None, 503, "no_recorder")
        .await;
    api.refused(
        "DELETE",
        "/api/rooms/r/recording",
        None,
        409,
        "not_recording",
    )
    .await;

    // Removing: carol is kicked; bob is banned and cannot come back.
    api.ok("POST", "/api/rooms/r/participants/carol/remove", None)
        .await;
    loop {
        match users[2].next().await {
            CallEvent::Left { reason, .. } => {
                assert_eq!(reason, jrtc::Reason::Kicked);
                break;
            }
            CallEvent::Participant(_) => {}
            other => panic!("expected carol's departure, got {other:?}"),
        }
    }
    api.ok(
        "POST",
        "/api/rooms/r/participants/bob/remove",
        Some(json!({ "ban": { "for_ms": 60000 } })),
    )
    .await;
    api.refused(
        "POST",
        "/api/rooms/r/participants/bob/remove",
        None,
        404,
        "no_such_participant",
    )
    .await;
    let bob = &users[1];
    let op = bob
        .call
        .join("r", jrtc::JoinOptions::default())
        .await
        .unwrap();
    // Bob's stream first says he was kicked (and carol left, seen before).
    let code = crate::support::refused(&bob.call, op).await;
    assert_eq!(code, jrtc::ErrorCode::Banned);
    let room = api.ok("GET", "/api/rooms/r", None).await;
    assert_eq!(room["participants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_backend_mutes_a_published_track() {
    // Real media and recording: not beside the timing-sensitive namespace tests.
    let _turn = crate::support::heavy();
    let server = builder().start().await.unwrap();
    let api = Api::admin(&server);
    let mut users = room_of(&server, "m", &["alice", "bob"]).await;
    let mic = users[0]
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let pump = crate::operations::pump(mic);
    // Alice's publication reaches both (once her media reaches the server).
    for user in &mut users {
        loop {
            if let CallEvent::Media(jrtc::MediaEvent::Published { .. }) = user.next().await {
                break;
            }
        }
    }
    api.refused(
        "POST",
        "/api/rooms/m/participants/alice/mute",
        Some(json!({ "source": "camera" })),
        404,
        "no_such_track",
    )
    .await;
    api.ok(
        "POST",
        "/api/rooms/m/participants/alice/mute",
        Some(json!({ "source": "microphone" })),
    )
    .await;
    for user in &mut users {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(end, user.next()).await.unwrap();
            if let CallEvent::Media(jrtc::MediaEvent::Muted { publication, .. }) = event {
                assert_eq!(publication.id, "alice/microphone");
                break;
            }
        }
    }
    let room = api.ok("GET", "/api/rooms/m", None).await;
    assert_eq!(room["publications"][0]["muted"], true);
    pump.abort();
}

#[tokio::test]
async fn the_rust_client_calls_the_api_with_typed_answers_and_refusals() {
    let server = builder().start().await.unwrap();
    let token = server
        .mint(&AccessToken::new("backend").grants(Grants::none().admin(true)))
        .unwrap();
    let api = jrtc::ServerApi::new(&server.http_url(), token).unwrap();
    let made = api
        .create_room("typed", jrtc::RoomOptions::default().max_participants(3))
        .await
        .unwrap();
    assert_eq!(made.options.max_participants, Some(3));
    match api.create_room("typed", Default::default()).await {
        Err(jrtc::ApiError::Refused { status, code, .. }) => {
            assert_eq!((status, code), (409, jrtc::ErrorCode::RoomExists))
        }
        other => panic!("expected room_exists, got {other:?}"),
    }
    assert!(matches!(
        api.room("no room").await,
        Err(jrtc::ApiError::InvalidId { .. })
    ));
    let mut users = room_of(&server, "typed", &["alice", "bob"]).await;
    let seq = api
        .send_message("typed", None, "text/plain", "hello")
        .await
        .unwrap();
    assert!(seq.is_some());
    for user in &mut users {
        assert!(matches!(user.next().await, CallEvent::Message(_)));
    }
    let rooms = api.list_rooms().await.unwrap();
    assert_eq!((rooms.len(), rooms[0].participants), (1, 2));
    api.set_properties("typed", [("k".to_owned(), Some("v".to_owned()))].into())
        .await
        .unwrap();
    api.remove_participant("typed", "bob", Some(jrtc::BanTerm::room()))
        .await
        .unwrap();
    assert_eq!(api.room("typed").await.unwrap().participants.len(), 1);
    api.end_room("typed").await.unwrap();
    assert!(matches!(
        api.room("typed").await,
        Err(jrtc::ApiError::Refused { status: 404, .. })
    ));
    // A wrong address is an HTTP error, not a refusal.
    let nowhere = jrtc::ServerApi::new("http://127.0.0.1:1", "t").unwrap();
    assert!(matches!(
        nowhere.list_rooms().await,
        Err(jrtc::ApiError::Http(_))
    ));
    assert!(jrtc::ServerApi::new("ftp://x", "t").is_err());
}

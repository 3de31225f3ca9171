//! The event-stream rules: no silent loss, snapshot then deltas, order, end of stream, no leaks.

use std::time::Duration;

use futures::StreamExt;
use jrtc::{
    Call, CallEvent, CallOptions, MessageEvent, ParticipantEvent, ParticipantUpdate, Reason,
    RoomSnapshot,
};

use crate::support::{User, WAIT, done, next, room_of, server, token};

/// The room sequence number an event carries, if any.
fn seq_of(ev: &CallEvent) -> Option<u64> {
    match ev {
        CallEvent::Participant(
            ParticipantEvent::Joined { seq, .. }
            | ParticipantEvent::Left { seq, .. }
            | ParticipantEvent::Updated { seq, .. },
        ) => Some(*seq),
        CallEvent::Property(jrtc::PropertyEvent::Changed { seq, .. }) => Some(*seq),
        CallEvent::Message(MessageEvent::Received(m)) => m.seq,
        _ => None,
    }
}

#[tokio::test]
async fn rule1_a_slow_subscriber_is_told_how_many_it_missed() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob"]).await;
    let bob = Call::connect_with(
        &server.url(),
        token(&server, "carol"),
        CallOptions::default().event_capacity(4),
    )
    .await
    .unwrap();
    let mut slow = bob.events();
    let mut fast = bob.events();
    let mut slow_chat = bob.events().messages();
    let op = bob.join("r", Default::default()).await.unwrap();
    assert!(matches!(next(&mut fast).await, CallEvent::Joined { op: got, .. } if got == op));
    for u in &mut users {
        u.next().await;
    }
    // 20 messages while `slow` reads nothing; `fast` reads each as it comes.
    for i in 0..20 {
        let op = users[0]
            .call
            .send_message(None, "text/plain", format!("m{i}"))
            .await
            .unwrap();
        done(&users[0].call, op).await;
        match next(&mut fast).await {
            CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content, format!("m{i}")),
            other => panic!("{other:?}"),
        }
    }
    // 21 events were published (the join and 20 messages); a queue of 4 kept the last 4.
    match next(&mut slow).await {
        CallEvent::Lagged { missed } => assert_eq!(missed, 17),
        other => panic!("{other:?}"),
    }
    for i in 16..20 {
        match next(&mut slow).await {
            CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content, format!("m{i}")),
            other => panic!("{other:?}"),
        }
    }
    // The typed sub-stream reports the loss as an error item, then goes on.
    let lagged = tokio::time::timeout(WAIT, slow_chat.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lagged.unwrap_err().missed, 17);
    let m = tokio::time::timeout(WAIT, slow_chat.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(m, MessageEvent::Received(m) if m.content == "m16"));
    // The lag cost nothing else: the room view is whole.
    assert_eq!(bob.room().unwrap().participants.len(), 3);
}

/// Applies a room event to a snapshot, as an application keeping its own roster would.
fn apply(snapshot: &mut RoomSnapshot, ev: &CallEvent) {
    match ev {
        CallEvent::Participant(ParticipantEvent::Joined { participant, .. }) => {
            snapshot.participants.push(participant.clone())
        }
        CallEvent::Participant(ParticipantEvent::Left { participant, .. }) => snapshot
            .participants
            .retain(|p| p.user_id != participant.user_id),
        CallEvent::Participant(ParticipantEvent::Updated { participant, .. }) => {
            for p in &mut snapshot.participants {
                if p.user_id == participant.user_id {
                    *p = participant.clone();
                }
            }
        }
        _ => {}
    }
    if let Some(seq) = seq_of(ev) {
        snapshot.seq = seq;
    }
}

#[tokio::test]
async fn rule2_subscribe_gives_a_snapshot_and_then_exactly_the_later_events() {
    let server = server().await;
    let users = room_of(&server, "r", &["alice"]).await;
    // Churn: others join, update and leave the room while alice subscribes at several moments.
    let url = server.url();
    let tokens: Vec<_> = (0..15)
        .map(|i| token(&server, &format!("guest{i}")))
        .collect();
    let churn = tokio::spawn(async move {
        for token in tokens {
            let mut u = User::connect_url(&url, token).await;
            u.join("r").await;
            let op = u
                .call
                .update(ParticipantUpdate {
                    audio: Some(true),
                    ..Default::default()
                })
                .await
                .unwrap();
            done(&u.call, op).await;
            done(&u.call, u.call.leave().await.unwrap()).await;
            u.call.close().await;
        }
    });
    let mut checked = 0;
    while !churn.is_finished() {
        let (snapshot, mut stream) = users[0].call.subscribe();
        let mut view = snapshot.expect("alice is in the room");
        let first_seq = view.seq + 1;
        let mut expected = first_seq;
        // Follow this subscription for a little while.
        let until = tokio::time::Instant::now() + Duration::from_millis(40);
        while let Ok(Some(ev)) = tokio::time::timeout_at(until, stream.next()).await {
            if let Some(seq) = seq_of(&ev) {
                assert_eq!(seq, expected, "no gap and no duplicate after the snapshot");
                expected += 1;
            }
            apply(&mut view, &ev);
        }
        let now = users[0].call.room().unwrap();
        if now.seq == view.seq {
            assert_eq!(
                now.participants, view.participants,
                "snapshot + deltas = current state"
            );
            checked += 1;
        }
    }
    churn.await.unwrap();
    assert!(checked > 0);
}

#[tokio::test]
async fn rule3_events_come_in_server_order_with_gap_free_sequence_numbers() {
    let server = server().await;
    let users = room_of(&server, "r", &["alice", "bob", "carol", "observer"]).await;
    let mut observer_events = users[3].call.events();
    let start = users[3].call.room().unwrap().seq;
    // Three members act at once.
    let mut tasks = Vec::new();
    for u in &users[..3] {
        let call = u.call.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..30 {
                let op = if i % 3 == 0 {
                    call.update(ParticipantUpdate {
                        state: Some(format!("s{i}")),
                        ..Default::default()
                    })
                    .await
                } else {
                    call.send_message(None, "text/plain", format!("{i}")).await
                };
                done(&call, op.unwrap()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 3 × (10 updates + 20 group messages), each one room event.
    let total = 90;
    let mut expected = start + 1;
    while expected <= start + total {
        let ev = next(&mut observer_events).await;
        if let Some(seq) = seq_of(&ev) {
            assert_eq!(seq, expected);
            expected += 1;
        }
    }
    // Every member's view ends at the same sequence number and state.
    let views: Vec<_> = users.iter().map(|u| u.call.room().unwrap()).collect();
    for v in &views {
        assert_eq!(v.seq, start + total);
        assert_eq!(v.participants, views[0].participants);
    }
}

async fn expect_end(events: &mut jrtc::EventStream, reason: Reason, in_room: bool) {
    if in_room {
        match next(events).await {
            CallEvent::Left { reason: r, .. } => assert_eq!(r, reason),
            other => panic!("{other:?}"),
        }
    }
    match next(events).await {
        CallEvent::Closed { reason: r } => assert_eq!(r, reason),
        other => panic!("{other:?}"),
    }
    let end = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("the stream ends");
    assert!(end.is_none());
}

#[tokio::test]
async fn rule4_streams_end_with_a_final_reason() {
    let server = server().await;
    let mut users = room_of(&server, "r", &["alice", "bob", "carol"]).await;

    // Closed by the application.
    users[0].call.close().await;
    expect_end(&mut users[0].events, Reason::Quit, true).await;
    assert!(matches!(
        users[0].call.leave().await,
        Err(jrtc::CallError::Closed {
            reason: Reason::Quit
        })
    ));
    // A stream made after the close says so and ends.
    let mut late = users[0].call.events();
    expect_end(&mut late, Reason::Quit, false).await;

    // Every handle dropped: the stream still ends.
    let erin = Call::connect(&server.url(), token(&server, "erin"))
        .await
        .unwrap();
    let mut erin_events = erin.events();
    let op = erin.join("r", Default::default()).await.unwrap();
    done(&erin, op).await;
    assert!(matches!(
        next(&mut erin_events).await,
        CallEvent::Joined { .. }
    ));
    drop(erin);
    expect_end(&mut erin_events, Reason::Quit, true).await;

    // The connection lost.
    let proxy = jrtc_testkit::proxy::Proxy::start(server.local_addr()).await;
    let mut dave = User::connect_once(&proxy.url(), token(&server, "dave")).await;
    dave.join("r").await;
    proxy.cut(jrtc_testkit::proxy::Cut::Reset);
    expect_end(&mut dave.events, Reason::Network, true).await;

    // The server shut down in order.
    let mut bob = users.pop().unwrap();
    server.shutdown().await;
    let mut saw_end = false;
    while let Some(ev) = tokio::time::timeout(WAIT, bob.events.next()).await.unwrap() {
        if let CallEvent::Left { reason, .. } = ev {
            assert_eq!(reason, Reason::ServerShutdown);
        }
        if let CallEvent::Closed { reason } = ev {
            assert_eq!(reason, Reason::ServerShutdown);
            saw_end = true;
        }
    }
    assert!(saw_end);
}

#[tokio::test]
async fn rule5_nothing_is_left_running_after_leave_and_drop() {
    let server = server().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    {
        let users = room_of(&server, "r", &["alice", "bob", "carol"]).await;
        let extra: Vec<_> = users.iter().map(|u| u.call.events().messages()).collect();
        done(
            &users[0].call,
            users[0]
                .call
                .send_message(None, "text/plain", "bye")
                .await
                .unwrap(),
        )
        .await;
        for u in &users {
            done(&u.call, u.call.leave().await.unwrap()).await;
        }
        assert!(metrics.num_alive_tasks() > baseline);
        drop(extra);
    }
    // All calls and streams dropped: their tasks and the server's connection tasks end.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metrics.num_alive_tasks() != baseline || server.connection_count() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} tasks alive, {} at the start; {} connections",
            metrics.num_alive_tasks(),
            baseline,
            server.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.room_count(), 0);
}

#[tokio::test]
async fn rule4_a_server_gone_silent_ends_the_stream_too() {
    // A "server" that logs the client in, then neither reads nor writes again: the socket stays
    // open, no close ever comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        use futures::SinkExt;
        let (socket, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
        let _hello = ws.next().await;
        let welcome = r#"{"type":"welcome","version":1,"user_id":"alice","session":1}"#;
        ws.send(tokio_tungstenite::tungstenite::Message::text(welcome))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    });
    let options = CallOptions::default()
        .keepalive(Duration::from_millis(50))
        .idle_timeout(Duration::from_millis(300))
        .reconnect(jrtc::ReconnectPolicy::never());
    let call = Call::connect_with(&format!("ws://{addr}"), "any-token", options)
        .await
        .unwrap();
    let mut events = call.events();
    let closed = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("the call gives up in time");
    assert_eq!(
        closed,
        Some(CallEvent::Closed {
            reason: Reason::Timeout
        })
    );
    assert_eq!(
        tokio::time::timeout(WAIT, events.next()).await.unwrap(),
        None
    );
    silent.abort();
}

/// A typed sub-stream ends with the reason at hand, and an outcome can be awaited any number
/// of times, before and after the operation finished.
#[tokio::test]
async fn typed_streams_end_with_their_reason_and_outcomes_can_be_awaited_twice() {
    use futures::StreamExt;
    let server = server().await;
    let mut users = crate::support::room_of(&server, "r", &["alice", "bob"]).await;
    let op = users[0]
        .call
        .send_message(None, "text/plain", "hi")
        .await
        .unwrap();
    let early = {
        let call = users[0].call.clone();
        tokio::spawn(async move { call.outcome(op).await })
    };
    let first = crate::support::done(&users[0].call, op).await;
    let second = crate::support::done(&users[0].call, op).await;
    assert_eq!(first, second);
    assert_eq!(early.await.unwrap().unwrap(), first);
    users[1].next().await; // the message
    let mut chat = users[1].call.events().messages();
    assert_eq!(chat.closed(), None);
    users[1].call.close().await;
    while let Some(item) = chat.next().await {
        item.expect("no loss");
    }
    assert_eq!(chat.closed(), Some(Reason::Quit));
}

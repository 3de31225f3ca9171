//! Calls through real network faults: a proxy on 127.0.0.1 closes, resets or black-holes the
//! connection of one member (and refuses new ones during an outage); the call resumes its session
//! by itself. Counted: what was lost, what arrived twice, and whether each request took effect
//! once.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use jrtc::{
    CallEvent, CallOptions, InviteEvent, MessageEvent, OperationId, ParticipantEvent,
    PropertyEvent, PropertyUpdate, Reason, ReconnectPolicy,
};

use crate::support::{User, builder, done, room_of, token};
use jrtc_testkit::proxy::{Cut, Proxy};

/// A call that notices a dead path fast and comes back fast.
fn fast() -> CallOptions {
    CallOptions::default()
        .keepalive(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(400))
        .reconnect(
            ReconnectPolicy::default()
                .delays(Duration::from_millis(20), Duration::from_millis(200))
                .max_duration(Duration::from_secs(30)),
        )
}

/// Every room event's `seq` in `events` (the ones a member receives as room events).
fn seq_of(event: &CallEvent) -> Option<u64> {
    match event {
        CallEvent::Participant(
            ParticipantEvent::Joined { seq, .. }
            | ParticipantEvent::Left { seq, .. }
            | ParticipantEvent::Updated { seq, .. },
        ) => Some(*seq),
        CallEvent::Property(PropertyEvent::Changed { seq, .. }) => Some(*seq),
        CallEvent::Message(MessageEvent::Received(m)) => m.seq,
        CallEvent::Message(MessageEvent::Sent { seq, .. }) => *seq,
        _ => None,
    }
}

/// Waits for the call's next `Reconnected` (or `Resynced`) on `events`.
async fn reconnected(events: &mut jrtc::EventStream) {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.next()).await {
            Ok(Some(CallEvent::Reconnected { .. } | CallEvent::Resynced { .. })) => return,
            Ok(Some(CallEvent::Closed { reason })) => panic!("closed: {reason}"),
            Ok(Some(_)) => {}
            other => panic!("not reconnected in time: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cuts_during_a_thousand_messages_lose_and_repeat_nothing() {
    const MESSAGES: usize = 1000;
    let server = builder().start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let mut users = room_of(&server, "r", &["alice", "carol"]).await;
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    let mut watch = bob.call.events();
    let alice = users.remove(0).call;
    let mut alice_events = alice.events().messages();
    let mut carol = users.remove(0);

    // Alice sends at a steady rate while bob's connection is cut 20 times.
    let sender = tokio::spawn({
        let alice = alice.clone();
        async move {
            let mut ops = Vec::new();
            // 100 a second: the 20 cuts (10 with 500 ms outages) fall within the 10 s.
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for i in 0..MESSAGES {
                tick.tick().await;
                ops.push(alice.send_message(None, "t", i.to_string()).await.unwrap());
            }
            ops
        }
    });
    let cutter = tokio::spawn(async move {
        let mut cuts = 0;
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let how = [Cut::Close, Cut::Reset, Cut::BlackHole][i % 3];
            let outage = i % 2 == 1;
            if outage {
                proxy.set_down(true);
            }
            proxy.cut(how);
            cuts += 1;
            if outage {
                tokio::time::sleep(Duration::from_millis(500)).await;
                proxy.set_down(false);
            }
            reconnected(&mut watch).await;
            proxy.release_black_holes();
        }
        (cuts, proxy)
    });

    // Bob takes every message once, in order.
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    let (mut reconnecting, mut resumed) = (0, 0);
    while got.len() < MESSAGES {
        let event = tokio::time::timeout(Duration::from_secs(30), bob.events.next())
            .await
            .expect("bob gets every message in time")
            .expect("bob's call stays open");
        seqs.extend(seq_of(&event));
        match event {
            CallEvent::Message(MessageEvent::Received(m)) => got.push(m.content.to_string()),
            CallEvent::Reconnecting { .. } => reconnecting += 1,
            CallEvent::Reconnected { .. } => resumed += 1,
            CallEvent::Resynced { missed, .. } => panic!("a resync lost {missed} frames"),
            _ => {}
        }
    }
    let (cuts, _proxy) = cutter.await.unwrap();
    // The last cuts may end after the last message: count their events too.
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), bob.events.next()).await
    {
        seqs.extend(seq_of(&event));
        match event {
            CallEvent::Message(MessageEvent::Received(m)) => got.push(m.content.to_string()),
            CallEvent::Reconnecting { .. } => reconnecting += 1,
            CallEvent::Reconnected { .. } => resumed += 1,
            _ => {}
        }
    }
    let ops = sender.await.unwrap();
    let want: Vec<String> = (0..MESSAGES).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "every message once, in order");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "bob's room events are gap-free"
    );
    assert_eq!(cuts, 20);
    assert!(resumed >= 20 && reconnecting >= 20, "{resumed} resumes");
    // Every member saw the same room, and each of alice's messages was answered once.
    let mut answered = HashMap::new();
    while answered.len() < ops.len() {
        let event = tokio::time::timeout(Duration::from_secs(5), alice_events.next())
            .await
            .expect("alice's outcomes in time")
            .expect("open")
            .expect("not lagged");
        if let MessageEvent::Sent { op, result, .. } = event {
            assert!(result.is_ok());
            *answered.entry(op).or_insert(0) += 1;
        }
    }
    assert!(ops.iter().all(|op| answered.get(op) == Some(&1)));
    let mut carol_seqs = Vec::new();
    let mut carol_got = 0;
    while carol_got < MESSAGES {
        let event = carol.next().await;
        carol_seqs.extend(seq_of(&event));
        if matches!(event, CallEvent::Message(MessageEvent::Received(_))) {
            carol_got += 1;
        }
    }
    assert!(carol_seqs.windows(2).all(|w| w[1] == w[0] + 1));
    let (a, b, c) = (
        alice.room().unwrap(),
        bob.call.room().unwrap(),
        carol.call.room().unwrap(),
    );
    assert_eq!(a.participants, b.participants);
    assert_eq!(b.seq, c.seq.max(b.seq));
    eprintln!("{cuts} cuts: bob reconnected {resumed} times, got {MESSAGES} of {MESSAGES}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_around_cuts_each_take_effect_once() {
    let server = builder().start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    // Bob is the host (first in), and sends everything through the proxy.
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    let mut others = Vec::new();
    for id in ["alice", "dave", "erin"] {
        let mut u = User::connect(&server, id).await;
        u.join("r").await;
        for o in others.iter_mut().chain([&mut bob]) {
            let _: CallEvent = o.next().await;
        }
        others.push(u);
    }
    let mut watch = bob.call.events();
    let call = bob.call.clone();
    let mut ops: Vec<OperationId> = Vec::new();
    let message = |i: usize| {
        let call = call.clone();
        async move { call.send_message(None, "t", format!("m{i}")).await.unwrap() }
    };
    let property = |i: usize| {
        let call = call.clone();
        async move {
            let update = PropertyUpdate::default().set(format!("k{i}"), "v");
            call.set_properties(update).await.unwrap()
        }
    };
    let mut n = 0;
    for round in 0..3 {
        // Just before the cut: in flight when it happens.
        for _ in 0..3 {
            ops.push(message(n).await);
            ops.push(property(n).await);
            n += 1;
        }
        if round == 1 {
            ops.push(call.kick("dave").await.unwrap());
        }
        proxy.set_down(true);
        proxy.cut([Cut::Reset, Cut::BlackHole, Cut::Close][round]);
        // During the outage: queued by the call.
        loop {
            if let Some(CallEvent::Reconnecting { .. }) = watch.next().await {
                break;
            }
        }
        for _ in 0..3 {
            ops.push(message(n).await);
            ops.push(property(n).await);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.set_down(false);
        reconnected(&mut watch).await;
        proxy.release_black_holes();
        // After.
        ops.push(message(n).await);
        ops.push(property(n).await);
        n += 1;
    }
    // Each request: exactly one outcome.
    for op in &ops {
        done(&call, *op).await;
    }
    let mut outcomes: HashMap<OperationId, usize> = HashMap::new();
    while outcomes.values().sum::<usize>() < ops.len() {
        match bob.next().await {
            CallEvent::Message(MessageEvent::Sent { op, result, .. }) => {
                assert!(result.is_ok());
                *outcomes.entry(op).or_default() += 1;
            }
            CallEvent::Completed { op, result, .. } => {
                assert!(result.is_ok(), "{op}: {result:?}");
                *outcomes.entry(op).or_default() += 1;
            }
            _ => {}
        }
    }
    assert!(outcomes.values().all(|n| *n == 1), "{outcomes:?}");
    assert_eq!(outcomes.len(), ops.len());
    // Each took effect once, as alice saw it.
    let alice = &mut others[0];
    let (mut messages, mut keys, mut kicks) = (HashMap::new(), HashMap::new(), 0);
    while messages.len() < n || keys.len() < n || kicks == 0 {
        match alice.next().await {
            CallEvent::Message(MessageEvent::Received(m)) => {
                *messages.entry(m.content.to_string()).or_insert(0) += 1
            }
            CallEvent::Property(PropertyEvent::Changed { changes, .. }) => {
                for key in changes.custom {
                    *keys.entry(key).or_insert(0) += 1;
                }
            }
            CallEvent::Participant(ParticipantEvent::Left {
                participant,
                reason: Reason::Kicked,
                ..
            }) => {
                assert_eq!(participant.user_id.as_str(), "dave");
                kicks += 1;
            }
            _ => {}
        }
    }
    alice.assert_quiet().await;
    assert!(messages.values().all(|n| *n == 1), "{messages:?}");
    assert!(keys.values().all(|n| *n == 1), "{keys:?}");
    assert_eq!(kicks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_and_an_invitation_sent_during_a_cut_arrive_after_it() {
    let server = builder().start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let mut alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    let _: CallEvent = alice.next().await;
    let mut carol = room_of(&server, "elsewhere", &["carol"]).await.remove(0);
    // A black hole the server does not notice: what it sends bob is lost on the way.
    proxy.set_down(true);
    proxy.cut(Cut::BlackHole);
    let op = alice
        .call
        .send_message(Some("bob"), "t", "just for you")
        .await
        .unwrap();
    done(&alice.call, op).await;
    let op = carol
        .call
        .invite(&["bob"], Default::default())
        .await
        .unwrap();
    done(&carol.call, op).await;
    let _: CallEvent = carol.next().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    proxy.set_down(false);
    let (mut message, mut invitation) = (false, false);
    while !(message && invitation) {
        match bob.next().await {
            CallEvent::Message(MessageEvent::Received(m)) => {
                assert_eq!(m.content.as_str(), "just for you");
                assert!(!message, "once");
                message = true;
            }
            CallEvent::Invite(InviteEvent::Received(i)) => {
                assert_eq!(i.caller.as_str(), "carol");
                assert!(!invitation, "once");
                invitation = true;
            }
            CallEvent::Closed { reason } => panic!("closed: {reason}"),
            _ => {}
        }
    }
    assert_eq!(bob.call.invitations().len(), 1);
    proxy.release_black_holes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_path_is_taken_over_at_once_and_a_member_that_never_returns_leaves() {
    let server = builder()
        .grace_period(Duration::from_millis(800))
        .start()
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let mut alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    let _: CallEvent = alice.next().await;

    // Bob's path goes silent; the server holds the old connection (its own timeout is 10 s),
    // but bob's new connection takes the session over at once: no lockout, no departure.
    proxy.cut(Cut::BlackHole);
    reconnected(&mut bob.events).await;
    let op = bob.call.send_message(None, "t", "back").await.unwrap();
    done(&bob.call, op).await;
    match alice.next().await {
        CallEvent::Message(MessageEvent::Received(m)) => assert_eq!(m.content.as_str(), "back"),
        other => panic!("{other:?}"),
    }
    proxy.release_black_holes();

    // Carol's call does not come back: the room sees her connection go, then, after the grace
    // period, her leaving.
    let proxy2 = Proxy::start(server.local_addr()).await;
    let mut carol = User::connect_once(&proxy2.url(), token(&server, "carol")).await;
    carol.join("r").await;
    proxy2.cut(Cut::Reset);
    for u in [&mut alice, &mut bob] {
        // What each sees of carol: joined, connection lost, left when the grace period ran out.
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match u.next().await {
                CallEvent::Participant(ParticipantEvent::Joined { participant, .. }) => {
                    seen.push(format!("{} joined", participant.user_id))
                }
                CallEvent::Participant(ParticipantEvent::Updated {
                    participant,
                    changes,
                    ..
                }) if changes.connection => seen.push(format!(
                    "{} {:?}",
                    participant.user_id, participant.connection
                )),
                CallEvent::Participant(ParticipantEvent::Left {
                    participant,
                    reason,
                    ..
                }) => seen.push(format!("{} left: {reason}", participant.user_id)),
                _ => {}
            }
        }
        assert_eq!(
            seen,
            ["carol joined", "carol Reconnecting", "carol left: network"],
            "{}",
            u.call.user_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_older_than_the_server_keeps_is_an_explicit_resync() {
    let server = builder().resume_buffer(16).start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    proxy.set_down(true);
    proxy.cut(Cut::BlackHole);
    for i in 0..50 {
        let op = alice
            .call
            .send_message(None, "t", i.to_string())
            .await
            .unwrap();
        done(&alice.call, op).await;
    }
    proxy.set_down(false);
    loop {
        match bob.next().await {
            CallEvent::Resynced { snapshot, missed } => {
                let snapshot = snapshot.expect("still in the room");
                assert!(missed >= 34, "{missed}");
                assert_eq!(snapshot.seq, alice.call.room().unwrap().seq);
                break;
            }
            CallEvent::Reconnected { .. } => panic!("the gap cannot be replayed"),
            _ => {}
        }
    }
    assert_eq!(
        bob.call.room().unwrap().participants,
        alice.call.room().unwrap().participants
    );
    proxy.release_black_holes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_through_a_signaling_cut_and_the_resume_renegotiates_nothing() {
    let server = builder().start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    let camera = alice
        .call
        .publish_track(jrtc::TrackSource::Camera)
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        let mut ts = 0u32;
        loop {
            let _ = camera.write(vec![0x10, 0, 0, 0], ts, true).await;
            ts = ts.wrapping_add(1800);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let track = loop {
        if let CallEvent::Media(jrtc::MediaEvent::Subscribed { publication }) = bob.next().await {
            break bob.call.remote_track(&publication.id).unwrap();
        }
    };
    track.next_packet().await.unwrap();

    // Signaling is cut and stays down for a second: media goes on on its own path.
    proxy.set_down(true);
    proxy.cut(Cut::Reset);
    let outage = tokio::time::Instant::now() + Duration::from_millis(800);
    let mut during = 0;
    while tokio::time::Instant::now() < outage {
        if tokio::time::timeout(Duration::from_millis(200), track.next_packet())
            .await
            .is_ok_and(|p| p.is_some())
        {
            during += 1;
        }
    }
    assert!(bob.call.room().is_some());
    proxy.set_down(false);
    reconnected(&mut bob.events).await;
    // The same handle goes on receiving, and the resume changed nothing about media.
    for _ in 0..10 {
        track.next_packet().await.unwrap();
    }
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), bob.events.next()).await
    {
        assert!(
            !matches!(event, CallEvent::Media(_)),
            "no media change after a resume: {event:?}"
        );
    }
    assert!(during > 20, "{during} packets during the outage");
    eprintln!("{during} packets arrived while signaling was down");
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_an_outage_are_queued_up_to_the_bound_then_refused() {
    let server = builder().start().await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let mut alice = room_of(&server, "r", &["alice"]).await.remove(0);
    let options = fast().offline_queue(2);
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), options).await;
    bob.join("r").await;
    let _: CallEvent = alice.next().await;
    proxy.set_down(true);
    proxy.cut(Cut::Reset);
    loop {
        if let CallEvent::Reconnecting { .. } = bob.next().await {
            break;
        }
    }
    let first = bob.call.send_message(None, "t", "one").await.unwrap();
    let second = bob.call.send_message(None, "t", "two").await.unwrap();
    match bob.call.send_message(None, "t", "three").await {
        Err(jrtc::CallError::Offline { queued: 2 }) => {}
        other => panic!("expected Offline, got {other:?}"),
    }
    proxy.set_down(false);
    done(&bob.call, first).await;
    done(&bob.call, second).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        if let CallEvent::Message(MessageEvent::Received(m)) = alice.next().await {
            got.push(m.content.to_string());
        }
    }
    assert_eq!(got, ["one", "two"]);
    alice.assert_quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_connection_stays_up() {
    // A short handshake timer: a connection that resumed (rather than said `hello`) is logged
    // in too, and must not be closed by it.
    let server = builder()
        .handshake_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let mut bob = User::connect_with(&proxy.url(), token(&server, "bob"), fast()).await;
    bob.join("r").await;
    proxy.cut(Cut::Reset);
    reconnected(&mut bob.events).await;
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(800), bob.events.next()).await
    {
        assert!(
            !matches!(event, CallEvent::Reconnecting { .. }),
            "the resumed connection was closed: {event:?}"
        );
    }
    let op = bob
        .call
        .send_message(None, "t", "still here")
        .await
        .unwrap();
    done(&bob.call, op).await;
}

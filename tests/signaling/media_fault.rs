//! Media paths that really die: one member's media runs over an address of its own in a network
//! namespace made for the test, and the test takes the address away (`ip addr del`), so UDP to
//! and from it fails while signaling (TCP on 127.0.0.1) is untouched. Then it gives it back.
//!
//! Each test re-runs itself under `unshare -n` (it needs root, as `.ci/run` has); inside, the
//! namespace has `lo` and a veth pair whose one end carries 10.77.0.1.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use jrtc::{CallEvent, CallOptions, MediaConnection, MediaEvent, Reason, TrackSource};

use crate::support::{User, builder, lossy_loopback, token};

const ADDRESS: &str = "10.77.0.1";

/// Runs `test` (this file's test of that name) in a new network namespace with `lo` and a veth
/// pair carrying 10.77.0.1; true when this process is the one inside, which then runs the body.
fn inside_namespace(test: &str) -> bool {
    crate::support::in_namespace(
        &format!("media_fault::{test}"),
        "ip link set lo up && ip link add jv0 type veth peer name jv1 && \
         ip link set jv0 up && ip link set jv1 up && ip addr add 10.77.0.1/24 dev jv0",
    )
}

fn address(add: bool) {
    let status = Command::new("ip")
        .args(["addr", if add { "add" } else { "del" }])
        .args([&format!("{ADDRESS}/24"), "dev", "jv0"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Options for the member whose media path the test cuts.
fn on_the_veth() -> CallOptions {
    let mut options = CallOptions::default();
    options.media_bind = Some(format!("{ADDRESS}:0").parse().unwrap());
    options
}

/// Writes a small VP8-like packet every 10 ms until aborted.
fn send_forever(track: jrtc::LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ts = 0u32;
        loop {
            let _ = track.write(vec![0x10, 0, 0, 0], ts, true).await;
            ts = ts.wrapping_add(1800);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Takes `user`'s events until a track of another member reaches it; that track.
pub(crate) async fn subscribed(user: &mut User) -> jrtc::RemoteTrack {
    loop {
        if let CallEvent::Media(MediaEvent::Subscribed { publication }) = user.next().await {
            return user.call.remote_track(&publication.id).unwrap();
        }
    }
}

/// Takes `user`'s events until both cameras are published (its own included: a loaded machine
/// may report it after the other's track arrived, and a test that then watches for new media
/// events must not see it) and the other's camera arrived; that remote track.
async fn settled(user: &mut User) -> jrtc::RemoteTrack {
    let mut published = std::collections::BTreeSet::new();
    let mut track = None;
    while published.len() < 2 || track.is_none() {
        match user.next().await {
            CallEvent::Media(MediaEvent::Published { publication, .. }) => {
                published.insert(publication.id.to_string());
            }
            CallEvent::Media(MediaEvent::Subscribed { publication }) => {
                track = Some(user.call.remote_track(&publication.id).unwrap());
            }
            _ => {}
        }
    }
    track.unwrap()
}

/// Packets of `track` that arrive within `time`.
async fn packets_within(track: &jrtc::RemoteTrack, time: Duration) -> usize {
    let end = tokio::time::Instant::now() + time;
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout_at(end, track.next_packet()).await {
        n += 1;
    }
    n
}

/// The media events of `user` until `until` returns true for one (which is included).
async fn media_events_until(
    user: &mut User,
    limit: Duration,
    until: impl Fn(&MediaEvent) -> bool,
) -> Vec<MediaEvent> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, user.events.next()).await {
            Ok(Some(CallEvent::Media(event))) => {
                let done = until(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("not within {limit:?}; media events so far: {seen:?}"),
        }
    }
}

/// Alice (media on the veth) and bob in room `r` of `server`, each sending camera packets and
/// receiving the other's: the two users, their senders, and the track each receives (alice's
/// at bob, bob's at alice), each with a packet through already.
async fn both_publishing(
    server: &jrtc::ServerHandle,
) -> (
    User,
    User,
    [tokio::task::JoinHandle<()>; 2],
    jrtc::RemoteTrack,
    jrtc::RemoteTrack,
) {
    let url = server.url();
    let mut alice = User::connect_with(&url, token(server, "alice"), on_the_veth()).await;
    alice.join("r").await;
    let mut bob = User::connect(server, "bob").await;
    bob.join("r").await;
    let alice_camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let bob_camera = bob.call.publish_track(TrackSource::Camera).await.unwrap();
    let senders = [send_forever(alice_camera), send_forever(bob_camera)];
    let at_bob = settled(&mut bob).await;
    let at_alice = settled(&mut alice).await;
    at_bob.next_packet().await.unwrap();
    at_alice.next_packet().await.unwrap();
    (alice, bob, senders, at_bob, at_alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_media_path_is_noticed_restarted_and_nothing_is_unpublished() {
    if !inside_namespace("a_dead_media_path_is_noticed_restarted_and_nothing_is_unpublished") {
        return;
    }
    let server = builder().start().await.unwrap();
    let (mut alice, mut bob, senders, at_bob, at_alice) = both_publishing(&server).await;

    // Alice's media path dies: both her connections fail, on both sides.
    address(false);
    let cut = tokio::time::Instant::now();
    let seen = media_events_until(&mut alice, Duration::from_secs(15), |e| {
        matches!(e, MediaEvent::Interrupted { .. })
    })
    .await;
    let noticed = cut.elapsed();
    eprintln!("alice noticed after {noticed:?}: {seen:?}");
    assert!(noticed < Duration::from_secs(10), "{noticed:?}");
    // The path stays dead a little longer, then comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    address(true);
    let back = tokio::time::Instant::now();
    let mut restored = Vec::new();
    let mut all = seen;
    while restored.len() < 2 {
        let more = media_events_until(&mut alice, Duration::from_secs(20), |e| {
            matches!(e, MediaEvent::Restored { .. })
        })
        .await;
        if let Some(MediaEvent::Restored { connection }) = more.last() {
            restored.push(*connection);
        }
        all.extend(more);
    }
    eprintln!(
        "alice's connections restored {:?} after the path came back: {all:?}",
        back.elapsed()
    );
    restored.sort();
    assert_eq!(
        restored,
        [MediaConnection::Publish, MediaConnection::Subscribe]
    );
    // The same track handles carry media again, both ways.
    assert!(packets_within(&at_bob, Duration::from_secs(5)).await > 10);
    assert!(packets_within(&at_alice, Duration::from_secs(5)).await > 10);
    // Nobody saw a track end or fail.
    for event in all {
        assert!(
            matches!(
                event,
                MediaEvent::Interrupted { .. } | MediaEvent::Restored { .. }
            ),
            "alice: {event:?}"
        );
    }
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), bob.events.next()).await
    {
        assert!(!matches!(event, CallEvent::Media(_)), "bob: {event:?}");
    }
    for sender in senders {
        sender.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_path_dead_past_the_grace_period_ends_publications_for_network() {
    if !inside_namespace("a_media_path_dead_past_the_grace_period_ends_publications_for_network") {
        return;
    }
    let server = builder()
        .grace_period(Duration::from_secs(4))
        .start()
        .await
        .unwrap();
    let (mut alice, mut bob, senders, at_bob, _) = both_publishing(&server).await;

    address(false);
    // Bob hears alice's camera is gone, and why; his track of it ends.
    let seen = media_events_until(&mut bob, Duration::from_secs(25), |e| {
        matches!(e, MediaEvent::Unpublished { .. })
    })
    .await;
    assert!(
        matches!(
            seen.last(),
            Some(MediaEvent::Unpublished {
                reason: Reason::Network,
                ..
            })
        ),
        "{seen:?}"
    );
    assert!(at_bob.next_packet().await.is_none(), "bob's handle ended");
    // Alice hears hers failed (her camera track ended) and what she received ended.
    let seen = media_events_until(&mut alice, Duration::from_secs(10), |e| {
        matches!(
            e,
            MediaEvent::Failed {
                connection: MediaConnection::Publish,
                ..
            }
        )
    })
    .await;
    eprintln!("alice: {seen:?}");
    // The track is gone by the time the failure is delivered.
    assert!(
        alice.call.local_track(TrackSource::Camera).is_none(),
        "alice's camera track outlived the failure"
    );
    // The path comes back: what she received comes again on a new connection, and she can
    // publish again.
    address(true);
    let again = subscribed(&mut alice).await;
    assert!(packets_within(&again, Duration::from_secs(3)).await > 10);
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let sender = send_forever(camera);
    let at_bob = subscribed(&mut bob).await;
    at_bob.next_packet().await.unwrap();
    sender.abort();
    for sender in senders {
        sender.abort();
    }
}

/// The first byte of the packets that end [`lost_packets_are_sent_again`]'s lossy span.
const END_MARK: u8 = 0xee;

/// A lossy link: iptables drops 5 % of the UDP packets on loopback at random (media and its
/// feedback, both ways; netem would do it too, but not every kernel has it). The SFU asks alice again for what it lost from her, and sends bob again
/// what bob lost, so bob's stream has almost no hole; without retransmissions about 10 % would
/// be missing (two lossy hops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_sent_again() {
    if !inside_namespace("lost_packets_are_sent_again") {
        return;
    }
    let server = builder().start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let sender = send_forever(camera.clone());
    let at_bob = subscribed(&mut bob).await;
    at_bob.next_packet().await.unwrap();
    sender.abort();

    lossy_loopback("-A", "0.05");
    let bob_reads = tokio::spawn(async move {
        // Bob's packets of the lossy span (by their offset from its first), and how many came
        // late (sent again); he stops when the span has no hole left, or once END_MARKS end
        // marks (1.5 s of their stream) came after it: a resend is only made within a second
        // of the first send (nack_limit.rs), so by then every one that will come came.
        let mut seen = std::collections::BTreeSet::new();
        let (mut first, mut highest, mut late) = (None::<u16>, None::<u16>, 0usize);
        let (mut span, mut marks) = (None::<u16>, 0usize);
        loop {
            let packet = at_bob.next_packet().await.expect("the track is live");
            let seq = packet.header.sequence_number;
            let start = *first.get_or_insert(seq);
            if packet.payload.get(4) == Some(&END_MARK) {
                let span = *span.get_or_insert(seq.wrapping_sub(start));
                marks += 1;
                let holes = usize::from(span) - seen.range(..span).count();
                if holes == 0 || marks >= END_MARKS {
                    return (usize::from(span), holes, late);
                }
                continue;
            }
            match highest {
                Some(h) if seq.wrapping_sub(h) >= 0x8000 => late += 1,
                _ => highest = Some(seq),
            }
            seen.insert(seq.wrapping_sub(start));
        }
    });
    // 1,000 packets on a 5 ms clock (the media's pace, not a wait for an outcome); then the
    // loss stops and end marks follow.
    let mut clock = tokio::time::interval(Duration::from_millis(5));
    for i in 0..1_000u32 {
        clock.tick().await;
        let mut payload = vec![0x10, 0, 0, 0];
        payload.extend_from_slice(&i.to_be_bytes());
        camera.write(payload, i * 450, true).await.unwrap();
    }
    lossy_loopback("-D", "0.05");
    let marks = send_forever_marked(camera);
    let (span, holes, late) = tokio::time::timeout(Duration::from_secs(20), bob_reads)
        .await
        .expect("bob gets the end marks")
        .unwrap();
    marks.abort();
    eprintln!("lossy link: {holes} holes in {span} packets at bob, {late} sent again");
    assert!(late > 0, "nothing was sent again");
    assert!(holes * 100 <= span * 2, "{holes} holes in {span}");
}

/// End marks [`lost_packets_are_sent_again`]'s receiver waits for after the lossy span (at one
/// per 10 ms, 1.5 s of them) when holes remain.
const END_MARKS: usize = 150;

/// Writes an end mark (a packet whose fifth byte is [`END_MARK`]) on a 10 ms clock until
/// aborted (the media's pace).
fn send_forever_marked(track: jrtc::LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        for i in 0u32.. {
            clock.tick().await;
            let ts = 0x4000_0000u32.wrapping_add(i.wrapping_mul(900));
            let _ = track.write(vec![0x10, 0, 0, 0, END_MARK], ts, true).await;
        }
    })
}

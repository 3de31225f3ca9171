//! Connection floods: connections that never log in are bounded per source address (the newest
//! is refused) and in total (the oldest is closed), a legitimate user still gets in while one
//! attacker holds its limit, and an oversized `hello` is answered before the close.
//!
//! The per-address test needs a second source address: it re-runs itself in a network namespace
//! made for it (`unshare -n`, as `media_fault.rs` does), where the attacker connects from
//! 127.0.0.2 and the legitimate user from 127.0.0.1, both on the namespace's own loopback, with
//! the open-file limit at the common default of 1,024.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jrtc::{Call, JoinOptions};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{builder, done, token, unlimited};

/// Runs `test` in a new network namespace with its loopback up and the open-file limit at the
/// common default of 1,024, which the attack exceeds.
fn inside_namespace(test: &str) -> bool {
    crate::support::in_namespace(
        &format!("floods::{test}"),
        "ip link set lo up && ulimit -n 1024",
    )
}

/// A TCP connection from `from` that never says anything.
async fn idle_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closed `stream` (within `wait`); false if it is still open.
async fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Connect, log in and join as a fresh user; the time it took.
async fn join_once(server: &jrtc::ServerHandle, user: &str) -> Duration {
    let started = Instant::now();
    let call = Call::connect(&server.url(), token(server, user))
        .await
        .unwrap();
    let op = call.join("lobby", JoinOptions::default()).await.unwrap();
    done(&call, op).await;
    let took = started.elapsed();
    call.close().await;
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_crowd_out_the_others() {
    if !inside_namespace("one_address_cannot_crowd_out_the_others") {
        return;
    }
    const PER_ADDRESS: usize = 64;
    let server = builder()
        .limits(unlimited().max_unauthenticated_per_address(PER_ADDRESS))
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();

    // A baseline from the same run: joins with no one else around.
    let mut quiet = Vec::new();
    for i in 0..100 {
        quiet.push(join_once(&server, &format!("q{i}")).await);
    }

    // The attacker makes 1,100 connections (more than the process's 1,024 descriptors) and
    // holds what it gets.
    const ATTEMPTS: usize = 1_100;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..ATTEMPTS {
        let mut stream = idle_from([127, 0, 0, 2], addr).await;
        if closed(&mut stream, Duration::from_millis(20)).await {
            refused += 1;
        } else {
            held.push(stream);
        }
    }
    assert_eq!(
        held.len(),
        PER_ADDRESS,
        "the oldest up to the limit are held"
    );
    assert_eq!(
        refused,
        ATTEMPTS - PER_ADDRESS,
        "the newest over the limit are refused"
    );
    assert_eq!(server.waiting_connections().0, PER_ADDRESS);

    // Meanwhile a legitimate user from another address gets in, every time.
    let mut flooded = Vec::new();
    for i in 0..100 {
        flooded.push(join_once(&server, &format!("u{i}")).await);
        // The attacker keeps knocking: refused at once.
        let mut more = idle_from([127, 0, 0, 2], addr).await;
        assert!(closed(&mut more, Duration::from_secs(1)).await);
    }
    quiet.sort();
    flooded.sort();
    println!(
        "join (connect + hello + join) p50/p99: quiet {:?}/{:?}, while one address holds {PER_ADDRESS} idle sockets {:?}/{:?}",
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&flooded, 0.5),
        percentile(&flooded, 0.99),
    );
    // The held sockets stay open (they are within the limit) until the handshake timeout.
    for stream in held.iter_mut() {
        assert!(!closed(stream, Duration::from_millis(1)).await);
    }
}

#[tokio::test]
async fn the_oldest_connection_not_logged_in_makes_room_for_a_new_one() {
    let server = builder()
        .limits(unlimited().max_unauthenticated(4))
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(idle_from([127, 0, 0, 1], addr).await);
    }
    // The server counts them once its accept loop has taken them.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.waiting_connections() != (4, 0) && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(server.waiting_connections(), (4, 0));
    // A fifth closes the oldest.
    held.push(idle_from([127, 0, 0, 1], addr).await);
    assert!(closed(&mut held[0], Duration::from_secs(2)).await);
    assert!(!closed(&mut held[1], Duration::from_millis(50)).await);
    // A legitimate user gets in though the limit is full (it closes the next oldest), and once
    // logged in no longer counts.
    join_once(&server, "alice").await;
    assert!(closed(&mut held[1], Duration::from_secs(2)).await);
    let (waiting, evicted) = server.waiting_connections();
    assert_eq!((waiting, evicted), (3, 2));
}

#[tokio::test]
async fn a_hello_over_the_hard_limit_is_answered_before_the_close() {
    let server = builder().start().await.unwrap();
    // Twenty times on fresh connections: a reset would lose the answer now and then.
    for _ in 0..20 {
        let (mut ws, _) = tokio_tungstenite::connect_async(server.url())
            .await
            .unwrap();
        let token = "x".repeat(2 * 1024 * 1024);
        let hello = format!(r#"{{"type":"hello","version":1,"token":"{token}"}}"#);
        // The server stops reading the frame once its header says it is too large; the client
        // may or may not get the whole of it out before the close.
        let _ = ws.send(Message::text(hello)).await;
        // A client busy with something else for a moment: what the server sent must still be
        // there to read.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut answer = None;
        let end = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => answer = Some(text.to_string()),
                Ok(Some(Ok(_))) => {}
                other => break other,
            }
        };
        let answer = answer.expect("the refusal arrives");
        assert!(answer.contains("\"frame_too_large\""), "{answer}");
        // An orderly end, not a reset (which can destroy the answer before a client that was
        // still sending reads it).
        assert!(matches!(end, Ok(None)), "the connection ended with {end:?}");
    }
    assert_eq!(server.connection_count(), 0);
}

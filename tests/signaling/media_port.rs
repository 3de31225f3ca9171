//! The server's media port: every connection of a room uses its worker's UDP port, bytes from anyone
//! else on it (random datagrams, checks naming no connection, TCP streams that say nothing or
//! nonsense, more of them than the port waits for) are counted and dropped while the members'
//! media goes on, and a member who joins meanwhile gets media; once everyone left, no
//! connection is left on the port.

use std::time::Duration;

use jrtc::TrackSource;
use tokio::io::AsyncWriteExt;

use crate::media::{VP8_KEY, remote};
use crate::operations::{scrape, value};
use crate::support::{User, server};
use jrtc_testkit::media::stun_check;

/// Packets of `track` that arrive until `want` did (each within 10 s).
async fn receive(track: &jrtc::RemoteTrack, want: usize) {
    for _ in 0..want {
        tokio::time::timeout(Duration::from_secs(10), track.next_packet())
            .await
            .expect("a packet in time")
            .expect("the track is live");
    }
}

/// `n` datagrams nobody should claim: random bytes of random sizes, checks naming no
/// connection, truncated checks.
fn garbage(n: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| match i % 3 {
            0 => (0..next() % 1400 + 1).map(|_| next() as u8).collect(),
            1 => stun_check(&format!("nobody{:02}:x", i % 100), false),
            _ => stun_check("nobodyyy:x", false)[..(next() % 30) as usize].to_vec(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_port_for_everyone_and_garbage_on_it_harms_nobody() {
    let server = server().await;
    let ports = server.media_udp_addrs();
    let tcp = server.media_tcp_addr().expect("a TCP port by default");
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    let filming = tokio::spawn(async move {
        // The media's pace, not a wait for anything.
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        for i in 0u32.. {
            clock.tick().await;
            if camera.write(VP8_KEY.to_vec(), i * 900, true).await.is_err() {
                return;
            }
        }
    });
    let at_bob = remote(&mut bob, "alice/camera").await;
    receive(&at_bob, 50).await;
    let mic = bob
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let speaking = jrtc_testkit::media::speak(mic, 30);
    let at_alice = remote(&mut alice, "bob/microphone").await;
    receive(&at_alice, 20).await;
    // Every connection of the room reaches the server at one address: its worker's port.
    let mut addresses = std::collections::BTreeSet::new();
    for user in [&alice, &bob] {
        let statistics = user.call.statistics().await;
        assert_eq!(statistics.connections.len(), 2);
        for connection in &statistics.connections {
            assert_eq!(connection.protocol.as_deref(), Some("udp"));
            addresses.insert(connection.remote_address.clone().unwrap());
        }
    }
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    let udp: std::net::SocketAddr = addresses.pop_first().unwrap().parse().unwrap();
    assert!(ports.contains(&udp), "{udp} is not one of {ports:?}");
    let before = scrape(&server).await;

    // TCP: more silent streams than the port waits for, streams announcing a frame too large
    // for a check, and streams whose check names no connection.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(tcp).await.unwrap());
    }
    let mut talkers = Vec::new();
    for i in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
        let frame = if i % 2 == 0 {
            vec![0xff, 0xff, 1, 2, 3]
        } else {
            let check = stun_check("nobody00:x", false);
            let mut frame = (check.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&check);
            frame
        };
        let _ = stream.write_all(&frame).await;
        talkers.push(stream);
    }
    // UDP: 3,000 datagrams nobody claims, 30 every millisecond.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let datagrams = garbage(3_000);
    let mut clock = tokio::time::interval(Duration::from_millis(1));
    for burst in datagrams.chunks(30) {
        clock.tick().await;
        for datagram in burst {
            socket.send_to(datagram, udp).await.unwrap();
        }
    }
    // Meanwhile and after, the media goes on both ways, and a newcomer gets it.
    receive(&at_bob, 100).await;
    receive(&at_alice, 50).await;
    let mut carol = User::connect(&server, "carol").await;
    carol.join("r").await;
    let at_carol = remote(&mut carol, "alice/camera").await;
    receive(&at_carol, 50).await;

    // Every datagram was counted as nobody's (after those the members sent, the port read all
    // of them), and the streams past the waiting limit and the bad ones were closed at once
    // (the members' own ICE-over-TCP checks, which they try beside UDP, may be refused too
    // while the port is full).
    let waiting_over = 300 - 256 + 40;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let page = scrape(&server).await;
        let unrouted = value(&page, "jrtc_media_port_datagrams_total{kind=\"unrouted\"}")
            - value(
                &before,
                "jrtc_media_port_datagrams_total{kind=\"unrouted\"}",
            );
        let refused = value(&page, "jrtc_media_port_tcp_streams_total{kind=\"refused\"}");
        if unrouted >= 3_000.0 && refused >= f64::from(waiting_over) {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unrouted {unrouted}, refused {refused}"
        );
        // A sleep, because nothing else works: the stranger's datagrams and streams get no
        // answer by design, and the server tells no one when its port has read the last of
        // them; its counters, scraped again, are the only sign.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        value(&after, "jrtc_media_port_datagrams_total{kind=\"unrouted\"}")
            - value(
                &before,
                "jrtc_media_port_datagrams_total{kind=\"unrouted\"}"
            ),
        3_000.0,
        "only the garbage is unrouted"
    );
    assert_eq!(
        value(
            &after,
            "jrtc_media_port_datagrams_total{kind=\"overflowed\"}"
        ),
        0.0
    );
    drop(silent);
    drop(talkers);

    filming.abort();
    speaking.abort();
    // Each leaves (the server tears its media down at once; a connection that merely closes
    // would keep its seat, and its media, for the grace period), then closes.
    for user in [alice, bob, carol] {
        crate::support::done(&user.call, user.call.leave().await.unwrap()).await;
        user.call.close().await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.media_port_connections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections left on the port",
            server.media_port_connections()
        );
        // A sleep, because nothing else works: each connection leaves the port when its driver
        // task ends, after the `leave` outcome the members got, and no event reports that;
        // the count, read again, is the only sign.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

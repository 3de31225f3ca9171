//! An attack spread over many source addresses against a server whose open-file limit is the
//! common 1,024: idle connections that never log in, 55 from each of 20 addresses (more in all
//! than the server has descriptors, each address under its own limit of 64). The server keeps
//! a quarter of its descriptors for them at most, closing the oldest, so legitimate users still
//! get in; none of their joins fails.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jrtc::{AccessToken, Call, CallOptions, Grants, JoinOptions, ReconnectPolicy};
use tokio::net::{TcpSocket, TcpStream};

const SECRET: &str = "the descriptor test's secret, long enough";

/// This process's open-file limit raised to its hard limit (the attacker's sockets are here).
fn raise_own_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct passed to them.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= 4096,
        "the attack needs 4,096 descriptors here"
    );
}

/// A TCP connection from `from` that never says anything (None: refused or failed).
async fn idle_from(from: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((from, 0))).ok()?;
    socket.connect(to).await.ok()
}

/// Connect, log in and join as `user`: what went wrong, if anything, and the time it took.
async fn join_once(url: &str, user: &str) -> (Result<(), String>, Duration) {
    let started = Instant::now();
    let token = AccessToken::new(user)
        .grants(Grants::host())
        .sign(SECRET.as_bytes())
        .unwrap();
    // 5 s, under the server's 10 s handshake timeout: a join that only gets in once the
    // attacker's connections time out by themselves was not served.
    let options = CallOptions::default()
        .connect_timeout(Duration::from_secs(5))
        .reconnect(ReconnectPolicy::never());
    let result = async {
        let call = Call::connect_with(url, token, options)
            .await
            .map_err(|e| e.to_string())?;
        let op = call
            .join("lobby", JoinOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(5), call.outcome(op))
            .await
            .map_err(|_| "no answer to the join".to_owned())?
            .map_err(|e| e.to_string())?;
        call.close().await;
        Ok(())
    }
    .await;
    (result, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_many_addresses_leave_room_for_users() {
    raise_own_limit();
    // The server's hard and soft limits at 1,024 (it raises its soft limit to the hard one).
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 1024 && exec \"$0\" serve --bind 127.0.0.1:0",
            env!("CARGO_BIN_EXE_jrtc-server"),
        ])
        .env("JRTC_SECRET", SECRET)
        .env("RUST_LOG", "jrtc=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut cap_logged = false;
    let url = loop {
        let line = lines.next().expect("the server starts").unwrap();
        cap_logged |= line.contains("max_waiting=256");
        if line.contains("listening on") {
            break line.trim().rsplit(' ').next().unwrap().to_owned();
        }
    };
    assert!(
        cap_logged,
        "the server says it holds 256 idle connections at most"
    );
    std::thread::spawn(move || for _ in lines {});
    let addr: SocketAddr = url.trim_start_matches("ws://").parse().unwrap();

    // 20 addresses, 55 idle connections each: 1,100 in all.
    let mut held = Vec::new();
    for round in 0..55 {
        for a in 0..20u8 {
            if let Some(stream) = idle_from([127, 0, 1, 10 + a], addr).await {
                held.push(stream);
            }
        }
        if round % 11 == 10 {
            tokio::task::yield_now().await;
        }
    }

    // Meanwhile users join, one after the other, while the attacker keeps knocking.
    let mut took = Vec::new();
    for i in 0..16 {
        let (result, time) = join_once(&url, &format!("user{i}")).await;
        assert_eq!(result, Ok(()), "user{i}'s join");
        took.push(time);
        for a in 0..20u8 {
            if let Some(stream) = idle_from([127, 0, 1, 10 + a], addr).await {
                held.push(stream);
            }
        }
    }
    took.sort();
    println!(
        "16 joins under the attack: p50 {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}

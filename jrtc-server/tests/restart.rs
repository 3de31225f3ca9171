//! The standalone server going away: SIGTERM drains it (every client hears the goodbye and its
//! reason, the process exits 0), and after SIGKILL and a restart on the same port every member
//! is back in its room by itself, publishing again, with media flowing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jrtc::{
    AccessToken, Call, CallEvent, CallOptions, Grants, JoinOptions, MediaEvent, Reason,
    ReconnectPolicy, TrackSource,
};

const SECRET: &str = "a test secret that is long enough to be accepted";

/// Starts `jrtc-server serve` on `bind`; returns the process and its URL.
fn start(bind: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", bind, "--log-level", "warn"])
        .env("JRTC_SECRET", SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading what the server logs, so its writes never fail.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{line}");
    (child, url)
}

fn token(user: &str) -> String {
    AccessToken::new(user)
        .grants(Grants::all())
        .sign(SECRET.as_bytes())
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn quick() -> CallOptions {
    CallOptions::default().reconnect(
        ReconnectPolicy::default().delays(Duration::from_millis(50), Duration::from_millis(250)),
    )
}

#[tokio::test]
async fn sigterm_says_goodbye_to_everyone_and_exits_zero() {
    let (child, url) = start("127.0.0.1:0");
    // One call that reconnects (the goodbye says to), one that must not.
    let stays = Call::connect_with(&url, token("alice"), quick())
        .await
        .unwrap();
    let once = CallOptions::default().reconnect(ReconnectPolicy::never());
    let leaves = Call::connect_with(&url, token("bob"), once).await.unwrap();
    for call in [&stays, &leaves] {
        let op = call.join("r", JoinOptions::default()).await.unwrap();
        call.outcome(op).await.unwrap();
    }
    let (mut a, mut b) = (stays.events(), leaves.events());
    signal(&child, "-TERM");
    async fn next(events: &mut jrtc::EventStream) -> Option<CallEvent> {
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("in time")
    }
    // Bob's call ends with the reason.
    loop {
        match next(&mut b).await {
            Some(CallEvent::Closed { reason }) => {
                assert_eq!(reason, Reason::ServerShutdown);
                break;
            }
            Some(_) => {}
            None => panic!("the stream ends after Closed"),
        }
    }
    // Alice's call heard the same reason and the hint, and tries to come back.
    loop {
        if let Some(CallEvent::Reconnecting { reason, .. }) = next(&mut a).await {
            assert_eq!(reason, Reason::ServerShutdown);
            break;
        }
    }
    let exit = tokio::task::spawn_blocking({
        let mut child = child;
        move || child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(exit.success(), "{exit:?}");
    stays.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_and_a_restart_every_member_is_back_with_media() {
    const MEMBERS: usize = 10;
    let (mut child, url) = start("127.0.0.1:0");
    let bind = url.trim_start_matches("ws://").to_owned();
    let mut calls = Vec::new();
    for i in 0..MEMBERS {
        let call = Call::connect_with(&url, token(&format!("m{i}")), quick())
            .await
            .unwrap();
        let op = call.join("r", JoinOptions::default()).await.unwrap();
        call.outcome(op).await.unwrap();
        let track = call.publish_track(TrackSource::Camera).await.unwrap();
        // Each member sends a packet every 20 ms, through the restart too (the same handle).
        tokio::spawn(async move {
            let mut ts = 0u32;
            loop {
                if track.write(vec![0x10, 0, 0, 0], ts, true).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ts = ts.wrapping_add(1800);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        calls.push(call);
    }
    let streams: Vec<_> = calls.iter().map(|c| c.events()).collect();

    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, _) = start(&bind);
    let restarted = Instant::now();

    // Every member: rejoined by itself, then receiving another member's packets.
    let mut waits = Vec::new();
    for (call, mut events) in calls.iter().cloned().zip(streams) {
        waits.push(tokio::spawn(async move {
            let mut rejoined = None;
            loop {
                match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
                    Ok(Some(CallEvent::Rejoined { snapshot })) => {
                        assert_eq!(snapshot.room.as_str(), "r");
                        rejoined = Some(restarted.elapsed());
                    }
                    Ok(Some(CallEvent::Media(MediaEvent::Subscribed { publication })))
                        if rejoined.is_some() =>
                    {
                        let track = call.remote_track(&publication.id).expect("the track");
                        let packet =
                            tokio::time::timeout(Duration::from_secs(5), track.next_packet())
                                .await
                                .expect("a packet in time");
                        assert!(packet.is_some());
                        return (rejoined.unwrap(), restarted.elapsed());
                    }
                    Ok(Some(CallEvent::Closed { reason })) => panic!("closed: {reason}"),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => panic!("{}: not back in time", call.user_id()),
                }
            }
        }));
    }
    let mut worst = (Duration::ZERO, Duration::ZERO);
    for wait in waits {
        let (rejoined, media) = wait.await.unwrap();
        worst = (worst.0.max(rejoined), worst.1.max(media));
    }
    eprintln!(
        "{MEMBERS} members: all rejoined within {:?} and received media within {:?} of the restart",
        worst.0, worst.1
    );
    assert!(
        worst.0 < Duration::from_secs(3),
        "rejoined in {:?}",
        worst.0
    );
    assert!(
        worst.1 < Duration::from_secs(3),
        "media back in {:?}",
        worst.1
    );
    for call in &calls {
        assert_eq!(call.room().unwrap().participants.len(), MEMBERS);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

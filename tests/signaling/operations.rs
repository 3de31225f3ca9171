//! Running it like a service, over real HTTP on the server's one port: health checks, readiness
//! during a drain, metrics that follow the calls, the signaling path.

use std::time::Duration;

use jrtc::{CallEvent, ServerHandle};
use serde_json::Value;

use crate::support::{User, WAIT, builder, refused, room_of};

/// GETs `path` on the server's HTTP port: the status and the body.
pub async fn get(server: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{server}{path}"))
        .await
        .expect("the server answers HTTP");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The metrics page, scraped now.
pub async fn scrape(server: &ServerHandle) -> String {
    let (status, text) = get(&server.http_url(), "/metrics").await;
    assert_eq!(status, 200);
    text
}

/// The value of one series (`name` or `name{labels}`) on a metrics page; 0 when absent (a
/// counter not yet touched).
pub fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            (name == series).then(|| v.parse().expect("a number"))
        })
        .unwrap_or(0.0)
}

/// Sends small packets on `track` until aborted (the room hears of a track once its media
/// reaches the server).
pub fn pump(track: jrtc::LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ts = 0u32;
        loop {
            // On video, the start of a VP8 key frame (the SFU starts a leg at one).
            let _ = track.write(vec![0x10, 0x00, 0xfe], ts, true).await;
            ts = ts.wrapping_add(960);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test]
async fn health_is_up_and_readiness_flips_while_draining_calls_go_on() {
    let server = builder()
        .drain_delay(Duration::from_millis(1500))
        .start()
        .await
        .unwrap();
    let base = server.http_url();
    assert_eq!(get(&base, "/healthz").await, (200, "ok\n".to_owned()));
    let (status, body) = get(&base, "/readyz").await;
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);

    let mut users = room_of(&server, "drain", &["alice", "bob"]).await;
    let shutdown = tokio::spawn(server.shutdown());
    let flipped = tokio::time::Instant::now();
    let body = loop {
        let (status, body) = get(&base, "/readyz").await;
        if status == 503 {
            break body;
        }
        assert!(flipped.elapsed() < WAIT, "readyz never said 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let draining: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(draining["ready"], false);
    assert_eq!(draining["reasons"], serde_json::json!(["draining"]));
    // Alive, and the calls go on while the load balancer takes the server out.
    assert_eq!(get(&base, "/healthz").await.0, 200);
    let op = users[0]
        .call
        .send_message(None, "text/plain", "still here")
        .await
        .unwrap();
    crate::support::done(&users[0].call, op).await;
    match users[1].next().await {
        CallEvent::Message(jrtc::MessageEvent::Received(m)) => {
            assert_eq!(&*m.content, "still here")
        }
        other => panic!("expected the message, got {other:?}"),
    }
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

#[tokio::test]
async fn signaling_is_at_slash_signal_and_at_the_root_and_other_paths_are_refused() {
    let server = crate::support::server().await;
    let token = crate::support::token(&server, "alice");
    let mut alice = User::connect_url(&format!("{}/signal", server.url()), token.clone()).await;
    alice.join("paths").await;
    let mut bob = User::connect_url(&server.url(), crate::support::token(&server, "bob")).await;
    bob.join("paths").await;

    // A WebSocket upgrade elsewhere is refused with 404, and nothing is held.
    let elsewhere = tokio_tungstenite::connect_async(format!("{}/other", server.url())).await;
    match elsewhere {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 404)
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    // Plain HTTP to an unknown route: a JSON 404.
    let (status, body) = get(&server.http_url(), "/nothing-here").await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "not_found");
    // Bytes that are not HTTP: the connection is closed, the server serves on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        raw.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(WAIT, raw.read_to_end(&mut buf)).await;
    }
    crate::support::message_reaches(&alice, &mut bob).await;
}

#[tokio::test]
async fn metrics_follow_the_calls() {
    let server = builder().start().await.unwrap();
    let before = scrape(&server).await;
    assert!(
        before.contains("# TYPE jrtc_participants gauge"),
        "{before}"
    );
    assert_eq!(value(&before, "jrtc_participants"), 0.0);

    let mut users = room_of(&server, "m", &["a", "b", "c"]).await;
    let page = scrape(&server).await;
    assert_eq!(value(&page, "jrtc_participants"), 3.0);
    assert_eq!(value(&page, "jrtc_rooms"), 1.0);
    assert_eq!(value(&page, "jrtc_logins_total"), 3.0);
    assert_eq!(value(&page, "jrtc_connections{kind=\"logged_in\"}"), 3.0);
    assert_eq!(value(&page, "jrtc_sessions{kind=\"connected\"}"), 3.0);
    assert_eq!(value(&page, "jrtc_frames_in_total{kind=\"join\"}"), 3.0);
    assert_eq!(value(&page, "jrtc_frames_out_total{kind=\"joined\"}"), 3.0);
    assert_eq!(value(&page, "jrtc_join_latency_seconds_count"), 3.0);
    // b and c heard c, then b... every join reached every earlier member: 0 + 1 + 2.
    assert_eq!(
        value(&page, "jrtc_frames_out_total{kind=\"participant_joined\"}"),
        3.0
    );

    // A refused request counts under its code.
    let refusals = "jrtc_refusals_total{kind=\"no_such_participant\"}";
    assert_eq!(value(&page, refusals), 0.0);
    let op = users[0].call.kick("nobody").await.unwrap();
    assert_eq!(
        refused(&users[0].call, op).await,
        jrtc::ErrorCode::NoSuchParticipant
    );
    let op = users[0]
        .call
        .send_message(None, "text/plain", "hello")
        .await
        .unwrap();
    crate::support::done(&users[0].call, op).await;
    for user in &mut users[1..] {
        assert!(matches!(user.next().await, CallEvent::Message(_)));
    }
    let page = scrape(&server).await;
    assert_eq!(value(&page, refusals), 1.0);
    assert_eq!(value(&page, "jrtc_messages_total"), 1.0);
    assert_eq!(value(&page, "jrtc_frames_out_total{kind=\"message\"}"), 2.0);
    assert!(value(&page, "jrtc_request_latency_seconds_count") >= 5.0);

    // Refused requests count as refusals, not as what they asked for: an answer to an
    // invitation that does not exist, and a message to someone who is not in the room.
    let op = users[1]
        .call
        .accept_invite(jrtc::InvitationId(99), false)
        .await
        .unwrap();
    refused(&users[1].call, op).await;
    let op = users[0]
        .call
        .send_message(Some("nobody"), "text/plain", "hello?")
        .await
        .unwrap();
    refused(&users[0].call, op).await;
    let page = scrape(&server).await;
    // Both reached the server...
    assert_eq!(
        value(&page, "jrtc_frames_in_total{kind=\"send_message\"}"),
        2.0
    );
    assert_eq!(
        value(&page, "jrtc_frames_in_total{kind=\"accept_invite\"}"),
        1.0
    );
    // ... and neither counts as done.
    assert_eq!(value(&page, "jrtc_messages_total"), 1.0);
    assert_eq!(
        value(&page, "jrtc_invitations_total{kind=\"accepted\"}"),
        0.0
    );

    // One leaves: the gauges follow.
    let c = users.pop().unwrap();
    c.call.close().await;
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let page = scrape(&server).await;
        if value(&page, "jrtc_participants") == 2.0 {
            assert_eq!(value(&page, "jrtc_logins_total"), 3.0);
            break;
        }
        assert!(tokio::time::Instant::now() < end, "{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The others heard c go.
    for user in &mut users {
        loop {
            if let CallEvent::Participant(jrtc::ParticipantEvent::Left { participant, .. }) =
                user.next().await
            {
                assert_eq!(participant.user_id.as_str(), "c");
                break;
            }
        }
    }
}

/// `promtool check metrics` on `page`: its complaints (empty when there are none). Fails at once
/// when promtool is not installed.
fn promtool(page: &str) -> String {
    use std::io::Write;
    let mut child = match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("promtool is not installed: apt-get install -y prometheus (or run scripts/test)")
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scraper asking for the classic text format (or for none) gets it, clean in promtool's
/// eyes; one preferring OpenMetrics gets that. The labelled counters docs/api.md names are
/// there at 0 before anything happened.
#[tokio::test]
async fn metrics_speak_the_format_asked_for_with_every_documented_series() {
    let server = builder().start().await.unwrap();
    let _users = room_of(&server, "m", &["a", "b"]).await;
    let url = format!("{}/metrics", server.http_url());
    let fetch = |accept: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new().get(url);
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let response = request.send().await.unwrap();
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (kind, response.text().await.unwrap())
        }
    };
    let classic_accept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
    for accept in [None, Some(classic_accept)] {
        let (kind, page) = fetch(accept).await;
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        assert!(!page.contains("# EOF"));
        assert_eq!(promtool(&page), "", "promtool on the page for {accept:?}");
        assert!(page.contains("# HELP jrtc_logins_total "), "{page}");
        for series in [
            "jrtc_refusals_total{kind=\"room_full\"} 0",
            "jrtc_refusals_total{kind=\"rate_limited\"} 0",
            "jrtc_invitations_total{kind=\"sent\"} 0",
            "jrtc_invitations_total{kind=\"canceled\"} 0",
            "jrtc_peer_connection_events_total{kind=\"failed\"} 0",
            "jrtc_webhooks_total{kind=\"dropped\"} 0",
            "jrtc_dropped_rtp_packets_total{kind=\"muted\"} 0",
        ] {
            assert!(page.lines().any(|l| l == series), "{series} in\n{page}");
        }
    }
    let prometheus =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (kind, page) = fetch(Some(prometheus)).await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(page.ends_with("# EOF\n"));
    assert!(page.contains("# TYPE jrtc_logins counter"));
    assert_eq!(value(&page, "jrtc_logins_total"), 2.0);
}

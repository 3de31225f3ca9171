//! An operator's log at the default level: a call with media, and hostile publishers that send
//! the server's connections forged ICE checks (the right username, a wrong MESSAGE-INTEGRITY:
//! each one's ICE agent complains of every one), write none of the WebRTC stack's WARN lines
//! (most follow from what clients send, so any client could flood the log with them);
//! `jrtc_media_stack_warnings_total` counts them instead.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use jrtc::{AccessToken, Call, CallEvent, Grants, JoinOptions, MediaEvent, TrackSource};
use jrtc_testkit::media::{MediaSender, stun_check};

const SECRET: &str = "the log test's secret, long enough to be accepted";

/// A publishing offer that is well formed but will never have a candidate: the server answers
/// it and its ICE agent keeps checking a connection with no candidate pair.
fn candidateless_offer() -> String {
    let fingerprint: Vec<String> = (0..32).map(|i| format!("{:02X}", i * 7)).collect();
    [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS *",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:hostileufrag",
        "a=ice-pwd:hostilepasswordhostilepassword",
        &format!("a=fingerprint:sha-256 {}", fingerprint.join(":")),
        "a=setup:actpass",
        "a=mid:0",
        "a=msid:hostile camera",
        "a=sendonly",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
    .join("\r\n")
}

/// The ICE username fragment and the UDP host candidate's address of an answer's SDP.
fn ufrag_and_address(sdp: &str) -> (String, std::net::SocketAddr) {
    let ufrag = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .expect("an ice-ufrag")
        .to_owned();
    let address = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .find_map(|c| {
            // foundation component transport priority address port typ host
            let fields: Vec<&str> = c.split_whitespace().collect();
            (fields.get(2)?.eq_ignore_ascii_case("udp"))
                .then(|| format!("{}:{}", fields[4], fields[5]).parse().ok())?
        })
        .expect("a UDP candidate");
    (ufrag, address)
}

/// A raw client that logs in as `user`, joins, offers its camera and sends no candidate; the
/// server's answer is waited for. The connection stays open while it is held; the server's
/// ufrag and media address come with it.
async fn hostile_publisher(
    url: &str,
    user: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
    std::net::SocketAddr,
) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let token = AccessToken::new(user)
        .grants(Grants::host())
        .sign(SECRET.as_bytes())
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frames = [
        serde_json::json!({"type": "hello", "version": 1, "token": token}),
        serde_json::json!({"type": "join", "op": 1, "room": "logs"}),
        serde_json::json!({"type": "publish_offer", "op": 2, "source": "camera", "sdp": candidateless_offer()}),
    ];
    for frame in frames {
        ws.send(Message::text(frame.to_string())).await.unwrap();
    }
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer to the offer in time")
            .expect("the connection is open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "publish_answer" {
            let (ufrag, address) = ufrag_and_address(frame["sdp"].as_str().unwrap());
            return (ws, ufrag, address);
        }
    }
}

/// `jrtc_media_stack_warnings_total` on the metrics page of the server at `http`.
async fn media_stack_warnings(http: &str) -> f64 {
    let page = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix("jrtc_media_stack_warnings_total "))
        .expect("the counter is on the page")
        .parse()
        .unwrap()
}

async fn member(url: &str, id: &str) -> (Call, jrtc::EventStream) {
    let token = AccessToken::new(id)
        .grants(Grants::host())
        .sign(SECRET.as_bytes())
        .unwrap();
    let call = Call::connect(url, token).await.unwrap();
    let events = call.events();
    let op = call.join("logs", JoinOptions::default()).await.unwrap();
    call.outcome(op).await.unwrap();
    (call, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_leaves_the_webrtc_stacks_warnings_out_of_the_log_and_counts_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("JRTC_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let url = loop {
        let line = lines.recv().unwrap();
        if line.contains("listening on") {
            break line.trim().rsplit(' ').next().unwrap().to_owned();
        }
    };

    let (alice, _alice_events) = member(&url, "alice").await;
    let (bob, mut bob_events) = member(&url, "bob").await;
    let camera = alice.publish_track(TrackSource::Camera).await.unwrap();
    let mic = alice.publish_track(TrackSource::Microphone).await.unwrap();
    let mut sender = MediaSender::new(Some(camera), Some(mic));
    sender.prime().await;
    // The camera reaches bob from its first key frame: alice sends while bob waits for both.
    let subscribed = async {
        let mut arrived = 0;
        while arrived < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(20), bob_events.next())
                .await
                .expect("bob receives alice's tracks in time")
                .expect("bob's call is open");
            if let CallEvent::Media(MediaEvent::Subscribed { .. }) = ev {
                arrived += 1;
            }
        }
    };
    tokio::join!(sender.send(30), subscribed);
    let track = bob.remote_track("alice/camera").expect("alice's camera");
    tokio::time::timeout(Duration::from_secs(10), track.next_packet())
        .await
        .expect("a packet of alice's camera")
        .expect("the track is live");

    // Hostile publishers: their connections can never connect, and they send forged checks.
    let mut hostile = Vec::new();
    for i in 0..4 {
        hostile.push(hostile_publisher(&url, &format!("mallory{i}")).await);
    }
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Each forged check their agents discard is a stack warning: forge until a score of them
    // is counted.
    let http = url.replacen("ws://", "http://", 1);
    let before = media_stack_warnings(&http).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while media_stack_warnings(&http).await < before + 20.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forged checks made no stack warnings"
        );
        for (_, ufrag, address) in &hostile {
            socket
                .send_to(&stun_check(&format!("{ufrag}:hostileufrag"), true), address)
                .await
                .unwrap();
        }
        // Polled: the server is another process, and this counter is the only sign from
        // outside that a check was discarded (nothing is sent to the client for it).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(hostile);
    let counted = media_stack_warnings(&http).await;
    alice.close().await;
    bob.close().await;
    let _ = child.kill();
    let _ = child.wait();

    let log: Vec<String> = lines.try_iter().collect();
    let stack: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" rtc") || l.contains(" webrtc"))
        .collect();
    assert!(
        stack.is_empty(),
        "the WebRTC stack's lines in the log: {stack:#?}"
    );
    let warnings = log.iter().filter(|l| l.contains("WARN")).count();
    println!("{warnings} WARN lines in the log; {counted} WebRTC stack warnings counted");
    assert!(counted > 0.0, "the call's stack warnings are counted");
}

//! Recording measurements (not a pass/fail test): `cargo bench -p jrtc-server --bench recording`.
//!
//! The server (`jrtc-server serve --no-embedded-recorder`) and the recorder (`jrtc-server
//! recorder`) run as processes of their own; `PARTICIPANTS` members (4 by default) in one room
//! each publish the VP8 fixture (15 frames/s) and 50 Opus frames/s, and receive each other.
//! For `RECORD_SECONDS` (10) without recording, then as long while recording: the CPU time each
//! process used (from /proc), the bytes the recorder wrote per second, and from SIGKILL of the
//! recorder to `Aborted` at a member.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jrtc::{
    AccessToken, Call, CallEvent, Grants, JoinOptions, RecordingEvent, RecordingOptions,
    TrackSource,
};
use jrtc_testkit::media::MediaSender;

const SECRET: &str = "the recording benchmark's secret, 32 bytes or more";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time of process `pid`, from /proc/PID/stat (clock ticks of 10 ms).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            dir_bytes(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jrtc-server"))
        .args(args)
        .env("JRTC_SECRET", SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("jrtc-server starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let participants = env_or("PARTICIPANTS", 4) as usize;
    let seconds = env_or("RECORD_SECONDS", 10);
    let dir = std::env::temp_dir().join(format!("jrtc-rec-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut server, line) = spawn(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--log-level",
        "error",
        "--no-embedded-recorder",
    ]);
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let (mut recorder, _) = spawn(&[
        "recorder",
        "--url",
        &url,
        "--log-level",
        "error",
        "--dir",
        dir.to_str().unwrap(),
    ]);

    let mut calls = Vec::new();
    let mut senders = Vec::new();
    for i in 0..participants {
        let token = AccessToken::new(format!("p{i}"))
            .grants(Grants::host())
            .sign(SECRET.as_bytes())
            .unwrap();
        let call = Call::connect(&url, token).await.unwrap();
        let op = call.join("bench", JoinOptions::default()).await.unwrap();
        call.outcome(op).await.unwrap();
        let camera = call.publish_track(TrackSource::Camera).await.unwrap();
        let mic = call.publish_track(TrackSource::Microphone).await.unwrap();
        senders.push(MediaSender::new(Some(camera), Some(mic)));
        calls.push(call);
    }
    // Every member reads what it receives (as an application would).
    for call in &calls {
        let call = call.clone();
        let mut media = call.events().media();
        tokio::spawn(async move {
            while let Some(ev) = media.next().await {
                if let Ok(jrtc::MediaEvent::Subscribed { publication }) = ev
                    && let Some(track) = call.remote_track(&publication.id)
                {
                    tokio::spawn(async move { while track.next_packet().await.is_some() {} });
                }
            }
        });
    }
    let frames = (seconds as usize + 4) * 15 * 2 + 60;
    let sending: Vec<_> = senders
        .into_iter()
        .map(|mut s| tokio::spawn(async move { s.send(frames).await }))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let window = Duration::from_secs(seconds);
    let (s0, r0) = (cpu(server.id()), cpu(recorder.id()));
    tokio::time::sleep(window).await;
    let (s1, r1) = (cpu(server.id()), cpu(recorder.id()));

    let mut events = calls[1].events();
    let op = calls[0]
        .start_recording(RecordingOptions::default())
        .await
        .unwrap();
    calls[0].outcome(op).await.unwrap();
    while let Some(ev) = events.next().await {
        if matches!(ev, CallEvent::Recording(RecordingEvent::Started { .. })) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s2, r2, b2) = (cpu(server.id()), cpu(recorder.id()), dir_bytes(&dir));
    tokio::time::sleep(window).await;
    let (s3, r3, b3) = (cpu(server.id()), cpu(recorder.id()), dir_bytes(&dir));

    recorder.kill().unwrap();
    let killed = Instant::now();
    let _ = recorder.wait();
    while let Some(ev) = events.next().await {
        if matches!(ev, CallEvent::Recording(RecordingEvent::Aborted { .. })) {
            break;
        }
    }
    let to_aborted = killed.elapsed();
    for s in sending {
        s.abort();
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let pct = |d: Duration| d.as_secs_f64() / window.as_secs_f64() * 100.0;
    let tracks = participants * 2;
    let legs = participants * (participants - 1) * 2;
    println!(
        "recording bench: {participants} participants, {tracks} tracks, {legs} member legs, {seconds} s windows"
    );
    println!(
        "  server CPU, forwarding only:       {:5.1} %",
        pct(s1 - s0)
    );
    println!(
        "  server CPU, forwarding + recorder: {:5.1} % ({} more legs)",
        pct(s3 - s2),
        tracks
    );
    println!(
        "  recorder CPU (idle, connected):    {:5.1} %",
        pct(r1 - r0)
    );
    println!(
        "  recorder CPU, recording:           {:5.1} %  = {:.2} % per track, {:.2} % per participant",
        pct(r3 - r2),
        pct(r3 - r2) / tracks as f64,
        pct(r3 - r2) / participants as f64
    );
    println!(
        "  server CPU per member leg:         {:.2} %",
        pct(s1 - s0) / legs as f64
    );
    println!(
        "  bytes written: {:.1} KB/s ({:.1} KB/s per participant)",
        (b3 - b2) as f64 / window.as_secs_f64() / 1000.0,
        (b3 - b2) as f64 / window.as_secs_f64() / 1000.0 / participants as f64
    );
    println!("  SIGKILL of the recorder → Aborted at a member: {to_aborted:?}");
}

//! Media measurements (not a pass/fail test): `cargo bench --bench media`.
//!
//! Join → first remote media packet: a member publishes its camera at 100 packets/s; another
//! member connects, joins and waits for the first packet, 20 times; p50 / p90 / max. The server
//! runs as its own process (`jrtc-server`). Forwarding throughput is measured by
//! `jrtc-server load-test --media P,S,PPS` (see docs/benchmarks.md).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jrtc::{AccessToken, Call, Grants, JoinOptions, MediaEvent, RemoteTrack, TrackSource};

const SECRET: &str = "the media benchmark's secret, 32 bytes or more";

fn token(user: &str) -> String {
    AccessToken::new(user)
        .grants(Grants::all())
        .sign(SECRET.as_bytes())
        .unwrap()
}

async fn member(url: &str, user: &str, room: &str) -> Call {
    let call = Call::connect(url, token(user)).await.unwrap();
    let op = call.join(room, JoinOptions::default()).await.unwrap();
    call.outcome(op).await.unwrap();
    call
}

fn pump(track: jrtc::LocalTrack, pps: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(pps)));
        let payload = vec![0x90u8; 1200];
        for i in 0u32.. {
            tick.tick().await;
            if track.write(payload.clone(), i * 900, true).await.is_err() {
                return;
            }
        }
    })
}

fn start_server() -> (Child, String) {
    let bin = env!("CARGO_BIN_EXE_jrtc-server");
    let mut child = Command::new(bin)
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "error"])
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
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    (child, url)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Waits for another member's track to reach `call`. The stream is opened before the first look,
/// so the track's arrival cannot fall between the look and the wait.
async fn remote_track(call: &Call, id: &str) -> RemoteTrack {
    let mut media = call.events().media();
    loop {
        if let Some(track) = call.remote_track(id) {
            return track;
        }
        // An event or a lag notice: either way, look again.
        assert!(media.next().await.is_some(), "the call closed first");
    }
}

async fn join_to_first_packet(url: &str) {
    let host = member(url, "host", "latency").await;
    let mut host_media = host.events().media();
    let camera = host.publish_track(TrackSource::Camera).await.unwrap();
    let _pump = pump(camera, 100);
    // The room has the track once the server has it (guests then receive it as they join).
    while !matches!(
        host_media.next().await,
        Some(Ok(MediaEvent::Published { .. }))
    ) {}
    let mut samples = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let guest = member(url, &format!("guest{i}"), "latency").await;
        let track = remote_track(&guest, "host/camera").await;
        track.next_packet().await.expect("a packet");
        samples.push(started.elapsed());
        guest.close().await;
    }
    samples.sort();
    println!(
        "join → first remote packet, 20 joins: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
    host.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut server, url) = start_server();
    runtime.block_on(async {
        join_to_first_packet(&url).await;
    });
    let _ = server.kill();
}

//! Media measurements (not a pass/fail test): `cargo bench --bench media`.
//!
//! Join → first remote media packet: a member publishes its camera at 100 packets/s; another
//! member connects, joins and waits for the first packet, 20 times; p50 / p90 / max. The server
//! runs as its own process (`jrtc-server`). Forwarding throughput is measured by
//! `jrtc-server load-test --media P,S,PPS` (see docs/benchmarks.md).
//!
//! `request_video` → the new size: a publisher sends three simulcast layers at 30 frames/s,
//! each a key frame only when one is asked of it (as an encoder does); a receiver asks for a
//! thumbnail and the full size in turn, 20 times each, and times each request until the first
//! key frame of the new size arrives.

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

/// The size each simulcast layer's key frames say, smallest first.
const LAYER_SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// A VP8 frame's first packet: a key frame with its size, or a delta frame, about as large as
/// a real encoder's for a layer of `layer_bytes` a frame (a key frame: three times that).
fn vp8_frame(key: Option<(u16, u16)>, layer_bytes: usize) -> Vec<u8> {
    match key {
        Some((width, height)) => {
            let mut payload = vec![0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
            payload.extend_from_slice(&width.to_le_bytes());
            payload.extend_from_slice(&height.to_le_bytes());
            payload.resize(1200.min(layer_bytes * 3), 0);
            payload
        }
        None => {
            let mut payload = vec![0x10, 0x01];
            payload.resize(layer_bytes, 0);
            payload
        }
    }
}

/// Each layer's bytes a frame: about 150, 500 and 1,200 kbit/s at 30 frames a second... of
/// single-packet frames, capped at one packet.
const LAYER_BYTES: [usize; 3] = [600, 1_100, 1_200];

/// Sends 30 frames a second on each layer of `track`, a layer's frame a key frame when one was
/// asked of it (and the first).
fn simulcast_encoder(track: jrtc::LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let asked = std::sync::Arc::new(std::sync::Mutex::new([true; 3]));
        let listener = {
            let (track, asked) = (track.clone(), asked.clone());
            tokio::spawn(async move {
                while let Some(layer) = track.keyframe_requested_layer().await {
                    asked.lock().unwrap()[layer] = true;
                }
            })
        };
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        for i in 0u32.. {
            tick.tick().await;
            for (layer, size) in LAYER_SIZES.into_iter().enumerate() {
                let key = std::mem::take(&mut asked.lock().unwrap()[layer]);
                let frame = vp8_frame(key.then_some(size), LAYER_BYTES[layer]);
                if track
                    .write_layer(layer, frame, i * 3000, true)
                    .await
                    .is_err()
                {
                    listener.abort();
                    return;
                }
            }
        }
    })
}

async fn request_to_new_size(url: &str) {
    let options = jrtc::CallOptions::default().simulcast(jrtc::Simulcast::camera());
    let publisher = Call::connect_with(url, token("pub"), options)
        .await
        .unwrap();
    let op = publisher
        .join("sizes", JoinOptions::default())
        .await
        .unwrap();
    publisher.outcome(op).await.unwrap();
    let camera = publisher.publish_track(TrackSource::Camera).await.unwrap();
    let _encoder = simulcast_encoder(camera);
    let viewer = member(url, "viewer", "sizes").await;
    let track = remote_track(&viewer, "pub/camera").await;
    let mut last = None;
    jrtc_testkit::browser::key_frame_size(&track, &mut last, |s| s == LAYER_SIZES[2]).await;
    let mut samples = Vec::new();
    for i in 0..40 {
        let (size, want) = if i % 2 == 0 {
            (jrtc::VideoSize::SMALL, LAYER_SIZES[0])
        } else {
            (jrtc::VideoSize::FULL, LAYER_SIZES[2])
        };
        let started = Instant::now();
        viewer.request_video("pub/camera", size).await.unwrap();
        jrtc_testkit::browser::key_frame_size(&track, &mut last, |s| s == want).await;
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "request_video → first key frame of the new size, 40 switches (30 fps layers, key \
         frames on request): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
    viewer.close().await;
    publisher.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut server, url) = start_server();
    runtime.block_on(async {
        join_to_first_packet(&url).await;
        request_to_new_size(&url).await;
    });
    let _ = server.kill();
}

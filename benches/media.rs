//! Media measurements (not a pass/fail test): `cargo bench --bench media`.
//!
//! 1. Join → first remote media packet: a member publishes its camera at 100 packets/s; another
//!    member connects, joins and waits for the first packet, 20 times; p50 / p90 / max.
//! 2. Forwarding: P publishers × S subscribers in one room, each publisher sending 1,200-byte RTP
//!    at a set rate for a few seconds. The server runs as its own process (`jrtc-server`), so its
//!    CPU time (from /proc) is the SFU's alone: forwarded packets per CPU-second.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jrtc::{AccessToken, Call, Grants, JoinOptions, TrackSource};

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
        let payload = bytes::Bytes::from(vec![0x90u8; 1200]);
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

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn join_to_first_packet(url: &str) {
    let host = member(url, "host", "latency").await;
    let camera = host.publish(TrackSource::Camera).await.unwrap();
    let _pump = pump(camera, 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut samples = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let guest = member(url, &format!("guest{i}"), "latency").await;
        let track = loop {
            if let Some(t) = guest.remote_track("host/camera") {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
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

async fn forwarding(url: &str, pid: u32, publishers: usize, subscribers: usize, pps: u32) {
    let room = format!("fwd-{publishers}x{subscribers}");
    let mut pubs = Vec::new();
    let mut pumps = Vec::new();
    for p in 0..publishers {
        let call = member(url, &format!("pub{p}"), &room).await;
        let track = call.publish(TrackSource::Camera).await.unwrap();
        pumps.push(pump(track, pps));
        pubs.push(call);
    }
    let mut subs = Vec::new();
    for s in 0..subscribers {
        subs.push(member(url, &format!("sub{s}"), &room).await);
    }
    // Wait until every subscriber receives every publisher.
    let deadline = Instant::now() + Duration::from_secs(20);
    while subs.iter().any(|s| s.remote_tracks().len() < publishers) {
        assert!(Instant::now() < deadline, "subscriptions did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counters: Vec<_> = subs
        .iter()
        .flat_map(|s| s.remote_tracks())
        .map(|track| {
            tokio::spawn(async move {
                let mut n = 0u64;
                let end = Instant::now() + Duration::from_secs(4);
                while let Ok(Some(_)) =
                    tokio::time::timeout_at(end.into(), track.next_packet()).await
                {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let cpu0 = cpu_seconds(pid);
    let mut forwarded = 0;
    for c in counters {
        forwarded += c.await.unwrap();
    }
    let cpu = cpu_seconds(pid) - cpu0;
    let offered = (publishers * subscribers) as f64 * f64::from(pps) * 4.0;
    println!(
        "forwarding {publishers} publishers × {subscribers} subscribers at {pps} pps each: \
         {:.0} packets/s delivered ({:.1}% of offered), server CPU {:.2} s over 4 s → {:.0} forwarded packets per CPU-second",
        forwarded as f64 / 4.0,
        forwarded as f64 / offered * 100.0,
        cpu,
        forwarded as f64 / cpu.max(1e-9)
    );
    for p in pumps {
        p.abort();
    }
    for call in pubs.iter().chain(subs.iter()) {
        call.close().await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut server, url) = start_server();
    runtime.block_on(async {
        join_to_first_packet(&url).await;
        for (p, s, pps) in [(1, 4, 500), (2, 4, 500), (4, 4, 250), (1, 8, 2000)] {
            forwarding(&url, server.id(), p, s, pps).await;
        }
    });
    let _ = server.kill();
}

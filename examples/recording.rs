//! Recording a short call: alice publishes the VP8 fixture and Opus frames, bob listens; alice
//! records three seconds, then stops. The embedded server runs its own
//! recorder; the files and the manifest land in `target/recording-example/`. Prints the files,
//! the manifest, and what ffprobe reads in each file when ffprobe is installed (packets, key
//! frames: the recorder asks for one every 2 s). Exits by itself.
//!
//! Run with `cargo run --example recording`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use jrtc::media::rtc::media::io::ivf_reader::IVFReader;
use jrtc::media::rtc::rtp::codec::vp8::Vp8Payloader;
use jrtc::media::rtc::rtp::packetizer::Payloader;
use jrtc::{
    AccessToken, Call, Grants, JoinOptions, LocalTrack, RecordingEvent, RecordingOptions, Server,
    TrackSource,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/testsrc-160x120.ivf"
);
const OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/recording-example");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(OUT);
    let server = Server::builder()
        .development()
        .recording_dir(OUT)
        .start()
        .await?;
    let token = |user: &str| server.mint(&AccessToken::new(user).grants(Grants::host()));
    let alice = Call::connect(&server.url(), token("alice")?).await?;
    let bob = Call::connect(&server.url(), token("bob")?).await?;
    for call in [&alice, &bob] {
        let op = call.join("recorded", JoinOptions::default()).await?;
        call.outcome(op).await?;
    }
    let mut events = bob.events().recording();

    let camera = alice.publish_track(TrackSource::Camera).await?;
    let mic = alice.publish_track(TrackSource::Microphone).await?;
    // Media first, so the tracks are flowing through the SFU when the recording begins.
    let media = tokio::spawn(send(camera, mic, Duration::from_secs(6)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let op = alice.start_recording(RecordingOptions::default()).await?;
    alice.outcome(op).await?;
    while let Some(event) = events.next().await {
        if let Ok(RecordingEvent::Started {
            recording,
            recorder,
            ..
        }) = &event
        {
            println!("bob: recording {recording} started; the recorder is `{recorder}`");
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let op = alice.stop_recording().await?;
    alice.outcome(op).await?;
    let files = loop {
        match events.next().await {
            Some(Ok(RecordingEvent::Stopped { files, reason, .. })) => {
                println!("bob: recording stopped ({reason:?})");
                break files;
            }
            Some(Ok(RecordingEvent::Aborted { reason, .. })) => {
                return Err(format!("the recording was aborted: {reason:?}").into());
            }
            // Other recording events, or a lag (this example reads everything in time).
            Some(_) => {}
            None => return Err("bob's call closed".into()),
        }
    };
    media.abort();

    let dir = std::fs::read_dir(OUT)?
        .next()
        .ok_or("no recording directory")??
        .path();
    for file in &files {
        println!(
            "  {} — {} ({:?}), {} bytes, {} ms from {} ms",
            dir.join(&file.name).display(),
            file.participant,
            file.sources,
            file.bytes,
            file.duration_ms,
            file.start_ms
        );
        probe(&dir.join(&file.name));
    }
    let manifest = std::fs::read_to_string(dir.join(jrtc::record::MANIFEST))?;
    println!("manifest.json:\n{manifest}");
    for call in [&alice, &bob] {
        call.close().await;
    }
    Ok(())
}

/// What ffprobe reads in `path`, if it is installed.
fn probe(path: &std::path::Path) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets"])
        .args(["-show_entries", "stream=codec_name,nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                println!("    ffprobe: {line} (codec, packets)");
            }
        }
        _ => {
            println!("    (ffprobe is not installed: apt-get install ffmpeg)");
            return;
        }
    }
    let keys = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(path)
        .output();
    if let Ok(keys) = keys {
        let n = String::from_utf8_lossy(&keys.stdout)
            .lines()
            .filter(|l| l.starts_with('K'))
            .count();
        println!("    ffprobe: {n} video key frames");
    }
}

/// Sends the VP8 fixture (looped, 15 frames a second) and 20 ms Opus frames for `span`.
async fn send(camera: LocalTrack, mic: LocalTrack, span: Duration) -> Result<(), jrtc::MediaError> {
    let (mut reader, _) =
        IVFReader::new(std::fs::File::open(FIXTURE).expect("the fixture")).expect("an IVF file");
    let mut frames = Vec::new();
    while let Ok((frame, _)) = reader.parse_next_frame() {
        frames.push(frame.freeze());
    }
    let mut payloader = Vp8Payloader::default();
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut sent_video, mut index) = (0u64, 0usize);
    while start.elapsed() < span {
        tick.tick().await;
        let ms = start.elapsed().as_millis() as u64;
        // An Opus "silence" frame (TOC: CELT full band, 20 ms, mono).
        mic.write(
            Bytes::from_static(&[0xF8, 0xFF, 0xFE]),
            (ms * 48) as u32,
            true,
        )
        .await?;
        if ms * 15 / 1000 >= sent_video {
            // A key frame asked for (the recorder asks when it starts): the fixture's first
            // frame is one.
            if futures::FutureExt::now_or_never(camera.keyframe_requested()).is_some() {
                index = 0;
            }
            let frame = &frames[index % frames.len()];
            index += 1;
            let packets = payloader.payload(1200, frame).expect("a VP8 frame");
            let last = packets.len() - 1;
            for (i, payload) in packets.into_iter().enumerate() {
                camera.write(payload, (ms * 90) as u32, i == last).await?;
            }
            sent_video += 1;
        }
    }
    Ok(())
}

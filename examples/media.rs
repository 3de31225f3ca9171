//! Media through the embedded server's SFU: alice streams a VP8 video file, bob writes what he
//! receives to an IVF file. Frame counts are printed; exits by itself.
//!
//! Run with `cargo run --example media` (the output goes to `target/media-example.ivf`).

use std::fs::File;
use std::io::BufReader;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use jrtc::media::rtc::media::io::Writer;
use jrtc::media::rtc::media::io::ivf_reader::IVFReader;
use jrtc::media::rtc::media::io::ivf_writer::IVFWriter;
use jrtc::media::rtc::rtp::codec::vp8::Vp8Payloader;
use jrtc::media::rtc::rtp::packetizer::Payloader;
use jrtc::{AccessToken, Call, Grants, JoinOptions, Server, TrackSource};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/testsrc-160x120.ivf"
);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().development().start().await?;
    let token = |user: &str| server.mint(&AccessToken::new(user).grants(Grants::host()));
    let alice = Call::connect(&server.url(), token("alice")?).await?;
    let bob = Call::connect(&server.url(), token("bob")?).await?;
    for call in [&alice, &bob] {
        let op = call.join("demo", JoinOptions::default()).await?;
        call.outcome(op).await?;
    }

    // Alice reads the fixture's frames and publishes her camera.
    let (mut reader, header) = IVFReader::new(BufReader::new(File::open(FIXTURE)?))?;
    let mut frames = Vec::new();
    while let Ok((frame, _)) = reader.parse_next_frame() {
        frames.push(frame.freeze());
    }
    let fps = header.timebase_denominator.max(1) / header.timebase_numerator.max(1);
    println!(
        "alice: {} VP8 frames at {fps} fps from {FIXTURE}",
        frames.len()
    );
    let camera = alice.publish_track(TrackSource::Camera).await?;

    // Bob waits for the track, then writes every packet to an IVF file until the stream ends.
    let output = concat!(env!("CARGO_MANIFEST_DIR"), "/target/media-example.ivf");
    let receiver = {
        let bob = bob.clone();
        tokio::spawn(async move {
            // Opened before the first look, so the track's arrival cannot fall in between.
            let mut media = bob.events().media();
            let track = loop {
                if let Some(track) = bob.remote_track("alice/camera") {
                    break track;
                }
                if media.next().await.is_none() {
                    return Err("bob's call closed before the track came".into());
                }
            };
            println!("bob: receiving {}", track.publication().id);
            let mut writer = IVFWriter::new(File::create(output)?, &header)?;
            let mut received = 0usize;
            while let Ok(Some(packet)) =
                tokio::time::timeout(Duration::from_secs(1), track.next_packet()).await
            {
                if packet.header.marker {
                    received += 1;
                }
                writer.write_rtp(&packet)?;
            }
            writer.close()?;
            Ok::<usize, Box<dyn std::error::Error + Send + Sync>>(received)
        })
    };

    // Send the file twice at its frame rate: the first key frame may pass before bob listens.
    let mut payloader = Vp8Payloader::default();
    let step = 90_000 / fps.max(1);
    let mut sent = 0;
    for (i, frame) in frames.iter().chain(frames.iter()).enumerate() {
        let packets: Vec<Bytes> = payloader.payload(1200, frame)?;
        let last = packets.len().saturating_sub(1);
        for (j, payload) in packets.into_iter().enumerate() {
            camera.write(payload, i as u32 * step, j == last).await?;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(1000 / u64::from(fps.max(1)))).await;
    }
    let received = receiver.await?.map_err(|e| e.to_string())?;
    println!("alice: sent {sent} frames; bob: received {received} frames, written to {output}");
    alice.close().await;
    bob.close().await;
    server.shutdown().await;
    if received == 0 {
        return Err("no frame arrived".into());
    }
    Ok(())
}

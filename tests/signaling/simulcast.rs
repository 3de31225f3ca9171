//! Simulcast from a Rust publisher through the SFU: three layers (their own SSRCs, the mid/rid
//! header extensions naming them) of VP8 key frames whose frame headers give each layer's
//! size; a receiver gets the layer that fits the size it asks for, switching without a gap in
//! the numbering, and the publisher is told which layers somebody wants (dynacast) and drops
//! writes to the others.

use std::time::Duration;

use jrtc::{CallEvent, CallOptions, MediaEvent, Simulcast, TrackSource, VideoSize};
use jrtc_testkit::browser::key_frame_size;

use crate::media::remote;
use crate::support::{User, server, token};

/// Each layer's frame size, smallest first.
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// A VP8 key frame's first bytes: the payload descriptor (start of partition 0), the frame tag
/// of a key frame, the start code, then width and height.
fn key_frame(width: u16, height: u16) -> Vec<u8> {
    let mut payload = vec![0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
    payload.extend_from_slice(&width.to_le_bytes());
    payload.extend_from_slice(&height.to_le_bytes());
    payload
}

/// Writes a key frame on every layer every 10 ms (a real sender's pace; each layer's frame is
/// its size), until stopped.
fn pump(track: jrtc::LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0u32..6000 {
            for (layer, (width, height)) in SIZES.into_iter().enumerate() {
                if track
                    .write_layer(layer, key_frame(width, height), i * 900, true)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // A sender's pace (a frame per layer every 10 ms): the receiver needs a steady
            // stream to switch in, and writing flat out would only fill the queues; nothing
            // is waited for here.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// The next `LayersWanted` of `user`.
async fn layers_wanted(user: &mut User) -> usize {
    loop {
        if let CallEvent::Media(MediaEvent::LayersWanted { source, layers }) = user.next().await {
            assert_eq!(source, TrackSource::Camera);
            return layers;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_gets_the_layer_it_asks_for_and_the_publisher_only_what_is_wanted() {
    let server = server().await;
    let options = CallOptions::default().simulcast(Simulcast::camera());
    let mut alice = User::connect_with(&server.url(), token(&server, "alice"), options).await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let camera = alice.call.publish_track(TrackSource::Camera).await.unwrap();
    assert_eq!(camera.layers(), 3);
    assert!(matches!(
        camera.write_layer(3, vec![0], 0, true).await,
        Err(jrtc::MediaError::NoSuchLayer {
            layer: 3,
            layers: 3
        })
    ));
    let pumping = pump(camera.clone());

    // Bob asked nothing: the largest layer.
    let track = remote(&mut bob, "alice/camera").await;
    let mut last = None;
    key_frame_size(&track, &mut last, |s| s == SIZES[2]).await;
    assert_eq!(layers_wanted(&mut alice).await, 3);

    // A thumbnail: the smallest layer, and alice is asked for nothing more.
    for (request, layer) in [
        (VideoSize::SMALL, 0),
        (VideoSize::MEDIUM, 1),
        (VideoSize::new(1920, 1080), 2),
        (VideoSize::new(100, 100), 0),
    ] {
        let op = bob
            .call
            .request_video("alice/camera", request)
            .await
            .unwrap();
        bob.call.outcome(op).await.unwrap();
        let (_, numbering) = key_frame_size(&track, &mut last, |s| s == SIZES[layer]).await;
        assert_eq!(numbering.largest_step, 1, "{request}: {numbering:?}");
        assert_eq!(layers_wanted(&mut alice).await, layer + 1, "{request}");
        for l in 0..3 {
            assert_eq!(camera.is_layer_sent(l), l <= layer, "{request}: layer {l}");
        }
    }

    // Bob pauses the video: nobody receives it, the smallest layer goes on.
    let op = bob.call.unsubscribe_track("alice/camera").await.unwrap();
    bob.call.outcome(op).await.unwrap();
    // (Still the smallest layer only: the set did not change, and no event says so.)
    let op = bob
        .call
        .request_video("alice/camera", VideoSize::LARGE)
        .await
        .unwrap();
    bob.call.outcome(op).await.unwrap();
    // Resumed with a request for the large layer: alice sends all three again.
    let op = bob.call.subscribe_track("alice/camera").await.unwrap();
    bob.call.outcome(op).await.unwrap();
    assert_eq!(layers_wanted(&mut alice).await, 3);
    let track = remote(&mut bob, "alice/camera").await;
    key_frame_size(&track, &mut last, |s| s == SIZES[2]).await;
    pumping.abort();
}

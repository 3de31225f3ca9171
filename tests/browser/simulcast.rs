//! Chromium publishes its camera with three simulcast layers (a 1280×720 fake camera made with
//! ffmpeg for the test); a Rust receiver and a browser receiver each get the layer that fits
//! the size they ask for, read from the frames themselves (the VP8 frame header at the Rust
//! client, `frameWidth` in the browser's `getStats`), and a change of request switches at a key
//! frame without a gap in the sequence numbers. The publisher sends only the layers somebody
//! wants (dynacast), as its encoder's statistics show.

use std::path::{Path, PathBuf};

use jrtc::VideoSize;
use serde_json::json;

use crate::support::{Browser, Member, ffmpeg_fixture, in_namespace, key_frame_size, server};

/// A 1280×720 y4m clip (one second of ffmpeg's moving test pattern, which Chromium loops),
/// made once per test run.
pub(crate) fn camera_720p() -> PathBuf {
    ffmpeg_fixture(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "camera-1280x720.y4m",
        "testsrc2=size=1280x720:rate=30",
        &["-t", "1", "-pix_fmt", "yuv420p"],
    )
}

/// The browser receiver's decoded frame width of `publication`, once it is `width`.
fn frame_width_is(publication: &str, width: u32) -> String {
    format!(
        "return await T.poll(async () => {{
           const pc = T.calls.viewer.peerConnections().subscribe;
           const track = T.calls.viewer.remote({publication})?.track;
           for (const s of (await pc.getStats()).values()) {{
             if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === track?.id) {{
               return {{ ok: s.frameWidth === {width}, width: s.frameWidth, decoded: s.framesDecoded }};
             }}
           }}
           return null;
         }});",
        publication = json!(publication),
    )
}

/// `call` asks for `web/camera` at `request`; its next key frames are `want` in size, numbered
/// on from `last` without a gap.
async fn switch(
    call: &jrtc::Call,
    track: &jrtc::RemoteTrack,
    last: &mut Option<u16>,
    request: VideoSize,
    want: (u16, u16),
) {
    let op = call.request_video("web/camera", request).await.unwrap();
    call.outcome(op).await.unwrap();
    let (size, numbering) = key_frame_size(track, last, |s| s == want).await;
    assert_eq!(size, want);
    assert_eq!(numbering.largest_step, 1, "{request}: {numbering:?}");
}

/// The publisher's simulcast layers that are sending (`active` in its outbound statistics),
/// once they are `rids` (sorted).
fn active_layers_are(rids: &serde_json::Value) -> String {
    format!(
        "return await T.poll(async () => {{
           const pc = T.calls.web.peerConnections().publish;
           const rids = [];
           for (const s of (await pc.getStats()).values()) {{
             if (s.type === 'outbound-rtp' && s.kind === 'video' && s.active) rids.push(s.rid);
           }}
           rids.sort();
           return {{ ok: JSON.stringify(rids) === JSON.stringify({rids}), rids }};
         }});"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_gets_the_simulcast_layer_it_asks_for() {
    if !in_namespace("simulcast::each_receiver_gets_the_simulcast_layer_it_asks_for") {
        return;
    }
    let camera = camera_720p();
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "r").await;
    let browser = Browser::launch_with_camera(&camera).await;
    let publisher = browser.open_harness(&server.http_url()).await;
    browser
        .join_call(publisher, &server, "web", "r", false)
        .await;
    browser
        .eval(
            publisher,
            "await T.calls.web.outcome(T.calls.web.publishCamera({ width: 1280, height: 720 }));",
        )
        .await;

    // The browser sends three layers: its outbound statistics show a stream per rid.
    let layers = browser
        .eval(
            publisher,
            "return await T.poll(async () => {
               const pc = T.calls.web.peerConnections().publish;
               const rids = [];
               for (const s of (await pc.getStats()).values()) {
                 if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded > 0) rids.push(s.rid);
               }
               rids.sort();
               return { ok: rids.length === 3, rids };
             });",
        )
        .await;
    assert_eq!(layers["rids"], json!(["f", "h", "q"]));

    // The Rust receiver asked nothing: the full size. Then a thumbnail, a tile, full again:
    // each switch lands on a key frame of that size, with no gap in the numbering.
    let track = rust.remote("web/camera").await;
    let mut last = None;
    let (size, numbering) = key_frame_size(&track, &mut last, |s| s == (1280, 720)).await;
    assert_eq!(size, (1280, 720));
    // The only receiver asking for less, the publisher stops the layers above (dynacast): its
    // encoder's statistics say so.
    for (request, want, sent) in [
        (VideoSize::SMALL, (320, 180), json!(["q"])),
        (VideoSize::MEDIUM, (640, 360), json!(["h", "q"])),
        (VideoSize::FULL, (1280, 720), json!(["f", "h", "q"])),
    ] {
        switch(&rust.call, &track, &mut last, request, want).await;
        let active = browser.eval(publisher, &active_layers_are(&sent)).await;
        assert_eq!(active["rids"], sent, "{request}");
    }
    assert!(numbering.largest_step <= 1, "{numbering:?}");

    // The publisher negotiates again (its microphone): the layers still reach the receivers.
    browser
        .eval(
            publisher,
            "await T.calls.web.outcome(T.calls.web.publishMicrophone());",
        )
        .await;
    for (request, want) in [
        (VideoSize::SMALL, (320, 180)),
        (VideoSize::FULL, (1280, 720)),
    ] {
        switch(&rust.call, &track, &mut last, request, want).await;
    }

    // A browser receiver asks for a thumbnail, then the full size: its decoder says so.
    let viewer = browser.open_harness(&server.http_url()).await;
    browser
        .join_call(viewer, &server, "viewer", "r", false)
        .await;
    browser
        .eval(
            viewer,
            "await T.until('viewer', (e) => e.type === 'media' && e.kind === 'subscribed' && e.publication.id === 'web/camera');
             await T.calls.viewer.outcome(T.calls.viewer.requestVideo('web/camera', { width: 320, height: 180 }));",
        )
        .await;
    let small = browser
        .eval(viewer, &frame_width_is("web/camera", 320))
        .await;
    assert_eq!(small["width"], json!(320), "{small}");
    browser
        .eval(
            viewer,
            "await T.calls.viewer.outcome(T.calls.viewer.requestVideo('web/camera', { width: 1920, height: 1080 }));",
        )
        .await;
    let full = browser
        .eval(viewer, &frame_width_is("web/camera", 1280))
        .await;
    assert_eq!(full["width"], json!(1280), "{full}");
    browser.quit().await;
}

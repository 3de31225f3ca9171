//! Extra streams in the browser: a Rust member publishes a second camera and a second screen
//! beside its camera and screen share; Chromium (jrtc.js) receives all four and sees them in the
//! participant's `streams`, and the call page gives each a tile of its own. Chromium publishes
//! an extra camera of its own (a canvas) that the Rust member receives and decodes. When the
//! second camera is unpublished, its tile goes.

use jrtc::{StreamName, TrackSource};

use crate::media::send_media;
use crate::support::{Browser, Member, in_namespace, server, vp8_frames};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_cameras_and_screens_reach_chromium_and_the_call_page_and_back() {
    if !in_namespace(
        "extra_streams::extra_cameras_and_screens_reach_chromium_and_the_call_page_and_back",
    ) {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "r").await;
    let second = TrackSource::ExtraCamera(StreamName::new("second").unwrap());
    let slides = TrackSource::ExtraScreen(StreamName::new("slides").unwrap());
    let mut senders = Vec::new();
    for source in [TrackSource::Camera, second, TrackSource::Screen, slides] {
        let track = rust.call.publish_track(source).await.unwrap();
        senders.push(send_media(Some(track), None));
    }
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "r", false).await;
    // Chromium receives the four, and the participant lists the two extra ones.
    let got = browser
        .eval(
            page,
            "await T.poll(async () => {
               const ids = T.calls.web.remotes().map((r) => r.publication.id).sort();
               const rust = T.calls.web.room().participants.find((p) => p.user_id === 'rust');
               const streams = [...(rust?.streams ?? [])].sort();
               return ids.length === 4 && streams.length === 2 ? { ok: true, ids, streams } : { ids, streams };
             });
             const ids = T.calls.web.remotes().map((r) => r.publication.id).sort();
             const rust = T.calls.web.room().participants.find((p) => p.user_id === 'rust');
             return [ids, [...rust.streams].sort()];",
        )
        .await;
    assert_eq!(
        got,
        serde_json::json!([
            [
                "rust/camera",
                "rust/camera.second",
                "rust/screen",
                "rust/screen.slides"
            ],
            ["camera.second", "screen.slides"]
        ])
    );

    // Chromium's own extra camera, a canvas, reaches the Rust member as video it can decode.
    browser
        .eval(
            page,
            "const canvas = document.createElement('canvas');
             canvas.width = 320; canvas.height = 180;
             const ctx = canvas.getContext('2d');
             let hue = 0;
             setInterval(() => { ctx.fillStyle = `hsl(${hue = (hue + 7) % 360} 70% 50%)`; ctx.fillRect(0, 0, 320, 180); }, 40);
             const track = canvas.captureStream(25).getVideoTracks()[0];
             await T.calls.web.outcome(T.calls.web.publish('camera.canvas', track));",
        )
        .await;
    let canvas = rust.remote("web/camera.canvas").await;
    assert_eq!(vp8_frames(&canvas, 10).await, 10);

    // The call page: a tile for each of the Rust member's four videos, and the canvas.
    let app = crate::page::join_page(
        &browser,
        &format!("{}/?room=r", server.http_url()),
        "Viewer",
    )
    .await;
    browser
        .wait_for(
            app,
            "document.querySelectorAll('.tile[data-user=\"rust\"]').length === 4
             && document.querySelector('.tile[data-user=\"rust\"][data-source=\"camera.second\"] video')?.videoWidth > 0
             && document.querySelector('.tile[data-user=\"web\"][data-source=\"camera.canvas\"] video')?.videoWidth > 0",
        )
        .await;
    if let Ok(dir) = std::env::var("JRTC_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join("call-page-extra-streams.png");
        browser
            .eval(app, "document.querySelector('#toasts').replaceChildren();")
            .await;
        browser.screenshot(app, &path, 1280, 800).await;
    }

    // The second camera goes (its writer first: an unpublished track refuses writes): its
    // tile goes too.
    senders.remove(1).abort();
    let op = rust.call.unpublish(second).await.unwrap();
    jrtc_testkit::support::done(&rust.call, op).await;
    browser
        .wait_for(
            app,
            "document.querySelectorAll('.tile[data-user=\"rust\"]').length === 3
             && !document.querySelector('.tile[data-source=\"camera.second\"]')",
        )
        .await;
    for sender in senders {
        sender.abort();
    }
    browser.quit().await;
}

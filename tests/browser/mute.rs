//! A host mutes a browser: the browser stops sending its microphone, says who muted it, and
//! the call page tells the person; the Rust host hears nothing until the browser unmutes.

use jrtc::{CallEvent, MediaEvent, TrackSource};
use serde_json::json;

use crate::support::{Browser, Member, in_namespace, packets, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_mutes_a_browser_which_stops_sending_and_is_told_who() {
    if !in_namespace("mute::a_host_mutes_a_browser_which_stops_sending_and_is_told_who") {
        return;
    }
    let server = server().await;
    // The Rust member makes the room, so it hosts.
    let mut rust = Member::join(&server, "rust", "m").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "m", true).await;
    let mic = rust.remote("web/microphone").await;
    assert!(packets(&mic, 25).await >= 25);

    let op = rust
        .call
        .mute_member("web", TrackSource::Microphone)
        .await
        .unwrap();
    jrtc_testkit::support::done(&rust.call, op).await;
    rust.until(|ev| match ev {
        CallEvent::Media(MediaEvent::Muted {
            publication, by, ..
        }) if publication.id == "web/microphone" => {
            assert_eq!(by.as_ref().map(|u| u.as_str()), Some("rust"));
            Some(())
        }
        _ => None,
    })
    .await;
    // The browser is told who muted it, and its microphone's sender carries no track any more.
    let seen = browser
        .eval(
            page,
            "const ev = await T.until('web', (e) => e.type === 'media' && e.kind === 'muted');
             const pc = T.calls.web.peerConnections().publish;
             // replaceTrack(null) settles a moment after the event.
             const { sending } = await T.poll(async () => {
               const sending = pc.getSenders().filter((s) => s.track && s.track.kind === 'audio').length;
               return { ok: sending === 0, sending };
             });
             return { by: ev.by, source: ev.publication.source, sending };",
        )
        .await;
    assert_eq!(
        seen,
        json!({"by": "rust", "source": "microphone", "sending": 0})
    );

    // The browser unmutes; the host hears it again.
    browser
        .eval(
            page,
            "const call = T.calls.web; await call.outcome(call.mute('microphone', false));",
        )
        .await;
    rust.until(|ev| match ev {
        CallEvent::Media(MediaEvent::Unmuted { publication, .. })
            if publication.id == "web/microphone" =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    assert!(packets(&mic, 25).await >= 25);
}

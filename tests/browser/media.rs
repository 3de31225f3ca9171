//! A browser and a Rust client in one call: media both ways (video frames reassembled from RTP
//! on the Rust side, decoded frames on the browser's), audio both ways, messages both ways, and
//! the Rust client's mute and screen share seen by the browser as events.

use jrtc::{CallEvent, MessageScope, TrackSource};
use serde_json::json;

use crate::support::{Browser, Member, in_namespace, packets, server, vp8_frames};
use jrtc_testkit::media::MediaSender;

/// Sends the VP8 fixture (and Opus frames) on these tracks until aborted.
pub fn send_media(
    camera: Option<jrtc::LocalTrack>,
    mic: Option<jrtc::LocalTrack>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sender = MediaSender::new(camera, mic);
        loop {
            sender.send(30).await;
        }
    })
}

/// Publishes `member`'s camera (and microphone, with `mic`) and sends the fixture on them until
/// the returned task is aborted; the microphone's handle.
pub async fn publish_fixture(
    member: &Member,
    mic: bool,
) -> (tokio::task::JoinHandle<()>, Option<jrtc::LocalTrack>) {
    let camera = member
        .call
        .publish_track(TrackSource::Camera)
        .await
        .unwrap();
    let mic = if mic {
        Some(
            member
                .call
                .publish_track(TrackSource::Microphone)
                .await
                .unwrap(),
        )
    } else {
        None
    };
    (send_media(Some(camera), mic.clone()), mic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_and_a_rust_client_exchange_media_messages_and_events() {
    if !in_namespace("media::a_browser_and_a_rust_client_exchange_media_messages_and_events") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "r").await;
    let (sending, mic) = publish_fixture(&rust, true).await;
    let mic = mic.unwrap();

    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "r", true).await;
    let roster = browser
        .eval(
            page,
            "return T.calls.web.room().participants.map((p) => p.user_id);",
        )
        .await;
    assert_eq!(roster, json!(["rust", "web"]));

    // The browser's camera and microphone reach the Rust client.
    let video = rust.remote("web/camera").await;
    assert!(vp8_frames(&video, 50).await >= 50);
    let audio = rust.remote("web/microphone").await;
    assert!(packets(&audio, 50).await >= 50);

    // The Rust client's fixture video and audio reach the browser.
    let stats = browser
        .eval(
            page,
            "return await T.poll(async () => {
               const s = await T.inbound('web', 'rust/camera');
               const v = s.find((x) => x.kind === 'video');
               return { ok: v && v.framesDecoded >= 50, v };
             });",
        )
        .await;
    assert!(
        stats["v"]["framesDecoded"].as_u64().unwrap() >= 50,
        "{stats}"
    );
    assert_eq!(stats["v"]["frameWidth"], json!(160), "{stats}");
    let stats = browser
        .eval(
            page,
            "return await T.poll(async () => {
               const s = await T.inbound('web', 'rust/microphone');
               const a = s.find((x) => x.kind === 'audio');
               return { ok: a && a.packets >= 50, a };
             });",
        )
        .await;
    assert!(stats["a"]["packets"].as_u64().unwrap() >= 50, "{stats}");

    // Messages both ways, to the group and one to one.
    browser
        .eval(
            page,
            "const call = T.calls.web;
             await call.outcome(call.sendMessage(null, 'text/plain', 'hello from the browser'));
             await call.outcome(call.sendMessage('rust', 'text/plain', 'just for you, rust'));",
        )
        .await;
    for (content, scope) in [
        ("hello from the browser", MessageScope::Group),
        ("just for you, rust", MessageScope::OneToOne),
    ] {
        let got = rust
            .until(|ev| match ev {
                CallEvent::Message(jrtc::MessageEvent::Received(m)) => Some(m.clone()),
                _ => None,
            })
            .await;
        assert_eq!(
            (got.from.as_str(), got.content.as_str(), got.scope),
            ("web", content, scope)
        );
    }
    rust.say(None, "hello from rust").await;
    rust.say(Some("web"), "a secret for web").await;
    let got = browser
        .eval(
            page,
            "const a = await T.until('web', (e) => e.type === 'message' && e.kind === 'received' && e.message.content === 'hello from rust');
             const b = await T.until('web', (e) => e.type === 'message' && e.kind === 'received' && e.message.content === 'a secret for web');
             return [a.message.scope, a.message.from, b.message.scope, b.message.from];",
        )
        .await;
    assert_eq!(got, json!(["group", "rust", "one_to_one", "rust"]));

    // The Rust client mutes its microphone and shares its screen: the browser sees both.
    let op = rust.call.set_muted(&mic, true).await.unwrap();
    rust.call.outcome(op).await.unwrap();
    let screen = rust.call.publish_track(TrackSource::Screen).await.unwrap();
    let sharing = send_media(Some(screen), None);
    let got = browser
        .eval(
            page,
            "const muted = await T.until('web', (e) => e.type === 'media' && e.kind === 'muted');
             const flag = await T.until('web', (e) => e.type === 'participant' && e.kind === 'updated' && e.participant.user_id === 'rust' && e.changes.audio);
             const share = await T.until('web', (e) => e.type === 'property' && e.changes.screen_share);
             const published = await T.until('web', (e) => e.type === 'media' && e.kind === 'published' && e.publication.source === 'screen');
             const received = await T.until('web', (e) => e.type === 'media' && e.kind === 'subscribed' && e.publication.id === 'rust/screen');
             return [muted.publication.id, flag.participant.audio, share.properties.screen_share.user_id, published.publication.id, received.publication.id];",
        )
        .await;
    assert_eq!(
        got,
        json!([
            "rust/microphone",
            false,
            "rust",
            "rust/screen",
            "rust/screen"
        ])
    );

    sending.abort();
    sharing.abort();
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shares_its_screen_with_a_rust_client() {
    if !in_namespace("media::a_browser_shares_its_screen_with_a_rust_client") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "demo").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    // getDisplayMedia: headless Chromium's capture of its own (fake) screen, picked without a
    // prompt (`--auto-select-desktop-capture-source`).
    browser.join_call(page, &server, "web", "demo", false).await;
    let code = "const call = T.calls.web;
         await call.outcome(call.publishScreen());
         return call.localTrack('screen').getSettings().displaySurface;";
    assert_eq!(browser.eval(page, code).await, json!("monitor"));
    let sharer = rust.screen_sharer().await;
    assert_eq!(sharer, "web");
    let screen = rust.remote("web/screen").await;
    assert!(vp8_frames(&screen, 20).await >= 20);

    // Stopping the share ends it for everyone, and the captured screen is released.
    let state = browser
        .eval(
            page,
            "const call = T.calls.web;
             const track = call.localTrack('screen');
             await call.outcome(call.unpublish('screen'));
             return track.readyState;",
        )
        .await;
    assert_eq!(state, json!("ended"));
    rust.until(|ev| match ev {
        CallEvent::Property(jrtc::PropertyEvent::Changed { properties, .. })
            if properties.screen_share.is_none() =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_media_requests_leave_a_browsers_media_working() {
    if !in_namespace("media::refused_media_requests_leave_a_browsers_media_working") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "busy").await;
    let screen = rust.call.publish_track(TrackSource::Screen).await.unwrap();
    let sharing = send_media(Some(screen), None);
    assert_eq!(rust.screen_sharer().await, "rust");

    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    // Someone else shares: the browser's share is refused, and its capture closed.
    browser.join_call(page, &server, "web", "busy", false).await;
    let code = "const call = T.calls.web;
         const refused = await call.outcome(call.publishScreen()).then(() => null, (e) => e.code);
         return [refused, call.localTrack('screen')];";
    assert_eq!(
        browser.eval(page, code).await,
        json!(["screen_share_busy", null])
    );
    // The publishing connection goes on: the camera is published and arrives.
    browser
        .eval(
            page,
            "await T.calls.web.outcome(T.calls.web.publishCamera());",
        )
        .await;
    let video = rust.remote("web/camera").await;
    assert!(vp8_frames(&video, 20).await >= 20);

    // A mute asked for at once may come before the server has the track: whether it is taken
    // or refused, the room ends up with the microphone as the browser has it.
    let got = browser
        .eval(
            page,
            "const call = T.calls.web;
             await call.outcome(call.publishMicrophone());
             const taken = await call.outcome(call.mute('microphone', true)).then(() => true, (e) => e.code);
             await T.until('web', (e) => e.type === 'media' && e.kind === 'published' && e.publication.id === 'web/microphone');
             const now = call.room().publications.find((p) => p.id === 'web/microphone');
             return [taken, now.muted];",
        )
        .await;
    let want = if got[0] == json!(true) {
        json!(true)
    } else {
        json!(false)
    };
    assert_eq!(got[1], want, "{got}");
    if got[0] != json!(true) {
        assert_eq!(got[0], json!("no_such_track"), "{got}");
    }
    sharing.abort();
    browser.quit().await;
}

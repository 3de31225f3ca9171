//! The call page at the server's root, used as a person would: type a name, join, see the
//! remote video play, chat. Also takes the page's screenshots (desktop and phone widths) into
//! `$JRTC_SCREENSHOTS` (default: the test's temporary directory).

use jrtc::CallEvent;
use serde_json::json;

use crate::media::publish_fixture;
use crate::support::{Browser, Member, Page, in_namespace, server};

pub(crate) async fn join_page(browser: &Browser, url: &str, name: &str) -> Page {
    let page = browser.open(url).await;
    let lobby = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("call-page-lobby.png");
    browser.screenshot(page, &lobby, 1280, 800).await;
    browser.fill(page, "#name", name).await;
    browser.click(page, "#join").await;
    browser
        .wait_for(
            page,
            "!document.querySelector('#call').classList.contains('hidden')",
        )
        .await;
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_joins_from_the_call_page_sees_video_and_chats() {
    if !in_namespace("page::a_person_joins_from_the_call_page_sees_video_and_chats") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "design-review").await;
    let (sending, _) = publish_fixture(&rust, true).await;

    let browser = Browser::launch().await;
    let url = format!("{}/?room=design-review", server.http_url());
    let ada = join_page(&browser, &url, "Ada Lovelace").await;
    // The Rust client's video plays in its tile.
    browser
        .wait_for(
            ada,
            "(() => { const v = document.querySelector('.tile[data-user=\"rust\"] video'); return v && v.videoWidth > 0 && !v.paused; })()",
        )
        .await;
    let size = browser
        .eval(
            ada,
            "const v = document.querySelector('.tile[data-user=\"rust\"] video'); return [v.videoWidth, v.videoHeight];",
        )
        .await;
    assert_eq!(size, json!([160, 120]));

    // A chat message typed into the page reaches the Rust client…
    browser.click(ada, ".tab[data-tab=chat]").await;
    browser
        .fill(ada, "#chat-input", "Hello from the call page")
        .await;
    browser.click(ada, "#chat-send").await;
    let got = rust
        .until(|ev| match ev {
            CallEvent::Message(jrtc::MessageEvent::Received(m)) => Some(m.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got.content.as_str(), "Hello from the call page");
    assert!(
        got.from.as_str().starts_with("ada-lovelace-"),
        "{}",
        got.from
    );
    // … and one from the Rust client shows in the page.
    rust.say(None, "Welcome, Ada!").await;
    browser
        .wait_for(
            ada,
            "[...document.querySelectorAll('#chat-list li')].some((li) => li.textContent.includes('Welcome, Ada!'))",
        )
        .await;

    // A second person joins; the page lists three people and shows three tiles with video.
    let grace = join_page(&browser, &url, "Grace Hopper").await;
    browser
        .wait_for(
            ada,
            "document.querySelectorAll('#people li').length === 3 && [...document.querySelectorAll('.tile video')].every((v) => v.videoWidth > 0)",
        )
        .await;
    let flags = browser
        .eval(
            ada,
            "return [...document.querySelectorAll('#people li .meta')].map((m) => m.textContent.split(' · ')[0]);",
        )
        .await;
    assert_eq!(flags, json!(["host", "guest", "guest"]));

    let dir = std::env::var("JRTC_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).unwrap();
    browser.click(ada, ".tab[data-tab=people]").await;
    // The pictures show the call, not the passing notices.
    browser
        .eval(ada, "document.querySelector('#toasts').replaceChildren();")
        .await;
    browser
        .screenshot(ada, &dir.join("call-page-1280x800.png"), 1280, 800)
        .await;
    browser
        .screenshot(ada, &dir.join("call-page-phone.png"), 390, 844)
        .await;
    for name in ["call-page-1280x800.png", "call-page-phone.png"] {
        assert!(std::fs::metadata(dir.join(name)).unwrap().len() > 10_000);
    }

    // Ada shares her screen from the controls: a wide tile for it, and the room's sharer is her.
    browser.click(ada, "#toggle-screen").await;
    browser
        .wait_for(
            grace,
            "(() => { const v = document.querySelector('.tile.screen video'); return v && v.videoWidth > 0; })()",
        )
        .await;
    let sharer = rust.screen_sharer().await;
    assert!(sharer.starts_with("ada-lovelace-"), "{sharer}");

    // The host removes Grace: her page goes back to the lobby and says why; Ada's list shrinks.
    let grace_id = browser.eval(grace, "return window.jrtcPage.userId;").await;
    let op = rust.call.kick(grace_id.as_str().unwrap()).await.unwrap();
    rust.call.outcome(op).await.unwrap();
    browser
        .wait_for(
            grace,
            "!document.querySelector('#lobby').classList.contains('hidden') && document.querySelector('#toasts').textContent.includes('A host removed you')",
        )
        .await;
    browser
        .wait_for(ada, "document.querySelectorAll('#people li').length === 2 && document.querySelectorAll('.tile:not(.screen)').length === 2")
        .await;

    sending.abort();
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_call_page_takes_its_token_from_the_backend() {
    if !in_namespace("page::a_production_call_page_takes_its_token_from_the_backend") {
        return;
    }
    let server = jrtc::Server::builder()
        .secret(b"the production page test's secret, 32+ bytes".to_vec())
        .call_page(true)
        .start()
        .await
        .unwrap();
    let browser = Browser::launch().await;
    // Without a token, the page asks for one (this server mints none).
    let page = browser
        .open(&format!("{}/?room=prod", server.http_url()))
        .await;
    browser
        .wait_for(
            page,
            "!document.querySelector('#token-field').classList.contains('hidden')",
        )
        .await;
    // With the backend's token in the fragment: it joins, and the token leaves the address bar.
    let token = crate::support::token(&server, "backend-user");
    let url = format!("{}/?room=prod#token={token}", server.http_url());
    let page = join_page(&browser, &url, "Backend User").await;
    let got = browser
        .eval(
            page,
            "return [location.hash, window.jrtcPage.userId, document.querySelector('#token-field').classList.contains('hidden')];",
        )
        .await;
    assert_eq!(got, json!(["", "backend-user", true]));
    browser.quit().await;
}

// -- the page's layout and its messages in common cases ----------------------------------------

/// A Rust member of `room`, user `user` named `name` (a host's grants; a host only if the room
/// is new).
async fn named_member(server: &jrtc::ServerHandle, user: &str, name: &str, room: &str) -> Member {
    let token = server
        .mint(
            &jrtc::AccessToken::new(user)
                .name(name)
                .grants(jrtc::Grants::host()),
        )
        .unwrap();
    let call = jrtc::Call::connect(&server.url(), token).await.unwrap();
    let events = call.events();
    let op = call.join(room, Default::default()).await.unwrap();
    jrtc_testkit::support::done(&call, op).await;
    Member { call, events }
}

/// Sets `page`'s viewport to `width`×`height` (the driver resizes a page for a screenshot: this
/// one is thrown away).
async fn viewport(browser: &Browser, page: Page, width: u32, height: u32) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewport.png");
    browser.screenshot(page, &path, width, height).await;
}

/// Where the page tests put the pictures of the page: `$JRTC_SCREENSHOTS` (`docs/` to refresh
/// the documentation's), else the tests' temporary directory.
fn screenshots() -> std::path::PathBuf {
    let dir = std::env::var("JRTC_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// From now on, every notice (toast) the page shows is also kept in `window.toastLog`, so that
/// a test sees the ones already gone.
const TOAST_LOG: &str = "window.toastLog = [];
    new MutationObserver((changes) => {
      for (const c of changes) for (const n of c.addedNodes) window.toastLog.push(n.textContent);
    }).observe(document.querySelector('#toasts'), { childList: true });";

/// Each other member's line in the People list: its name, the name's rendered width, whether a
/// button of the line covers any of it, and the line's buttons.
const OTHER_NAMES: &str = "
    const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    return [...document.querySelectorAll('#people li')]
      .filter((li) => li.dataset.user !== window.jrtcPage.userId)
      .map((li) => {
        const name = li.querySelector('.name');
        const box = name.getBoundingClientRect();
        const buttons = [...li.querySelectorAll('button')];
        return {
          name: name.textContent,
          width: Math.round(box.width),
          covered: buttons.some((b) => overlap(box, b.getBoundingClientRect())),
          buttons: buttons.map((b) => b.textContent),
        };
      });";

/// Whether the video tiles lie apart (none drawn over another).
const TILES_APART: &str = "
    const boxes = [...document.querySelectorAll('.tile')].map((t) => t.getBoundingClientRect());
    const over = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    return boxes.length > 1 && boxes.every((a, i) => boxes.every((b, j) => i === j || !over(a, b)));";

/// Whether each of the controls `ids` is on screen and takes a click at its centre (the element
/// there is the button or inside it, not a panel over it).
fn reachable(ids: &[&str]) -> String {
    format!(
        "return Object.fromEntries({ids}.map((id) => {{
           const b = document.getElementById(id);
           const r = b.getBoundingClientRect();
           const x = r.left + r.width / 2, y = r.top + r.height / 2;
           const inView = r.width > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
           const hit = inView && b.contains(document.elementFromPoint(x, y));
           return [id, hit];
         }}));",
        ids = json!(ids)
    )
}

/// A host at 1280×800 with two other members, one sharing her screen: every other member's
/// name in the People list is readable beside the host's buttons (Make host, Mute, Remove,
/// Message), and the shared screen fits the stage above the controls without scrolling. Takes
/// `call-page-host-1280x800.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_people_list_and_a_shared_screen_fit_at_1280x800() {
    if !in_namespace("page::a_hosts_people_list_and_a_shared_screen_fit_at_1280x800") {
        return;
    }
    let server = server().await;
    let browser = Browser::launch().await;
    let url = format!("{}/?room=planning", server.http_url());
    // Ada makes the room: she hosts.
    let ada = join_page(&browser, &url, "Ada Lovelace").await;
    let katherine = named_member(&server, "katherine", "Katherine Johnson", "planning").await;
    let (sending, _) = publish_fixture(&katherine, true).await;
    join_page(&browser, &url, "Grace Hopper").await;
    // Both others' cameras play, and both have a microphone to mute (the Mute button).
    browser
        .wait_for(
            ada,
            "document.querySelectorAll('#people li').length === 3
             && document.querySelectorAll('.tile video').length === 3
             && [...document.querySelectorAll('.tile video')].every((v) => v.videoWidth > 0)
             && [...document.querySelectorAll('#people button')].filter((b) => b.textContent === 'Mute').length === 2",
        )
        .await;
    // Katherine shares her screen (the fixture again: a picture that shows in the screenshot,
    // where headless Chromium's own screen is black).
    let screen = katherine
        .call
        .publish_track(jrtc::TrackSource::Screen)
        .await
        .unwrap();
    let sharing = crate::media::send_media(Some(screen), None);
    browser
        .wait_for(
            ada,
            "(() => { const v = document.querySelector('.tile.screen video'); return v && v.getVideoPlaybackQuality().totalVideoFrames > 15; })()",
        )
        .await;
    browser
        .eval(ada, "document.querySelector('#toasts').replaceChildren();")
        .await;

    // Each other member's name keeps a readable width, and no button covers it.
    let names = browser.eval(ada, OTHER_NAMES).await;
    let names = names.as_array().unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    for line in names {
        assert!(
            line["width"].as_i64().unwrap() >= 80,
            "a name squashed: {line}"
        );
        assert_eq!(
            line["covered"],
            json!(false),
            "a name under a button: {line}"
        );
        assert_eq!(
            line["buttons"],
            json!(["Make host", "Mute", "Remove", "Message"]),
            "{line}"
        );
    }

    // The shared screen lies within the viewport, above the controls, at a useful size, and
    // neither the page nor the stage scrolls.
    let fit = browser
        .eval(
            ada,
            "const v = document.querySelector('.tile.screen video').getBoundingClientRect();
             const controls = document.querySelector('.controls').getBoundingClientRect();
             const grid = document.querySelector('#grid');
             return {
               inside: v.top >= 0 && v.left >= 0 && v.right <= innerWidth && v.bottom <= controls.top,
               height: Math.round(v.height),
               pageScrolls: document.scrollingElement.scrollHeight > innerHeight,
               stageScrolls: grid.scrollHeight > grid.clientHeight + 1,
               cameras: [...document.querySelectorAll('.tile:not(.screen)')].every((t) => {
                 const r = t.getBoundingClientRect();
                 return r.top >= 0 && r.bottom <= controls.top && r.right <= innerWidth;
               }),
             };",
        )
        .await;
    assert_eq!(fit["inside"], json!(true), "{fit}");
    assert_eq!(fit["pageScrolls"], json!(false), "{fit}");
    assert_eq!(fit["stageScrolls"], json!(false), "{fit}");
    assert_eq!(fit["cameras"], json!(true), "{fit}");
    assert_eq!(browser.eval(ada, TILES_APART).await, json!(true));
    assert!(fit["height"].as_i64().unwrap() >= 400, "{fit}");

    let picture = screenshots().join("call-page-host-1280x800.png");
    browser.screenshot(ada, &picture, 1280, 800).await;
    assert!(std::fs::metadata(&picture).unwrap().len() > 10_000);
    sending.abort();
    sharing.abort();
    browser.quit().await;
}

/// On a phone (390×844) a host opens People, then Chat: the control bar stays reachable (Leave
/// and Mute take a click at their centre), the names stay readable, and the panel closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_panel_leaves_the_controls_reachable_and_closes() {
    if !in_namespace("page::on_a_phone_the_panel_leaves_the_controls_reachable_and_closes") {
        return;
    }
    let server = server().await;
    let browser = Browser::launch().await;
    let url = format!("{}/?room=on-the-go", server.http_url());
    let ada = join_page(&browser, &url, "Ada Lovelace").await;
    viewport(&browser, ada, 390, 844).await;
    let katherine = named_member(&server, "katherine", "Katherine Johnson", "on-the-go").await;
    let (sending, _) = publish_fixture(&katherine, true).await;
    browser
        .wait_for(
            ada,
            "[...document.querySelectorAll('#people button')].some((b) => b.textContent === 'Mute')
             && document.querySelectorAll('.tile').length === 2
             && [...document.querySelectorAll('.tile')].every((t) => !t.classList.contains('no-video') && t.querySelector('video').videoWidth > 0)",
        )
        .await;
    let controls = ["leave", "toggle-mic", "toggle-camera", "end"];
    let all_reachable =
        json!({"leave": true, "toggle-mic": true, "toggle-camera": true, "end": true});

    // People.
    browser.click(ada, "#toggle-panel").await;
    let panel_shown = "(() => { const r = document.querySelector('#panel').getBoundingClientRect();
        return r.height > 200 && r.top >= 0 && r.bottom <= innerHeight; })()";
    browser.wait_for(ada, panel_shown).await;
    assert_eq!(
        browser.eval(ada, &reachable(&controls)).await,
        all_reachable
    );
    assert_eq!(browser.eval(ada, TILES_APART).await, json!(true));
    let names = browser.eval(ada, OTHER_NAMES).await;
    for line in names.as_array().unwrap() {
        assert!(
            line["width"].as_i64().unwrap() >= 80,
            "a name squashed: {line}"
        );
        assert_eq!(
            line["covered"],
            json!(false),
            "a name under a button: {line}"
        );
    }
    browser
        .eval(ada, "document.querySelector('#toasts').replaceChildren();")
        .await;
    let picture = screenshots().join("call-page-phone-people.png");
    browser.screenshot(ada, &picture, 390, 844).await;
    assert!(std::fs::metadata(&picture).unwrap().len() > 10_000);
    // Chat: the box to type in is reachable too.
    browser.click(ada, ".tab[data-tab=chat]").await;
    assert_eq!(
        browser
            .eval(
                ada,
                &reachable(&["leave", "toggle-mic", "chat-input", "chat-send"])
            )
            .await,
        json!({"leave": true, "toggle-mic": true, "chat-input": true, "chat-send": true})
    );

    // The panel closes with its own button; the stage is back.
    assert_eq!(
        browser.eval(ada, &reachable(&["close-panel"])).await,
        json!({"close-panel": true})
    );
    browser.click(ada, "#close-panel").await;
    browser
        .wait_for(
            ada,
            "!document.querySelector('#panel').checkVisibility() && document.querySelector('#grid').getBoundingClientRect().height > 400",
        )
        .await;
    assert_eq!(
        browser.eval(ada, &reachable(&controls)).await,
        all_reachable
    );

    // With the panel open again, Leave works.
    browser.click(ada, "#toggle-panel").await;
    browser.wait_for(ada, panel_shown).await;
    browser.click(ada, "#leave").await;
    browser
        .wait_for(
            ada,
            "!document.querySelector('#lobby').classList.contains('hidden')",
        )
        .await;
    sending.abort();
    browser.quit().await;
}

/// Camera and microphone denied: one clear notice (no error text, no prefix twice), and the
/// person is in the call as a listener, seeing the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_devices_give_one_clear_notice_and_the_call_goes_on() {
    if !in_namespace("page::denied_devices_give_one_clear_notice_and_the_call_goes_on") {
        return;
    }
    let server = server().await;
    let katherine = named_member(&server, "katherine", "Katherine Johnson", "blocked").await;
    let (sending, _) = publish_fixture(&katherine, true).await;
    let browser = Browser::launch().await;
    let url = format!("{}/?room=blocked", server.http_url());
    let page = browser.open(&url).await;
    // The driver's Chromium grants the (fake) devices without asking
    // (--use-fake-ui-for-media-stream): a person's "Block" is what getUserMedia then does, a
    // NotAllowedError, so the page's getUserMedia is made to do just that.
    browser
        .eval(
            page,
            &format!(
                "navigator.mediaDevices.getUserMedia = async () => {{
                   throw new DOMException('Permission denied', 'NotAllowedError');
                 }};
                 {TOAST_LOG}"
            ),
        )
        .await;
    browser.fill(page, "#name", "Ada Lovelace").await;
    browser.click(page, "#join").await;
    browser
        .wait_for(page, "window.toastLog.some((t) => t.includes('blocked'))")
        .await;
    // A listener: Katherine's video plays.
    browser
        .wait_for(
            page,
            "(() => { const v = document.querySelector('.tile[data-user=\"katherine\"] video'); return v && v.videoWidth > 0; })()",
        )
        .await;
    let toasts = browser.eval(page, "return window.toastLog;").await;
    assert_eq!(
        toasts,
        json!([
            "Camera and microphone are blocked — allow them in the browser to be seen and heard."
        ])
    );
    sending.abort();
    browser.quit().await;
}

/// A browser without WebRTC joins, says on the page that it cannot send or receive media, and
/// chats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_webrtc_says_so_and_chats() {
    if !in_namespace("page::a_browser_without_webrtc_says_so_and_chats") {
        return;
    }
    let server = server().await;
    let mut katherine = named_member(&server, "katherine", "Katherine Johnson", "no-media").await;
    let (sending, _) = publish_fixture(&katherine, true).await;
    let browser = Browser::launch().await;
    let url = format!("{}/?room=no-media", server.http_url());
    let page = browser.open(&url).await;
    // jrtc.js looks RTCPeerConnection up when it makes a peer connection, so this is a browser
    // without it from the join on.
    browser
        .eval(
            page,
            &format!("window.RTCPeerConnection = undefined; {TOAST_LOG}"),
        )
        .await;
    browser.fill(page, "#name", "Ada Lovelace").await;
    browser.click(page, "#join").await;
    browser
        .wait_for(
            page,
            "!document.querySelector('#notice').classList.contains('hidden') && document.querySelector('#notice').textContent.includes('cannot send or receive')",
        )
        .await;
    // Chat both ways.
    katherine.say(None, "Can you read me?").await;
    browser
        .wait_for(
            page,
            "document.querySelector('#chat-list').textContent.includes('Can you read me?')",
        )
        .await;
    browser.click(page, ".tab[data-tab=chat]").await;
    browser.fill(page, "#chat-input", "Yes, in writing").await;
    browser.click(page, "#chat-send").await;
    let got = katherine
        .until(|ev| match ev {
            CallEvent::Message(jrtc::MessageEvent::Received(m)) => Some(m.content.to_string()),
            _ => None,
        })
        .await;
    assert_eq!(got, "Yes, in writing");
    let state = browser
        .eval(
            page,
            "return { toasts: window.toastLog, mic: document.querySelector('#toggle-mic').disabled };",
        )
        .await;
    assert_eq!(state, json!({"toasts": [], "mic": true}));
    sending.abort();
    browser.quit().await;
}

/// A recorded room: the page shows "● Recording" in its header while the recorder is in the
/// room, and neither lists nor announces the recorder as a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_shows_recording_and_not_the_recorder() {
    if !in_namespace("page::a_recorded_room_shows_recording_and_not_the_recorder") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-recordings");
    let server = jrtc::Server::builder()
        .development()
        .recording_dir(&dir)
        .start()
        .await
        .unwrap();
    let mut host = named_member(&server, "grace", "Grace Hopper", "taped").await;
    let browser = Browser::launch().await;
    let page = join_page(
        &browser,
        &format!("{}/?room=taped", server.http_url()),
        "Ada Lovelace",
    )
    .await;
    browser.eval(page, TOAST_LOG).await;
    let op = host
        .call
        .start_recording(jrtc::RecordingOptions::default())
        .await
        .unwrap();
    jrtc_testkit::support::done(&host.call, op).await;
    let recorder = host
        .until(|ev| match ev {
            CallEvent::Recording(jrtc::RecordingEvent::Started { recorder, .. }) => {
                Some(recorder.to_string())
            }
            _ => None,
        })
        .await;
    browser
        .wait_for(
            page,
            &format!(
                "window.jrtcPage.call.room().participants.some((p) => p.user_id === {id})
                 && !document.querySelector('#recording').classList.contains('hidden')",
                id = json!(recorder)
            ),
        )
        .await;
    let seen = browser
        .eval(
            page,
            "return {
               indicator: document.querySelector('#recording').textContent.trim(),
               people: [...document.querySelectorAll('#people li .name')].map((n) => n.textContent),
               count: document.querySelector('#people-count').textContent,
               tiles: document.querySelectorAll('.tile').length,
               recipients: [...document.querySelectorAll('#chat-to option')].map((o) => o.textContent),
               toasts: window.toastLog,
             };",
        )
        .await;
    assert_eq!(
        seen,
        json!({
            "indicator": "● Recording",
            "people": ["Grace Hopper", "Ada Lovelace (you)"],
            "count": "2",
            "tiles": 2,
            "recipients": ["Everyone", "Grace Hopper"],
            "toasts": [],
        })
    );
    browser
        .screenshot(
            page,
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("call-page-recording.png"),
            1280,
            800,
        )
        .await;

    // Stopped: the indicator goes, and the recorder leaves without a word.
    let op = host.call.stop_recording().await.unwrap();
    jrtc_testkit::support::done(&host.call, op).await;
    browser
        .wait_for(
            page,
            &format!(
                "!window.jrtcPage.call.room().participants.some((p) => p.user_id === {id})
                 && document.querySelector('#recording').classList.contains('hidden')",
                id = json!(recorder)
            ),
        )
        .await;
    assert_eq!(
        browser.eval(page, "return window.toastLog;").await,
        json!([])
    );
    browser.quit().await;
}

/// A host mutes a person, then removes and bans her: her page says who muted her, and, when
/// she tries to join again, that she is banned — by name, not by user id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_then_banned_person_is_told_by_name() {
    if !in_namespace("page::a_muted_then_banned_person_is_told_by_name") {
        return;
    }
    let server = server().await;
    let mut host = named_member(&server, "grace", "Grace Hopper", "strict").await;
    let browser = Browser::launch().await;
    let page = join_page(
        &browser,
        &format!("{}/?room=strict", server.http_url()),
        "Ada Lovelace",
    )
    .await;
    browser.eval(page, TOAST_LOG).await;
    let ada = browser.eval(page, "return window.jrtcPage.userId;").await;
    let ada = ada.as_str().unwrap().to_owned();
    let mic = format!("{ada}/microphone");
    host.until(|ev| match ev {
        CallEvent::Media(jrtc::MediaEvent::Published { publication, .. })
            if publication.id == mic =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    // Muted by the host: the page says by whom.
    let op = host
        .call
        .mute_member(&ada, jrtc::TrackSource::Microphone)
        .await
        .unwrap();
    jrtc_testkit::support::done(&host.call, op).await;
    browser
        .wait_for(
            page,
            "window.toastLog.includes('Grace Hopper muted your microphone')",
        )
        .await;

    // Removed with a ban, then trying again: the page names her, not her id.
    let op = host.call.ban(&ada, jrtc::BanTerm::room()).await.unwrap();
    jrtc_testkit::support::done(&host.call, op).await;
    browser
        .wait_for(
            page,
            "!document.querySelector('#lobby').classList.contains('hidden')",
        )
        .await;
    browser.click(page, "#join").await;
    browser
        .wait_for(
            page,
            "document.querySelector('#join-error').textContent !== ''",
        )
        .await;
    let error = browser
        .eval(
            page,
            "return document.querySelector('#join-error').textContent;",
        )
        .await;
    assert_eq!(error, json!("Ada Lovelace is banned from room strict"));
    browser.quit().await;
}

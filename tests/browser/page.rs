//! The call page at the server's root, used as a person would: type a name, join, see the
//! remote video play, chat. Also takes the page's screenshots (desktop and phone widths) into
//! `$JRTC_SCREENSHOTS` (default: the test's temporary directory).

use jrtc::CallEvent;
use serde_json::json;

use crate::media::publish_fixture;
use crate::support::{Browser, Member, Page, in_namespace, server};

async fn join_page(browser: &Browser, url: &str, name: &str) -> Page {
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

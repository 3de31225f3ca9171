//! Firefox and Chromium in one call through the jrtc server, both running `jrtc.js`: each
//! decodes the other's camera, hears the other's microphone, and decodes the other's screen
//! share (one sharer at a time), all counted in the receiver's `getStats` (inbound-rtp).
//!
//! Needs Debian's `firefox-esr` and `xvfb` besides Chromium (Firefox's getDisplayMedia captures
//! an Xvfb display); the test fails at once, with the install command, without them.

use serde_json::{Value, json};

use crate::support::{Browser, Page, in_namespace, need_firefox, server};

/// A browser, its page in the call, and the call's name there (also its user id).
type Member<'a> = (&'a Browser, Page, &'a str);

/// Waits until `member` has received publication `id` with its inbound-rtp counter `field` of
/// `kind` at `want` or more; those counters.
async fn received(member: Member<'_>, id: &str, kind: &str, field: &str, want: u64) -> Value {
    let (browser, page, name) = member;
    let code = format!(
        "return await T.poll(async () => {{
           const all = (await T.calls[{name}].mediaStats()).inbound;
           const s = all.find((x) => x.publication === {id} && x.kind === {kind});
           return {{ ok: !!s && s[{field}] >= {want}, s, all }};
         }}, 45000);",
        name = json!(name),
        id = json!(id),
        kind = json!(kind),
        field = json!(field),
    );
    let got = browser.eval(page, &code).await;
    assert!(got["s"][field].as_u64().unwrap() >= want, "{id}: {got}");
    got["s"].clone()
}

/// Each of `both` receives the other's `source` ([`received`]); the counters of each.
async fn both_ways(
    both: [Member<'_>; 2],
    source: &str,
    kind: &str,
    field: &str,
    want: u64,
) -> [Value; 2] {
    let [a, b] = both;
    [
        received(a, &format!("{}/{source}", b.2), kind, field, want).await,
        received(b, &format!("{}/{source}", a.2), kind, field, want).await,
    ]
}

/// Waits until every member of the room sees `sharer` (None: nobody) as the screen's sharer.
async fn sharer_is(pages: [Member<'_>; 2], sharer: Option<&str>) {
    for (browser, page, name) in pages {
        let want = match sharer {
            Some(user) => format!(
                "T.calls[{}].room().properties.screen_share?.user_id === {}",
                json!(name),
                json!(user)
            ),
            None => format!(
                "T.calls[{}].room().properties.screen_share === null",
                json!(name)
            ),
        };
        browser.wait_for(page, &want).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_and_chromium_exchange_camera_microphone_and_screen() {
    need_firefox(true);
    if !in_namespace("firefox::firefox_and_chromium_exchange_camera_microphone_and_screen") {
        return;
    }
    let server = server().await;
    let chromium = Browser::launch().await;
    let firefox = Browser::launch_firefox(true).await;
    let chrome = chromium.open_harness(&server.http_url()).await;
    let fox = firefox.open_harness(&server.http_url()).await;
    chromium
        .join_call(chrome, &server, "chrome", "mixed", true)
        .await;
    firefox.join_call(fox, &server, "fox", "mixed", true).await;
    let roster = firefox
        .eval(
            fox,
            "return T.calls.fox.room().participants.map((p) => p.user_id).sort();",
        )
        .await;
    assert_eq!(roster, json!(["chrome", "fox"]));

    let both = [(&chromium, chrome, "chrome"), (&firefox, fox, "fox")];

    // Cameras both ways: decoded frames, of a real size.
    for got in both_ways(both, "camera", "video", "framesDecoded", 50).await {
        assert!(got["frameWidth"].as_u64().unwrap() > 0, "{got}");
    }
    // Microphones both ways.
    both_ways(both, "microphone", "audio", "packets", 100).await;

    // Firefox shares its (Xvfb) screen: Chromium decodes it.
    let got = firefox
        .eval(
            fox,
            "const call = T.calls.fox;
             await call.outcome(call.publishScreen());
             const s = call.localTrack('screen').getSettings();
             return [s.width, s.height];",
        )
        .await;
    assert_eq!(got, json!([1280, 800]));
    sharer_is(both, Some("fox")).await;
    let got = received(both[0], "fox/screen", "video", "framesDecoded", 30).await;
    assert_eq!(got["frameWidth"], json!(1280), "{got}");
    firefox
        .eval(
            fox,
            "await T.calls.fox.outcome(T.calls.fox.unpublish('screen'));",
        )
        .await;
    sharer_is(both, None).await;

    // Then Chromium shares its (fake) screen: Firefox decodes it.
    chromium
        .eval(
            chrome,
            "await T.calls.chrome.outcome(T.calls.chrome.publishScreen());",
        )
        .await;
    sharer_is(both, Some("chrome")).await;
    let got = received(both[1], "chrome/screen", "video", "framesDecoded", 30).await;
    assert!(got["frameWidth"].as_u64().unwrap() > 0, "{got}");
    chromium
        .eval(
            chrome,
            "await T.calls.chrome.outcome(T.calls.chrome.unpublish('screen'));",
        )
        .await;
    sharer_is(both, None).await;

    // The cameras went on all along.
    both_ways(both, "camera", "video", "framesDecoded", 150).await;

    firefox.quit().await;
    chromium.quit().await;
}

//! `call.statistics()` in Chromium (jrtc.js) against what really went over the wire: a Rust
//! member writes a known number of packets, and Chromium's statistics count exactly that many
//! received, as do the Rust publisher's and the server's; Chromium's own camera, as it counts
//! it sent, is what the server and the Rust receiver count of it, give or take what was in
//! flight; every member and both connections are there. Behind a lossy loopback (iptables
//! dropping 10 % of UDP at random, two hops), Chromium counts every packet of a Rust
//! microphone received or lost, the loss within what chance allows.

use std::time::Duration;

use jrtc::TrackSource;
use serde_json::Value;

use crate::support::{Browser, Member, Page, in_namespace, server};

/// Chromium's statistics.
async fn browser_statistics(browser: &Browser, page: Page) -> Value {
    browser
        .eval(page, "return await T.calls.web.statistics();")
        .await
}

/// One track of `list` (`published` or `received`) in Chromium's statistics `stats`.
fn web_track<'a>(stats: &'a Value, list: &str, id: &str) -> &'a Value {
    stats[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["publication"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list}: {stats}"))
}

/// Waits until Chromium's statistics count packets received of publication `id`.
async fn until_received(browser: &Browser, page: Page, id: &str) {
    let code = format!(
        "await T.poll(async () => {{
           const s = await T.calls.web.statistics();
           const t = s.received.find((t) => t.publication === '{id}');
           return t && t.packets > 0 ? {{ ok: true }} : {{ s }};
         }});"
    );
    browser.eval(page, &code).await;
}

/// Chromium's count of packets received of the Rust camera, once it no longer changes
/// (polled every 300 ms: the browser's counters are read, no event says the stream stopped).
async fn quiet_count(browser: &Browser, page: Page) -> u64 {
    let mut clock = tokio::time::interval(Duration::from_millis(300));
    let mut last = None;
    for _ in 0..100 {
        clock.tick().await;
        let stats = browser_statistics(browser, page).await;
        let now = web_track(&stats, "received", "rust/camera")["packets"]
            .as_u64()
            .unwrap();
        if last == Some(now) {
            return now;
        }
        last = Some(now);
    }
    panic!("the stream never went quiet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_statistics_count_what_was_sent_and_received() {
    if !in_namespace("statistics::chromium_statistics_count_what_was_sent_and_received") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "r").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "r", true).await;
    let camera = rust.call.publish_track(TrackSource::Camera).await.unwrap();
    // Primers until Chromium receives them, then quiet.
    let primer = camera.clone();
    let priming = tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        loop {
            clock.tick().await;
            primer.write(vec![0x10, 0, 0, 0, 0], 0, true).await.unwrap();
        }
    });
    until_received(&browser, page, "rust/camera").await;
    priming.abort();
    let _ = priming.await;
    let before = quiet_count(&browser, page).await;
    let rust_before = rust.call.statistics().await;
    let rust_before = rust_before.published[0].packets;

    // 300 packets, on the media's pace.
    let mut clock = tokio::time::interval(Duration::from_millis(5));
    for i in 0..300u32 {
        clock.tick().await;
        camera
            .write(vec![0x10, 0, 0, 0, 0xab], i * 1_500, true)
            .await
            .unwrap();
    }
    let after = quiet_count(&browser, page).await;
    assert_eq!(after - before, 300, "Chromium's count of the 300 packets");
    let rust_after = rust.call.statistics().await;
    assert_eq!(rust_after.published[0].packets - rust_before, 300);

    // Chromium's camera: what it counts sent, the server's count of it and the Rust
    // receiver's, in the order they were read, each no more than the one before plus what
    // half a second of it is in flight.
    let web_camera = rust.remote("web/camera").await;
    let reading = tokio::spawn(async move { while web_camera.next_packet().await.is_some() {} });
    let stats = browser_statistics(&browser, page).await;
    let sent = web_track(&stats, "published", "web/camera");
    let sent_packets = sent["packets"].as_u64().unwrap();
    assert_eq!(sent["kind"], "video");
    assert!(sent["frames"].as_u64().unwrap() > 0, "{sent}");
    let api = jrtc_testkit::support::server_api(&server);
    let room = api.room_statistics("r").await.unwrap();
    let at_server = room
        .tracks
        .iter()
        .find(|t| t.publication == "web/camera")
        .expect("the server's view of Chromium's camera")
        .packets;
    let at_rust = rust.call.statistics().await;
    let at_rust = at_rust
        .received
        .iter()
        .find(|t| t.publication == "web/camera")
        .expect("the Rust member receives Chromium's camera")
        .packets;
    eprintln!(
        "Chromium's camera: {sent_packets} sent, {at_server} at the server, {at_rust} at the Rust member"
    );
    assert!(at_server + 100 >= sent_packets && at_server <= sent_packets + 100);
    assert!(at_rust <= at_server + 100);
    let participants: Vec<&str> = stats["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(participants, ["rust", "web"]);
    assert_eq!(stats["connections"].as_array().unwrap().len(), 2, "{stats}");
    reading.abort();
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_statistics_report_the_loss_of_a_lossy_link() {
    if !in_namespace("statistics::chromium_statistics_report_the_loss_of_a_lossy_link") {
        return;
    }
    let server = server().await;
    let rust = Member::join(&server, "rust", "r").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    browser.join_call(page, &server, "web", "r", false).await;
    let mic = rust
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let speaking = jrtc_testkit::media::speak(mic.clone(), 30);
    let audio = |stats: &Value| {
        let t = web_track(stats, "received", "rust/microphone");
        (
            t["packets"].as_u64().unwrap(),
            t["packets_lost"].as_u64().unwrap(),
        )
    };
    until_received(&browser, page, "rust/microphone").await;
    speaking.abort();
    let _ = speaking.await;
    // The count before, once the speaker's last packets have arrived: two readings 300 ms
    // apart that agree (the browser's counters are read; nothing signals the last arrival).
    let mut clock = tokio::time::interval(Duration::from_millis(300));
    let mut before = None;
    loop {
        clock.tick().await;
        let now = audio(&browser_statistics(&browser, page).await);
        if before == Some(now) {
            break;
        }
        before = Some(now);
    }
    let before = before.unwrap();

    // 1,000 audio packets over two lossy hops (Rust → server → Chromium, 10 % each: about
    // 19 % lost; audio is not sent again), then 50 clean ones so the last lost ones are known.
    jrtc_testkit::support::lossy_loopback("-A", "0.1");
    let mut clock = tokio::time::interval(Duration::from_millis(5));
    for i in 0..1_050u32 {
        clock.tick().await;
        if i == 1_000 {
            jrtc_testkit::support::lossy_loopback("-D", "0.1");
        }
        mic.write(vec![0xf8, 0xff, 0xfe], i * 960, false)
            .await
            .unwrap();
    }
    // Chromium counts loss from what it expected by sequence numbers, as it goes.
    let mut clock = tokio::time::interval(Duration::from_millis(200));
    let mut after = before;
    for _ in 0..50 {
        clock.tick().await;
        after = audio(&browser_statistics(&browser, page).await);
        if after.0 + after.1 >= before.0 + before.1 + 1_050 {
            break;
        }
    }
    let (received, lost) = (after.0 - before.0, after.1 - before.1);
    eprintln!("Chromium over a lossy link: {received} received, {lost} lost of 1,050");
    assert_eq!(
        received + lost,
        1_050,
        "every packet counted, received or lost"
    );
    // Within five standard deviations of 19 % of 1,000.
    assert!((130..=250).contains(&lost), "{lost} lost");
    browser.quit().await;
}

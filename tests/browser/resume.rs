//! A browser whose WebSocket is cut (reset by a proxy in the test, while messages flow both
//! ways) resumes its session: every message arrives once, in order, both ways.

use jrtc::CallEvent;
use serde_json::json;

use crate::support::{Browser, Member, in_namespace, server, token};
use jrtc_testkit::proxy::{Cut, Proxy};

const FROM_RUST: usize = 60;
const FROM_BROWSER: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_resumes_after_its_websocket_is_cut_and_loses_no_message() {
    if !in_namespace("resume::a_browser_resumes_after_its_websocket_is_cut_and_loses_no_message") {
        return;
    }
    let server = server().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let mut rust = Member::join(&server, "rust", "cut").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    let code = format!(
        "await T.connect('web', {url}, {token});
         const call = T.calls.web;
         await call.outcome(call.join('cut'));
         // Send {n} messages, one every 40 ms, whatever the connection does meanwhile.
         T.sent = (async () => {{
           const ops = [];
           for (let i = 0; i < {n}; i++) {{
             ops.push(call.sendMessage(null, 'text/plain', `b${{i}}`));
             await new Promise((r) => setTimeout(r, 40));
           }}
           return Promise.allSettled(ops.map((op) => call.outcome(op)));
         }})();",
        url = json!(format!("{}/signal", proxy.url())),
        token = json!(token(&server, "web")),
        n = FROM_BROWSER,
    );
    browser.eval(page, &code).await;

    let sender = rust.call.clone();
    let sending = tokio::spawn(async move {
        for i in 0..FROM_RUST {
            let op = sender
                .send_message(None, "text/plain", format!("r{i}"))
                .await
                .unwrap();
            sender.outcome(op).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    // Cut while messages flow both ways: once the browser has taken some of the Rust client's.
    browser
        .eval(
            page,
            "await T.poll(async () => ({ ok: T.find('web', (e) => e.type === 'message' && e.kind === 'received').length >= 5 }));",
        )
        .await;
    proxy.cut(Cut::Reset);
    sending.await.unwrap();

    // Every message from the browser reached the Rust client once, in order.
    let mut got = Vec::new();
    while got.len() < FROM_BROWSER {
        let content = rust
            .until(|ev| match ev {
                CallEvent::Message(jrtc::MessageEvent::Received(m)) => Some(m.content.to_string()),
                _ => None,
            })
            .await;
        got.push(content);
    }
    let want: Vec<String> = (0..FROM_BROWSER).map(|i| format!("b{i}")).collect();
    assert_eq!(got, want);

    // Every message from the Rust client reached the browser once, in order, and the browser
    // said how it got back.
    let code = format!(
        "const outcomes = await T.sent;
         const failed = outcomes.filter((o) => o.status !== 'fulfilled').length;
         await T.poll(async () => ({{ ok: T.find('web', (e) => e.type === 'message' && e.kind === 'received').length >= {n} }}));
         await new Promise((r) => setTimeout(r, 500));
         const got = T.find('web', (e) => e.type === 'message' && e.kind === 'received').map((e) => e.message.content);
         const how = T.find('web', (e) => ['reconnecting', 'reconnected', 'resynced', 'rejoined'].includes(e.type)).map((e) => e.type);
         return {{ failed, got, how, state: T.calls.web.state }};",
        n = FROM_RUST
    );
    let seen = browser.eval(page, &code).await;
    let want: Vec<String> = (0..FROM_RUST).map(|i| format!("r{i}")).collect();
    assert_eq!(seen["got"], json!(want), "{seen}");
    assert_eq!(seen["failed"], json!(0), "{seen}");
    assert_eq!(
        seen["how"],
        json!(["reconnecting", "reconnected"]),
        "{seen}"
    );
    assert_eq!(seen["state"], json!("connected"));
    assert!(proxy.accepted() >= 2, "the browser connected again");
    browser.quit().await;
}

/// `name`'s events of the connection's life (reconnecting, reconnected, resynced, rejoined).
const HOW: &str = "T.find('web', (e) => ['reconnecting', 'reconnected', 'resynced', 'rejoined'].includes(e.type)).map((e) => e.type)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_missed_more_than_the_server_kept_is_told_and_resynced() {
    if !in_namespace("resume::a_browser_that_missed_more_than_the_server_kept_is_told_and_resynced")
    {
        return;
    }
    // The server keeps 16 frames for a resume; the browser misses 40 messages.
    let server = jrtc::Server::builder()
        .development()
        .resume_buffer(16)
        .start()
        .await
        .unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    let rust = Member::join(&server, "rust", "lossy").await;
    let browser = Browser::launch().await;
    let page = browser.open_harness(&server.http_url()).await;
    let code = format!(
        "await T.connect('web', {url}, {token}, {{ idleTimeoutMs: 3000 }});
         const call = T.calls.web;
         await call.outcome(call.join('lossy'));",
        url = json!(format!("{}/signal", proxy.url())),
        token = json!(token(&server, "web")),
    );
    browser.eval(page, &code).await;
    // Silence: neither side hears the other until the browser's idle timeout (3 s).
    proxy.cut(Cut::BlackHole);
    for i in 0..40 {
        rust.say(None, &format!("m{i}")).await;
    }
    let code = format!(
        "const r = await T.until('web', (e) => e.type === 'resynced', 30000);
         const call = T.calls.web;
         return {{ missed: r.missed, room: r.snapshot.room, people: r.snapshot.participants.map((p) => p.user_id).sort(),
                  how: {HOW}, state: call.state, seq: call.room().seq }};"
    );
    let seen = browser.eval(page, &code).await;
    assert!(seen["missed"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(seen["room"], json!("lossy"));
    assert_eq!(seen["people"], json!(["rust", "web"]));
    assert_eq!(seen["how"][0], json!("reconnecting"));
    assert_eq!(
        seen["how"][seen["how"].as_array().unwrap().len() - 1],
        json!("resynced")
    );

    // After the resync, room events go on from the snapshot's seq, none twice.
    rust.say(None, "after").await;
    let got = browser
        .eval(
            page,
            "await T.until('web', (e) => e.type === 'message' && e.kind === 'received' && e.message.content === 'after');
             return T.find('web', (e) => e.type === 'message' && e.kind === 'received' && e.message.content === 'after').length;",
        )
        .await;
    assert_eq!(got, json!(1));
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_joins_again_and_republishes_after_a_server_restart() {
    if !in_namespace("resume::a_browser_joins_again_and_republishes_after_a_server_restart") {
        return;
    }
    let secret = b"the browser restart test's secret, 32+ bytes".to_vec();
    let first = jrtc::Server::builder()
        .secret(secret.clone())
        .call_page(true)
        .reconnect_after_shutdown(true)
        .start()
        .await
        .unwrap();
    let addr = first.local_addr();
    let browser = Browser::launch().await;
    let page = browser.open_harness(&first.http_url()).await;
    browser
        .join_call(page, &first, "web", "phoenix", true)
        .await;
    // A source is in the room once its media reached the server.
    let code = "const call = T.calls.web;
         await T.until('web', (e) => e.type === 'media' && e.kind === 'published' && e.publication.id === 'web/microphone');
         await call.outcome(call.mute('microphone', true));";
    browser.eval(page, code).await;
    first.shutdown().await;

    // The same address, a new server that knows nothing of the session.
    let second = jrtc::Server::builder()
        .secret(secret)
        .bind(addr.to_string())
        .start()
        .await
        .unwrap();
    let seen = browser
        .eval(
            page,
            &format!(
                "const r = await T.until('web', (e) => e.type === 'rejoined', 30000);
                 return {{ room: r.snapshot.room, how: {HOW} }};"
            ),
        )
        .await;
    assert_eq!(seen["room"], json!("phoenix"), "{seen}");
    assert_eq!(seen["how"][0], json!("reconnecting"), "{seen}");
    // The camera is published again on the new server, and the microphone muted as it was.
    let muted = browser
        .eval(
            page,
            "return (await T.poll(async () => {
               const p = T.calls.web.room().publications;
               const mic = p.find((x) => x.id === 'web/microphone');
               return { ok: p.some((x) => x.id === 'web/camera') && mic && mic.muted, mic };
             })).mic.muted;",
        )
        .await;
    assert_eq!(muted, json!(true));
    let mut rust = Member::join(&second, "rust", "phoenix").await;
    let video = rust.remote("web/camera").await;
    assert!(crate::support::vp8_frames(&video, 20).await >= 20);
    browser.quit().await;
}

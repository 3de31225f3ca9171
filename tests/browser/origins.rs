//! An application's page on another origin uses a jrtc server as docs/browser.md's first
//! example does: it imports `/jrtc.js` from the server (a module script, loaded with CORS), asks
//! the development server's `/dev/token` for a token (a JSON POST, so a preflight first),
//! connects, joins and publishes; a Rust member of the room receives its camera.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Browser, Member, in_namespace, packets, server};

/// The application's page: served from its own port, so of another origin than the server.
fn app_page(server: &str, signal: &str) -> String {
    format!(
        r#"<!doctype html>
<meta charset="utf-8">
<title>app</title>
<script type="module">
import {{ Call }} from "{server}/jrtc.js";
try {{
  const answer = await fetch("{server}/dev/token", {{
    method: "POST",
    headers: {{ "content-type": "application/json" }},
    body: JSON.stringify({{ name: "App", user_id: "app" }}),
  }});
  const {{ token }} = await answer.json();
  const call = await Call.connect("{signal}", token);
  const events = call.events();          // before the join: it sees the `joined` event
  const op = call.join("origins", {{ displayName: "App" }});
  await call.outcome(op);
  await call.outcome(call.publishCamera());
  const seen = [];
  for await (const ev of events) {{
    seen.push(ev.type);
    if (ev.type === "joined") break;
  }}
  window.result = {{ ok: true, seen }};
}} catch (e) {{
  window.result = {{ ok: false, error: String(e) }};
}}
</script>
"#
    )
}

/// Serves `page` at every path of a new port on 127.0.0.1; the page's origin.
async fn serve_app(page: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                // One request per connection: the request head is read and not looked at.
                let mut head = vec![0; 4096];
                let _ = socket.read(&mut head).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_loads_the_client_gets_a_token_and_calls() {
    if !in_namespace("origins::a_page_of_another_origin_loads_the_client_gets_a_token_and_calls") {
        return;
    }
    let server = server().await;
    let mut rust = Member::join(&server, "rust", "origins").await;
    let origin = serve_app(app_page(&server.http_url(), &server.url())).await;
    assert_ne!(origin, server.http_url());
    let browser = Browser::launch().await;
    let page = browser.open(&format!("{origin}/app.html")).await;
    browser.wait_for(page, "window.result !== undefined").await;
    let result = browser.eval(page, "return window.result;").await;
    assert_eq!(result, json!({"ok": true, "seen": ["joined"]}), "{result}");
    let camera = rust.remote("app/camera").await;
    assert!(packets(&camera, 30).await >= 30);
    browser.quit().await;
    drop(rust);
}

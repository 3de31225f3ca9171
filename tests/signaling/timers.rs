//! The driver runs the client core's timers: with tokio's clock paused, time jumps to the
//! core's next deadline (`ClientCore::next_deadline`) as soon as nothing else is to do, so an
//! hour of token lifetime passes at once and the test waits for what the server is sent, not
//! for a clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jrtc::{Call, CallOptions, TokenProvider};
use tokio_tungstenite::tungstenite::Message;

/// A server that logs one client in with a token valid for an hour, then returns the first
/// `refresh` frame the client sends.
async fn one_login_then_a_refresh(listener: tokio::net::TcpListener) -> serde_json::Value {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let welcome = serde_json::json!({"type": "welcome", "version": 1, "user_id": "ada",
        "session": 1, "resume_key": "k", "expires_at": now + 3600});
    ws.send(Message::text(welcome.to_string())).await.unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the client went away without refreshing");
        };
        let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        if frame["type"] == "refresh" {
            return frame;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_token_provider_is_asked_at_the_cores_deadline_under_paused_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(one_login_then_a_refresh(listener));
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = asked.clone();
    let provider = TokenProvider::new(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok("t-next".to_owned()) }
    });
    // Pings far apart, so the only deadline within the token's hour is the refresh.
    let options = CallOptions::default()
        .token_provider(provider)
        .keepalive(Duration::from_secs(7200))
        .idle_timeout(Duration::from_secs(14_400));
    let call = Call::connect_with(&url, "t-first", options).await.unwrap();
    // Logged in on the real clock; from here time moves only when everything waits.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let refresh = server.await.unwrap();
    assert_eq!(refresh["token"], "t-next");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A minute before expiry, on the paused clock.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3530) && waited <= Duration::from_secs(3545),
        "{waited:?}"
    );
    drop(call);
}

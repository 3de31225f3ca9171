//! A normal call gives the client no server error: the client sends nothing the server cannot
//! place (its publishing connection's ICE candidates go out only after the server answered
//! that connection's offer, and none for an offer the server refused).

use futures::FutureExt;
use jrtc::{CallEvent, EventStream, TrackSource};

use crate::media::remote;
use crate::support::{User, done, server};

/// A message from `from` reaches `to` (after whatever `to` had not read yet).
async fn says(from: &User, to: &mut User) {
    let op = from
        .call
        .send_message(None, "text/plain", "hi")
        .await
        .unwrap();
    done(&from.call, op).await;
    while !matches!(to.next().await, CallEvent::Message(_)) {}
}

/// The server errors among the events waiting in `watch`.
fn server_errors(watch: &mut EventStream) -> Vec<CallEvent> {
    let mut errors = Vec::new();
    while let Some(Some(event)) = futures::StreamExt::next(watch).now_or_never() {
        if matches!(event, CallEvent::ServerError(_)) {
            errors.push(event);
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_refused_share_gives_no_server_error() {
    let server = server().await;
    let mut alice = User::connect(&server, "alice").await;
    let mut alice_watch = alice.call.events();
    alice.join("clean").await;
    let screen = alice.call.publish_track(TrackSource::Screen).await.unwrap();
    let _screen = crate::operations::pump(screen);
    let mut bob = User::connect(&server, "bob").await;
    let mut bob_watch = bob.call.events();
    bob.join("clean").await;
    let track = remote(&mut bob, "alice/screen").await;
    track.next_packet().await.expect("a packet");
    // Bob's first offer, on a new connection, is refused: Alice shares.
    let refused = bob.call.publish_track(TrackSource::Screen).await;
    assert!(
        matches!(&refused, Err(jrtc::CallError::Refused { error, .. }) if error.code == jrtc::ErrorCode::ScreenShareBusy),
        "{refused:?}"
    );
    let camera = bob.call.publish_track(TrackSource::Camera).await.unwrap();
    let mic = bob
        .call
        .publish_track(TrackSource::Microphone)
        .await
        .unwrap();
    let _pumps = [
        crate::operations::pump(camera),
        crate::operations::pump(mic),
    ];

    // Media flows both ways, and messages go both ways after it.
    for id in ["bob/camera", "bob/microphone"] {
        let track = remote(&mut alice, id).await;
        track.next_packet().await.expect("a packet");
    }
    says(&alice, &mut bob).await;
    says(&bob, &mut alice).await;

    assert_eq!(server_errors(&mut alice_watch), [], "alice");
    assert_eq!(server_errors(&mut bob_watch), [], "bob");
}

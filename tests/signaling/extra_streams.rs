//! Extra streams: a member publishes a second camera and a second screen beside its camera and
//! screen share (`camera.NAME`, `screen.NAME`). The others receive all four, see them come and
//! go through `Published` / `Unpublished` and the participant's `streams` (flagged in the
//! update's changes), and can ask for a size of each; the room's screen share is the main
//! screen alone. A fifth extra stream is refused.

use std::collections::BTreeSet;

use jrtc::{CallEvent, MediaEvent, ParticipantEvent, StreamName, TrackSource, VideoSize};

use crate::operations::pump;
use crate::support::{User, builder, done, refused};

fn extra_camera(name: &str) -> TrackSource {
    TrackSource::ExtraCamera(StreamName::new(name).unwrap())
}

fn extra_screen(name: &str) -> TrackSource {
    TrackSource::ExtraScreen(StreamName::new(name).unwrap())
}

/// Takes `user`'s events until `condition` holds of what it gathered: the publications it
/// receives, and alice's extra streams as the last participant update flagged them.
async fn until(
    user: &mut User,
    received: &mut BTreeSet<String>,
    streams: &mut Vec<TrackSource>,
    condition: impl Fn(&BTreeSet<String>, &[TrackSource]) -> bool,
) {
    while !condition(received, streams) {
        match user.next().await {
            CallEvent::Media(MediaEvent::Subscribed { publication }) => {
                received.insert(publication.id);
            }
            CallEvent::Media(MediaEvent::Unsubscribed { publication, .. })
            | CallEvent::Media(MediaEvent::Unpublished { publication, .. }) => {
                received.remove(&publication.id);
            }
            CallEvent::Participant(ParticipantEvent::Updated {
                participant,
                changes,
                ..
            }) if changes.streams && participant.user_id.as_str() == "alice" => {
                *streams = participant.streams.clone();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cameras_and_two_screens_reach_the_others_with_their_flags() {
    let server = builder().start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("r").await;
    let (second, slides) = (extra_camera("second"), extra_screen("slides"));
    let mut pumps = Vec::new();
    for source in [TrackSource::Camera, second, TrackSource::Screen, slides] {
        pumps.push(pump(alice.call.publish_track(source).await.unwrap()));
    }
    let (mut received, mut streams) = (BTreeSet::new(), Vec::new());
    until(&mut bob, &mut received, &mut streams, |r, s| {
        r.len() == 4 && s.len() == 2
    })
    .await;
    let ids: Vec<&str> = received.iter().map(String::as_str).collect();
    assert_eq!(
        ids,
        [
            "alice/camera",
            "alice/camera.second",
            "alice/screen",
            "alice/screen.slides"
        ]
    );
    // (In the order their media arrived, which is the network's.)
    streams.sort();
    assert_eq!(streams, [second, slides]);
    // The room's screen share is the main screen's.
    let share = bob.call.room().unwrap().properties.screen_share.unwrap();
    assert_eq!(share.user_id.as_str(), "alice");
    // Each takes a size request, and each track carries packets.
    let op = bob
        .call
        .request_video("alice/camera.second", VideoSize::SMALL)
        .await
        .unwrap();
    done(&bob.call, op).await;
    for id in &received {
        let track = bob.call.remote_track(id).unwrap();
        tokio::time::timeout(crate::support::WAIT, track.next_packet())
            .await
            .unwrap_or_else(|_| panic!("{id} carries nothing"))
            .unwrap();
    }

    // The second camera goes: unpublished, and out of alice's streams.
    let op = alice.call.unpublish(second).await.unwrap();
    done(&alice.call, op).await;
    until(&mut bob, &mut received, &mut streams, |r, s| {
        r.len() == 3 && s.len() == 1
    })
    .await;
    assert!(!received.contains("alice/camera.second"));
    assert_eq!(streams, [slides]);
    for p in pumps {
        p.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_extra_stream_is_refused() {
    let server = builder().start().await.unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("r").await;
    let mut pumps = Vec::new();
    for name in ["a", "b", "c", "d"] {
        pumps.push(pump(
            alice.call.publish_track(extra_camera(name)).await.unwrap(),
        ));
    }
    let op = alice.call.publish(extra_screen("e")).await.unwrap();
    assert_eq!(
        refused(&alice.call, op).await,
        jrtc::ErrorCode::InvalidParam
    );
    for p in pumps {
        p.abort();
    }
}

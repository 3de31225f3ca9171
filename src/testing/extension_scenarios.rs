//! Header extensions, over the sans-IO core: a leg starts with a map from the publisher's
//! extension ids (as the server's answer accepted them) to the subscriber's (as its answer
//! gave them), for the end-to-end extensions both have; per-hop ones are left out.

use crate::model::TrackSource;
use crate::protocol::ClientFrame;
use crate::server::hub::io::{ExtensionMap, LegStart, MediaAction, MediaFact};

use super::scenarios::{Harness, actions_for};

const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

#[test]
fn a_leg_starts_with_the_publishers_ids_mapped_to_the_subscribers() {
    let mut h = Harness::new();
    let [alice, bob] = h.members("r", ["alice", "bob"]);
    let bob_key = h.key(bob);
    // The server's answer to Alice's offer (its line `0` sends the microphone) accepts the
    // audio level at id 1 and the mid at id 3.
    let answer = format!(
        "v=0\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
         a=extmap:1 {AUDIO_LEVEL}\r\na=extmap:3 {MID}\r\na=rtpmap:111 opus/48000/2\r\n"
    );
    h.publish_answered(alice, TrackSource::Microphone, &answer);
    let offer = "v=0\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                 a=msid:alice alice/microphone#1\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n";
    h.report(
        bob_key.clone(),
        MediaFact::OfferReady {
            negotiation: 1,
            result: Ok(offer.into()),
        },
    );
    // Bob's stack numbers them otherwise: audio level 10, mid 1.
    let answer = format!(
        "v=0\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:0\r\na=recvonly\r\n\
         a=extmap:1 {MID}\r\na=extmap:10 {AUDIO_LEVEL}\r\na=rtpmap:109 opus/48000/2\r\n"
    );
    let op = h.op();
    h.frame(
        bob,
        ClientFrame::SubscribeAnswer {
            op,
            negotiation: 1,
            sdp: answer,
        },
    );
    let out = h.report(
        bob_key.clone(),
        MediaFact::AnswerApplied {
            op,
            negotiation: 1,
            result: Ok(()),
        },
    );
    assert_eq!(
        actions_for(&out, &bob_key),
        [MediaAction::StartLegs {
            legs: vec![LegStart {
                publication: "alice/microphone".into(),
                payload_type: 109,
                extensions: ExtensionMap(vec![(1, 10)]),
            }]
        }]
    );
}

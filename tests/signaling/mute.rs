//! A mute is enforced by the server, whatever the muted member's client does: a raw-protocol
//! publisher (a WebRTC peer of its own, speaking docs/protocol.md over a bare WebSocket) keeps
//! sending after a host muted it, and nothing of it reaches the receivers already there, a
//! receiver joining later, or the recording; when its owner unmutes, media flows again. The
//! publisher's packets carry a counter, so each receiver knows exactly which ones it got.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jrtc::media::rtc;
use jrtc::{CallEvent, MediaEvent, ServerHandle, TrackSource};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCSessionDescription, SettingEngineBuilder,
};

use crate::operations::{scrape, value};
use crate::raw::Raw;
use crate::support::{User, WAIT, done, refused, token};

const MUTED_DROPS: &str = "jrtc_dropped_rtp_packets_total{kind=\"muted\"}";
const FORWARDED: &str = "jrtc_forwarded_rtp_packets_total";

struct Gathered(mpsc::UnboundedSender<()>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Gathered {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(());
        }
    }
}

/// A publisher that ignores mutes: its own peer connection and WebSocket, sending Opus-sized
/// packets every 20 ms, each payload a counter, until dropped.
struct Stubborn {
    raw: Raw,
    _pc: Arc<dyn PeerConnection>,
    sender: tokio::task::JoinHandle<()>,
    /// The counter of the next packet.
    sent: Arc<AtomicU32>,
}

impl Stubborn {
    async fn publish(server: &ServerHandle, user: &str, room: &str) -> Stubborn {
        let mut raw = Raw::login(&server.url(), &token(server, user)).await;
        let joined = raw
            .ask(json!({"type": "join", "op": 1, "room": room}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");

        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .with_setting_engine(
                    SettingEngineBuilder::new()
                        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                        .with_include_loopback_candidate(true)
                        .build(),
                )
                .with_handler(Arc::new(Gathered(gathered_tx)))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .unwrap(),
        );
        let ssrc = 0x5eed;
        let opus = RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: Vec::new(),
        };
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            user.to_owned(),
            "microphone".to_owned(),
            "microphone".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: opus,
                ..Default::default()
            }],
        )));
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let offer = pc.create_offer(None).await.unwrap();
        pc.set_local_description(offer).await.unwrap();
        tokio::time::timeout(WAIT, gathered.recv()).await.unwrap();
        let sdp = pc.local_description().await.unwrap().sdp;
        let answer = raw
            .ask(json!({"type": "publish_offer", "op": 2, "sdp": sdp, "source": "microphone"}))
            .await;
        assert_eq!(answer["type"], "publish_answer", "{answer}");
        let answer = answer["sdp"].as_str().unwrap().to_owned();
        pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
        let payload_type =
            sender.get_parameters().await.unwrap().rtp_parameters.codecs[0].payload_type;

        let sent = Arc::new(AtomicU32::new(0));
        let counter = sent.clone();
        let sender = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(20));
            loop {
                ticks.tick().await;
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut packet = jrtc::RtpPacket::default();
                packet.header.version = 2;
                packet.header.payload_type = payload_type;
                packet.header.ssrc = ssrc;
                packet.header.sequence_number = n as u16;
                packet.header.timestamp = n.wrapping_mul(960);
                packet.header.marker = true;
                let mut payload = vec![0xf8];
                payload.extend_from_slice(&n.to_be_bytes());
                packet.payload = payload.into();
                let _ = track.write_rtp(packet).await;
            }
        });
        Stubborn {
            raw,
            _pc: pc,
            sender,
            sent,
        }
    }

    /// The raw client's next frame of `type`, skipping others (candidates, room events).
    async fn frame(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.raw.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

impl Drop for Stubborn {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

/// Counts what a receiver gets of a track: the publisher's counters, as they arrive.
fn count(track: jrtc::RemoteTrack) -> (Arc<AtomicU32>, Arc<AtomicU32>) {
    let (packets, last) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (p, l) = (packets.clone(), last.clone());
    tokio::spawn(async move {
        while let Some(packet) = track.next_packet().await {
            if let Some(n) = packet.payload.get(1..5) {
                l.store(u32::from_be_bytes(n.try_into().unwrap()), Ordering::Relaxed);
            }
            p.fetch_add(1, Ordering::Relaxed);
        }
    });
    (packets, last)
}

/// Waits until the server has dropped `more` muted packets beyond what it had at `from`: the
/// publisher kept sending for that long and none of it went anywhere.
async fn dropped_beyond(server: &ServerHandle, from: f64, more: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = value(&scrape(server).await, MUTED_DROPS);
        if now >= from + more {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server dropped only {} muted packets",
            now - from
        );
        // Polling a counter: there is no event for "the publisher sent more".
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The remote track of `id` at `user`, once it is subscribed.
async fn subscribed(user: &mut User, id: &str) -> jrtc::RemoteTrack {
    loop {
        if let Some(track) = user.call.remote_track(id) {
            return track;
        }
        match user.next().await {
            CallEvent::Media(MediaEvent::Subscribed { publication }) if publication.id == id => {}
            _ => {}
        }
    }
}

/// Waits until `count` reaches `n`: a receiver's packet count grows with no event per packet,
/// so it is polled.
async fn reaches(count: &AtomicU32, n: u32, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while count.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} packets, not {n}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The times (seconds) of the Opus packets in a recorded file, as ffprobe reads them.
fn opus_times(path: &std::path::Path) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "packet=pts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian: apt-get install ffmpeg)");
    assert!(out.status.success(), "ffprobe reads {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

// `support::heavy()` is held for the whole test (it has a runtime of its own).
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_mute_silences_a_publisher_that_ignores_it_for_everyone() {
    let _heavy = crate::support::heavy();
    let dir = crate::record_support::recording_dir("mute");
    let server = crate::support::builder()
        .recording_dir(&dir)
        .start()
        .await
        .unwrap();
    let mut alice = User::connect(&server, "alice").await;
    alice.join("quiet").await;
    let mut bob = User::connect(&server, "bob").await;
    bob.join("quiet").await;
    let mut dave = Stubborn::publish(&server, "dave", "quiet").await;
    let op = alice
        .call
        .start_recording(jrtc::RecordingOptions::default())
        .await
        .unwrap();
    done(&alice.call, op).await;

    // Bob hears Dave.
    let id = "dave/microphone";
    let (heard, _) = count(subscribed(&mut bob, id).await);
    reaches(&heard, 25, "Bob before the mute").await;

    // A guest cannot mute Dave; the host (Alice, who made the room) can.
    let op = bob
        .call
        .mute_member("dave", TrackSource::Microphone)
        .await
        .unwrap();
    assert_eq!(
        refused(&bob.call, op).await,
        jrtc::ErrorCode::PermissionDenied
    );
    let base = value(&scrape(&server).await, MUTED_DROPS);
    let op = alice
        .call
        .mute_member("dave", TrackSource::Microphone)
        .await
        .unwrap();
    done(&alice.call, op).await;
    let muted = dave.frame("track_muted").await;
    assert_eq!(muted["publication"]["muted"], true);
    assert_eq!(
        muted["by"], "alice",
        "the muted member is told who muted it"
    );
    loop {
        if let CallEvent::Media(MediaEvent::Muted {
            publication, by, ..
        }) = bob.next().await
        {
            assert_eq!(publication.id, id);
            assert_eq!(by.as_ref().map(|u| u.as_str()), Some("alice"));
            break;
        }
    }

    // Dave keeps sending. Once 25 more packets were dropped (what was in flight has landed),
    // Bob's count stands still while 50 more are dropped, and Carol joins meanwhile.
    let at = dropped_beyond(&server, base, 25.0).await;
    let before = heard.load(Ordering::Relaxed);
    // Dave's is the only track in the room: nothing at all is forwarded from now on, to Bob,
    // to Carol who joins meanwhile, or to the recorder.
    let forwarded = value(&scrape(&server).await, FORWARDED);
    let mut carol = User::connect(&server, "carol").await;
    carol.join("quiet").await;
    let at = dropped_beyond(&server, at, 50.0).await;
    assert_eq!(
        heard.load(Ordering::Relaxed),
        before,
        "a muted track reached a receiver"
    );
    // Carol, who joined after the mute, gets none of it either.
    let carol_heard = carol.call.remote_track(id).map(|t| count(t).0);
    dropped_beyond(&server, at, 25.0).await;
    assert_eq!(
        carol_heard
            .as_ref()
            .map_or(0, |c| c.load(Ordering::Relaxed)),
        0,
        "a muted track reached a receiver that joined after the mute"
    );
    assert_eq!(
        value(&scrape(&server).await, FORWARDED),
        forwarded,
        "a muted track was forwarded to someone (a late joiner's leg, the recorder)"
    );
    let muted_for = dave.sent.load(Ordering::Relaxed);

    // Only Dave unmutes; then everyone hears him again.
    dave.raw
        .send_text(
            json!({"type": "mute", "op": 3, "source": "microphone", "muted": false}).to_string(),
        )
        .await;
    let unmuted = dave.frame("track_muted").await;
    assert_eq!(unmuted["publication"]["muted"], false);
    assert!(unmuted.get("by").is_none());
    reaches(&heard, before + 25, "Bob after the unmute").await;
    let (carol_heard, _) = count(subscribed(&mut carol, id).await);
    reaches(&carol_heard, 25, "Carol after the unmute").await;

    // The recording of Dave has a hole where the mute was: no packet for as long as the
    // server dropped them (75 packets, 1.5 s at 20 ms).
    let op = alice.call.stop_recording().await.unwrap();
    done(&alice.call, op).await;
    let files = loop {
        if let CallEvent::Recording(jrtc::RecordingEvent::Stopped { files, .. }) =
            alice.next().await
        {
            break files;
        }
    };
    let file = files
        .iter()
        .find(|f| f.participant.as_str() == "dave")
        .expect("a file of Dave");
    let rec_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let times = opus_times(&rec_dir.join(&file.name));
    assert!(times.len() > 40, "{} packets recorded", times.len());
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    assert!(
        gap >= 1.5,
        "the recording holds the muted time (largest gap {gap:.2} s; {muted_for} packets sent by then)"
    );
    drop(dave);
    let _ = std::fs::remove_dir_all(&dir);
}

//! One membership's media: the actor that owns the member's two peer connections (it publishes
//! on one, receives on the other), takes the core's commands one at a time, shares the
//! receiving connection's bandwidth among its videos ([`allocator`](super::allocator)) and
//! measures the member's media once a second ([`link_meter`](super::link_meter)).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpTransceiver};

use super::forward::{Forward, lock};
use super::sdp_fixes::{inactive_where_not_sent, with_msid_semantic};
use super::{Shared, Work, allocator, link_meter};
use crate::media::{MediaError, Peer, PeerEvent, asks_for_keyframe};
use crate::model::{MediaKind, Publication, TrackSource};
use crate::protocol::MediaConnection;
use crate::server::hub::io::{MediaAction, MediaFact, MediaId, MediaKey, MediaReport};

/// How often each receiver's bandwidth is shared out again among its videos.
const ALLOCATE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// One leg on the member's receiving connection.
struct Leg {
    /// What it carries (audio is never capped; screen shares come before cameras).
    source: TrackSource,
    forward: Forward,
    transceiver: Arc<dyn RtpTransceiver>,
    /// Relays the subscriber's key-frame requests to the publisher.
    relay: JoinHandle<()>,
}

/// One membership's media: its peer connections and the tasks moving its packets.
pub(super) struct Actor {
    key: MediaKey,
    shared: Arc<Shared>,
    me: mpsc::UnboundedSender<Work>,
    publisher: Option<Peer>,
    /// The reader task of each published track.
    published: Vec<(TrackSource, JoinHandle<()>)>,
    subscriber: Option<Peer>,
    /// By publication id.
    legs: HashMap<String, Leg>,
    /// The simulcast streams of each source the publishing connection sends with simulcast,
    /// in layer order (by the last answered offer).
    rids: BTreeMap<TrackSource, Vec<String>>,
    /// The audio-level header extension's id on each audio source that carries it (by the
    /// last answered offer).
    levels: BTreeMap<TrackSource, u8>,
    /// How the receiving connection's bandwidth is shared among its videos.
    allocator: allocator::Allocator,
    /// When the actor started (the allocator's clock).
    started: std::time::Instant,
    /// Turns what is read of the member's media into samples for the core.
    meter: link_meter::LinkMeter,
    /// The loudest speaker's camera, which the allocation serves before other cameras.
    favoured: Option<String>,
}

impl Actor {
    pub(super) fn new(key: MediaKey, shared: Arc<Shared>, me: mpsc::UnboundedSender<Work>) -> Self {
        Actor {
            key,
            shared,
            me,
            publisher: None,
            published: Vec::new(),
            subscriber: None,
            legs: HashMap::new(),
            rids: BTreeMap::new(),
            levels: BTreeMap::new(),
            allocator: allocator::Allocator::default(),
            started: std::time::Instant::now(),
            meter: Default::default(),
            favoured: None,
        }
    }

    fn report(&self, fact: MediaFact) {
        let _ = self.shared.reports.send(MediaReport {
            from: self.key.clone(),
            fact,
        });
    }

    pub(super) async fn run(mut self, mut work: mpsc::UnboundedReceiver<Work>) {
        let mut allocate = tokio::time::interval(ALLOCATE_EVERY);
        allocate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut measure = tokio::time::interval(std::time::Duration::from_millis(
            crate::server::hub::net_status::MEASURE_EVERY_MS,
        ));
        measure.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let item = tokio::select! {
                item = work.recv() => item,
                _ = allocate.tick(), if self.has_video_legs() => {
                    self.allocate().await;
                    continue;
                }
                _ = measure.tick(), if self.publisher.is_some() || self.subscriber.is_some() => {
                    self.measure().await;
                    continue;
                }
            };
            match item {
                None | Some(Work::Action(MediaAction::Teardown)) => break,
                Some(Work::Action(action)) => self.act(action).await,
                Some(Work::Peer(connection, event)) => self.peer_event(connection, event).await,
            }
        }
        self.close_publishing().await;
        self.close_receiving().await;
    }

    async fn act(&mut self, action: MediaAction) {
        match action {
            MediaAction::AnswerPublish {
                op,
                sdp,
                rids,
                levels,
            } => {
                self.rids = rids;
                self.levels = levels;
                let result = self.answer_publisher(sdp).await;
                self.report(MediaFact::PublishAnswered {
                    op,
                    result: result.map_err(|e| e.to_string()),
                });
            }
            MediaAction::CreateOffer {
                negotiation,
                ice_restart,
            } => {
                let result = self.offer(ice_restart).await;
                self.report(MediaFact::OfferReady {
                    negotiation,
                    result: result.map_err(|e| e.to_string()),
                });
            }
            MediaAction::ApplyAnswer {
                op,
                negotiation,
                sdp,
            } => {
                let result = match self.subscriber.as_mut() {
                    Some(peer) => peer.accept(sdp).await,
                    None => Err(MediaError::Closed),
                };
                self.report(MediaFact::AnswerApplied {
                    op,
                    negotiation,
                    result: result.map_err(|e| e.to_string()),
                });
            }
            MediaAction::AddLeg {
                publication,
                from,
                track_id,
            } => {
                if let Err(e) = self.add_leg(publication, from, track_id).await {
                    tracing::debug!(media = self.key.media, error = %e, "cannot add a leg");
                }
            }
            MediaAction::RemoveLeg { publication } => {
                if let Some(leg) = self.legs.remove(&publication) {
                    self.drop_leg(leg).await;
                }
            }
            MediaAction::StartLegs { legs } => {
                for start in legs {
                    if let Some(leg) = self.legs.get(&start.publication) {
                        leg.forward
                            .start_leg(self.key.media, start.payload_type, start.extensions);
                    }
                }
            }
            MediaAction::PauseLeg {
                publication,
                paused,
            } => {
                if let Some(leg) = self.legs.get(&publication) {
                    leg.forward.set_paused(self.key.media, paused);
                }
            }
            MediaAction::SetLayer { publication, layer } => {
                if let Some(leg) = self.legs.get(&publication) {
                    leg.forward.set_layer(self.key.media, layer);
                }
            }
            MediaAction::Forward { source, muted } => {
                let key = (self.key.media, source);
                let mut set = lock(&self.shared.muted);
                if muted {
                    set.insert(key);
                } else {
                    set.remove(&key);
                }
                drop(set);
                if let Some(forward) = self.shared.forward(&self.key.room, self.key.media, source) {
                    forward.set_muted(muted);
                }
            }
            MediaAction::FavourCamera { publication } => self.favoured = publication,
            MediaAction::RequestKeyframe { source } => {
                // With simulcast, each leg's selector asks for the layer it waits for.
                if let Some(forward) = self.shared.forward(&self.key.room, self.key.media, source)
                    && !forward.simulcast()
                {
                    request_keyframe(&forward.remote, None).await;
                }
            }
            MediaAction::AddCandidate {
                connection,
                candidate,
            } => {
                let peer = match connection {
                    MediaConnection::Publish => self.publisher.as_mut(),
                    MediaConnection::Subscribe => self.subscriber.as_mut(),
                };
                if let Some(peer) = peer
                    && let Err(e) = peer.add_candidate(candidate).await
                {
                    tracing::debug!(media = self.key.media, error = %e, "a bad ICE candidate");
                }
            }
            MediaAction::ClosePublishing => self.close_publishing().await,
            MediaAction::CloseReceiving => self.close_receiving().await,
            MediaAction::Teardown => {}
        }
    }

    async fn peer_event(&mut self, connection: MediaConnection, event: PeerEvent) {
        match event {
            PeerEvent::Track(track) => self.track_arrived(track).await,
            PeerEvent::Candidate(candidate) => self.report(MediaFact::LocalCandidate {
                connection,
                candidate,
            }),
            PeerEvent::Failed => self.report(MediaFact::PeerFailed { connection }),
            PeerEvent::Connected => self.report(MediaFact::PeerConnected { connection }),
        }
    }

    /// Whether the receiving connection carries a video sent with simulcast (something to
    /// allocate).
    fn has_video_legs(&self) -> bool {
        self.subscriber.is_some() && self.legs.values().any(|leg| leg.forward.simulcast())
    }

    /// Shares the receiving connection's bandwidth estimate among its video legs
    /// ([`allocator`]) and caps each leg with its share.
    async fn allocate(&mut self) {
        let Some(peer) = self.subscriber.as_ref() else {
            return;
        };
        let estimate = allocator::Estimate::lower(
            peer.link_stats().await.send_side_bps,
            peer.receiver_estimate(),
        );
        let now = std::time::Instant::now();
        // Audio, and videos sent without simulcast (nothing to choose), come off first.
        let mut fixed = 0;
        let mut demands = Vec::new();
        for (id, leg) in &self.legs {
            let rates = leg.forward.rates(now);
            if !leg.forward.simulcast() {
                fixed += rates[0];
                continue;
            }
            let priority = if leg.source.is_screen() {
                allocator::Priority::Screen
            } else if self.favoured.as_ref() == Some(id) {
                allocator::Priority::Speaker
            } else {
                allocator::Priority::Camera
            };
            let Some(wanted) = leg.forward.layer_of(self.key.media) else {
                continue;
            };
            demands.push(allocator::Demand {
                id: id.clone(),
                priority,
                wanted,
                rates: rates.to_vec(),
            });
        }
        let now_ms = now.saturating_duration_since(self.started).as_millis() as u64;
        for (id, budget) in self.allocator.allocate(now_ms, estimate, fixed, &demands) {
            if let Some(leg) = self.legs.get(&id) {
                tracing::debug!(media = self.key.media, publication = %id, ?budget, ?estimate, "bandwidth budget");
                leg.forward.set_budget(self.key.media, budget);
            }
        }
    }

    /// Reads what the member's media did since the last time and reports it to the core
    /// ([`link_meter`]).
    async fn measure(&mut self) {
        let mut reading = link_meter::Reading {
            publishing: !self.published.is_empty(),
            ..Default::default()
        };
        for (source, _) in &self.published {
            if let Some(forward) = self.shared.forward(&self.key.room, self.key.media, *source) {
                let (expected, received) = forward.packets();
                reading.tracks.push((*source, expected, received));
            }
        }
        let mut stats = Vec::new();
        if let Some(peer) = &self.publisher {
            stats.push(peer.link_stats().await);
        }
        if let Some(peer) = &self.subscriber {
            // One read of the connection's statistics: its estimate, reports, jitter, RTT.
            let link = peer.link_stats().await;
            let estimate = allocator::Estimate::lower(link.send_side_bps, peer.receiver_estimate());
            reading.estimate_bps = estimate.map(|e| e.bps);
            let now = std::time::Instant::now();
            for leg in self.legs.values() {
                let rates = leg.forward.rates(now);
                let wanted = leg.forward.layer_of(self.key.media).unwrap_or(0);
                reading.wanted_bps += rates.get(usize::from(wanted)).copied().unwrap_or(0);
                reading.least_bps += rates.iter().copied().find(|r| *r > 0).unwrap_or(0);
            }
            // What the member reports lost, but for the numbers its legs never carried (its
            // publishers' own loss before the server); a stream no leg carries any more (its
            // publisher gone) is not judged.
            reading.reports = link
                .reports
                .iter()
                .filter_map(|&(ssrc, highest, lost)| {
                    let skipped = self.legs.values().find_map(|leg| {
                        leg.forward
                            .skipped_through(self.key.media, ssrc, highest as u16)
                    })?;
                    Some((ssrc, highest, lost.saturating_sub(skipped)))
                })
                .collect();
            stats.push(link);
        }
        reading.jitter_ms = stats.iter().filter_map(|s| s.audio_jitter_ms).max();
        reading.rtt_ms = stats.iter().filter_map(|s| s.rtt_ms).max();
        let sample = self.meter.sample(&reading);
        self.report(MediaFact::LinkMeasured(sample));
    }

    /// Makes one of the member's peer connections; its events become this actor's work. The
    /// receiving one estimates its bandwidth (it sends).
    async fn make_peer(&self, connection: MediaConnection) -> Result<Peer, MediaError> {
        let (peer, mut events) = match connection {
            MediaConnection::Publish => Peer::new(&self.shared.settings).await?,
            MediaConnection::Subscribe => Peer::new_estimating(&self.shared.settings).await?,
        };
        let me = self.me.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if me.send(Work::Peer(connection, event)).is_err() {
                    break;
                }
            }
        });
        Ok(peer)
    }

    async fn answer_publisher(&mut self, offer: String) -> Result<String, MediaError> {
        if self.publisher.is_none() {
            self.publisher = Some(self.make_peer(MediaConnection::Publish).await?);
        }
        let peer = self.publisher.as_mut().expect("made above");
        peer.answer(offer.clone())
            .await
            .map(|sdp| with_msid_semantic(&inactive_where_not_sent(&offer, &sdp)))
    }

    async fn offer(&mut self, ice_restart: bool) -> Result<String, MediaError> {
        if self.subscriber.is_none() {
            self.subscriber = Some(self.make_peer(MediaConnection::Subscribe).await?);
        }
        let peer = self.subscriber.as_mut().expect("made above");
        if ice_restart {
            peer.restart_ice().await?;
        }
        peer.offer().await.map(|sdp| with_msid_semantic(&sdp))
    }

    /// A track arrived on the publishing connection: forward it (if it names a source) and
    /// tell the core, which decides whether it is published.
    async fn track_arrived(&mut self, track: Arc<dyn TrackRemote>) {
        let track_id = track.track_id().await;
        if let Some(source) = TrackSource::from_track_id(&track_id)
            && let Some(ssrc) = track.ssrcs().await.first().copied()
            && let Some(codec) = track.codec(ssrc).await
        {
            let key = (self.key.media, source);
            let mut forwards = lock(&self.shared.forwards);
            // The same source again (a client that unpublished and published on a new track):
            // the new track feeds the old one's legs, and the old reader stops.
            let rids = self.rids.get(&source).cloned().unwrap_or_default();
            let level = self.levels.get(&source).copied();
            let (forward, reader) = match forwards.get(&key) {
                Some(old) => Forward::replace(old, track, rids, level),
                None => Forward::start(
                    self.key.room.clone(),
                    codec,
                    track,
                    self.shared.counters.clone(),
                    rids,
                    level,
                    super::forward::Reporter {
                        reports: self.shared.reports.clone(),
                        from: self.key.clone(),
                        source,
                    },
                ),
            };
            // A source the core muted stays muted on its new track.
            forward.set_muted(lock(&self.shared.muted).contains(&key));
            forwards.insert(key, forward);
            drop(forwards);
            if let Some(at) = self.published.iter().position(|(s, _)| *s == source) {
                self.published.remove(at).1.abort();
            }
            self.published.push((source, reader));
        }
        self.report(MediaFact::TrackArrived { track_id });
    }

    /// Adds a copy of `publication` (published by membership `from`) to the receiving
    /// connection, on a media line of its own that sends only.
    async fn add_leg(
        &mut self,
        publication: Publication,
        from: MediaId,
        track_id: String,
    ) -> Result<(), MediaError> {
        if let Some(old) = self.legs.remove(&publication.id) {
            self.drop_leg(old).await;
        }
        let Some(forward) = self
            .shared
            .forward(&self.key.room, from, publication.source)
        else {
            return Ok(());
        };
        if self.subscriber.is_none() {
            self.subscriber = Some(self.make_peer(MediaConnection::Subscribe).await?);
        }
        let peer = self.subscriber.as_ref().expect("made above");
        let ssrc = crate::media::rand_u32();
        let kind = match publication.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        // msid: the publisher as the stream (a client may group a member's tracks), the core's
        // track id (`<publication id>#<n>`) as the track, so a standard client maps each media
        // line to its publication.
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            publication.participant.to_string(),
            track_id.clone(),
            track_id,
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: forward.codec.clone(),
                ..Default::default()
            }],
        )));
        let transceiver = peer
            .pc
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: Vec::new(),
                    send_encodings: Vec::new(),
                }),
            )
            .await?;
        forward.add_leg(self.key.media, track.clone(), ssrc);
        let relay = tokio::spawn(relay_keyframe_requests(
            track,
            forward.clone(),
            self.key.media,
        ));
        self.legs.insert(
            publication.id,
            Leg {
                source: publication.source,
                forward,
                transceiver,
                relay,
            },
        );
        Ok(())
    }

    /// Stops a leg: no more packets, and its media line is stopped (the next offer rejects it).
    async fn drop_leg(&self, leg: Leg) {
        leg.forward.remove_leg(self.key.media);
        leg.relay.abort();
        let _ = leg.transceiver.stop().await;
    }

    async fn close_publishing(&mut self) {
        {
            let mut forwards = lock(&self.shared.forwards);
            for (source, reader) in self.published.drain(..) {
                reader.abort();
                forwards.remove(&(self.key.media, source));
            }
            // Nothing of the connection is published any more (the core says so too).
            lock(&self.shared.muted).retain(|(media, _)| *media != self.key.media);
        }
        if let Some(peer) = self.publisher.take() {
            peer.close().await;
        }
    }

    async fn close_receiving(&mut self) {
        for (_, leg) in self.legs.drain() {
            leg.forward.remove_leg(self.key.media);
            leg.relay.abort();
        }
        if let Some(peer) = self.subscriber.take() {
            peer.close().await;
        }
    }
}

/// Asks a publisher for a key frame (a picture loss indication) of its stream `ssrc`, or of its
/// track's first stream.
pub(super) async fn request_keyframe(publisher: &Arc<dyn TrackRemote>, ssrc: Option<u32>) {
    let ssrc = match ssrc {
        Some(ssrc) => Some(ssrc),
        None => publisher.ssrcs().await.first().copied(),
    };
    if let Some(media_ssrc) = ssrc {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        let _ = publisher.write_rtcp(vec![Box::new(pli)]).await;
    }
}

/// Passes a subscriber's key-frame requests (PLI, FIR) on to the publisher: for the layer its
/// leg forwards.
async fn relay_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    forward: Forward,
    subscriber: MediaId,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        if packets.iter().any(|p| asks_for_keyframe(p.as_ref())) {
            request_keyframe(&forward.remote, forward.keyframe_ssrc(subscriber)).await;
        }
    }
}

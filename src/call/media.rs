//! The client side of media: the call's two peer connections to the server, and the task that
//! runs them. It publishes on one (this side offers) and receives on the other (the server
//! offers). The task does what the client core (`call/core/`) says ([`PeerAction`]) and tells it
//! what happened ([`PeerInput`]); which offer is made when, how long an answer may take, which
//! candidate goes out and how a failed connection is brought back are the core's decisions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::core::{Input, OfferJob, PeerAction, PeerInput};
use super::{CallError, Shared, lock};
use crate::media::{
    LocalTrack, MediaError, Peer, PeerEvent, PeerSettings, RemoteTrack, Stamps, Stream, codec_for,
};
use crate::model::{MediaConnection, MediaKind, OperationId, Publication, TrackSource, UserId};

impl From<MediaError> for CallError {
    fn from(e: MediaError) -> Self {
        CallError::media(e)
    }
}

/// The call's own tracks, shared by its handles and the media task.
pub(crate) struct ClientMedia {
    settings: PeerSettings,
    me: UserId,
    /// Each source's track on the publishing connection, and whether it is published now. An
    /// unpublished track stays on the connection, silent: publishing the source again reuses
    /// it (the server still has it, so nothing new has to arrive there).
    local: Mutex<HashMap<TrackSource, (LocalTrack, bool)>>,
    /// Which sources are published with simulcast, and their layers.
    simulcast: super::Simulcast,
    /// The publishing and receiving peer connections now (what the statistics read).
    pub(crate) peers: Mutex<[Option<Arc<dyn webrtc::peer_connection::PeerConnection>>; 2]>,
    /// Each track's bytes at the last statistics, and when (their bitrates are since then).
    pub(crate) last_bytes: Mutex<HashMap<(MediaConnection, String), (std::time::Instant, u64)>>,
}

impl ClientMedia {
    pub(crate) fn new(settings: PeerSettings, me: UserId, simulcast: super::Simulcast) -> Self {
        ClientMedia {
            settings,
            me,
            local: Mutex::new(HashMap::new()),
            simulcast,
            peers: Mutex::default(),
            last_bytes: Mutex::default(),
        }
    }

    /// The published tracks, by source.
    pub(crate) fn published(&self) -> Vec<(TrackSource, LocalTrack)> {
        lock_plain(&self.local)
            .iter()
            .filter(|(_, (_, published))| *published)
            .map(|(source, (track, _))| (*source, track.clone()))
            .collect()
    }

    /// The published track of `source`, if it is published.
    pub(crate) fn local_track(&self, source: TrackSource) -> Option<LocalTrack> {
        match lock_plain(&self.local).get(&source) {
            Some((track, true)) => Some(track.clone()),
            _ => None,
        }
    }

    /// Someone else muted this call's track of `source` (`held`): it sends nothing until the
    /// server says it is unmuted (`held: false`).
    pub(crate) fn hold(&self, source: TrackSource, held: bool) {
        if let Some((track, _)) = lock_plain(&self.local).get(&source) {
            track.hold(held);
        }
    }

    /// Sends only the simulcast streams `rids` of the track of `source` (the others' writes
    /// are dropped until named again).
    pub(crate) fn send_layers(&self, source: TrackSource, rids: &[String]) {
        if let Some((track, _)) = lock_plain(&self.local).get(&source) {
            track.send_layers(rids);
        }
    }

    /// Stops sending `source`: the track's handle ends, the track stays on the connection for
    /// a later publish.
    pub(crate) fn unpublish(&self, source: TrackSource) {
        if let Some((track, published)) = lock_plain(&self.local).get_mut(&source) {
            track.end();
            *published = false;
        }
    }

    /// Ends every local track (the publishing connection is gone).
    pub(crate) fn end_local_tracks(&self) {
        for (_, (track, _)) in lock_plain(&self.local).drain() {
            track.end();
        }
    }
}

fn lock_plain<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn rtp_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

/// What a publish offer added, until its answer is applied (or it is undone).
enum Added {
    /// A new track, and the sender that carries it.
    New {
        source: TrackSource,
        track: Arc<TrackLocalStaticRTP>,
        streams: Vec<Stream>,
        sender: Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    },
    /// The source's parked track, published again.
    Parked {
        source: TrackSource,
        track: LocalTrack,
    },
}

/// The media task's connections.
struct Connections {
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    publisher: Option<(Peer, u64, mpsc::UnboundedReceiver<PeerEvent>)>,
    subscriber: Option<(Peer, u64, mpsc::UnboundedReceiver<PeerEvent>)>,
    /// What each publish offer under way added, by op.
    added: HashMap<OperationId, Added>,
}

/// The call's media task: does the core's peer-connection work and reports what the
/// connections do. Ends when the call closes.
pub(crate) async fn run(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    mut work: mpsc::UnboundedReceiver<PeerAction>,
) {
    let mut c = Connections {
        media,
        shared,
        publisher: None,
        subscriber: None,
        added: HashMap::new(),
    };
    loop {
        *lock_plain(&c.media.peers) = [
            c.publisher.as_ref().map(|(peer, _, _)| peer.pc.clone()),
            c.subscriber.as_ref().map(|(peer, _, _)| peer.pc.clone()),
        ];
        let published = async {
            match c.publisher.as_mut() {
                Some((_, generation, events)) => (*generation, events.recv().await),
                None => std::future::pending().await,
            }
        };
        let received = async {
            match c.subscriber.as_mut() {
                Some((_, generation, events)) => (*generation, events.recv().await),
                None => std::future::pending().await,
            }
        };
        let report = tokio::select! {
            action = work.recv() => match action {
                Some(action) => c.execute(action).await,
                None => break,
            },
            (generation, event) = published => match event {
                Some(PeerEvent::Candidate(candidate)) => Some(PeerInput::Candidate {
                    connection: MediaConnection::Publish,
                    generation,
                    candidate,
                }),
                Some(PeerEvent::Failed) => Some(PeerInput::State { connection: MediaConnection::Publish, generation, connected: false }),
                Some(PeerEvent::Connected) => Some(PeerInput::State { connection: MediaConnection::Publish, generation, connected: true }),
                Some(PeerEvent::Track(_)) => None,
                None => {
                    if let Some((peer, _, _)) = c.publisher.take() {
                        peer.close().await;
                    }
                    None
                }
            },
            (generation, event) = received => match event {
                Some(PeerEvent::Track(track)) => {
                    // The track id is `<publication id>#<n>` (docs/protocol.md, Media).
                    let track_id = track.track_id().await;
                    let id = track_id.rsplit_once('#').map_or(track_id.as_str(), |(id, _)| id);
                    match Publication::from_id(id) {
                        Some(publication) => {
                            let Some(shared) = c.shared.upgrade() else { break };
                            let mut s = lock(&shared);
                            s.remote_tracks.insert(publication.id.clone(), RemoteTrack::new(publication.clone(), track));
                            s.step(|core, now| core.handle(now, Input::Peer(PeerInput::TrackArrived(publication))));
                        }
                        None => tracing::debug!(track_id, "a remote track with an unknown id"),
                    }
                    None
                }
                Some(PeerEvent::Candidate(candidate)) => Some(PeerInput::Candidate {
                    connection: MediaConnection::Subscribe,
                    generation: 0,
                    candidate,
                }),
                Some(PeerEvent::Failed) => Some(PeerInput::State { connection: MediaConnection::Subscribe, generation, connected: false }),
                Some(PeerEvent::Connected) => Some(PeerInput::State { connection: MediaConnection::Subscribe, generation, connected: true }),
                None => {
                    c.subscriber = None;
                    None
                }
            },
        };
        if let Some(input) = report {
            let Some(shared) = c.shared.upgrade() else {
                break;
            };
            lock(&shared).step(|core, now| core.handle(now, Input::Peer(input)));
        }
    }
    c.close_subscriber().await;
    c.close_publisher().await;
    *lock_plain(&c.media.peers) = [None, None];
    c.media.end_local_tracks();
}

impl Connections {
    /// Does one piece of the core's work; what to tell it, if anything.
    async fn execute(&mut self, action: PeerAction) -> Option<PeerInput> {
        match action {
            PeerAction::AnswerOffer {
                negotiation,
                generation,
                sdp,
            } => {
                if self.subscriber.as_ref().map(|(_, g, _)| *g) != Some(generation) {
                    self.close_subscriber().await;
                    match Peer::new(&self.media.settings).await {
                        Ok((peer, events)) => self.subscriber = Some((peer, generation, events)),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot make the receiving peer connection");
                            return None;
                        }
                    }
                }
                let (peer, _, _) = self.subscriber.as_mut().expect("made above");
                match peer.answer(sdp).await {
                    Ok(sdp) => Some(PeerInput::Answered {
                        negotiation,
                        generation,
                        sdp,
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot answer the server's media offer");
                        None
                    }
                }
            }
            PeerAction::AddCandidate {
                connection,
                candidate,
            } => {
                let added = match connection {
                    MediaConnection::Subscribe => match self.subscriber.as_mut() {
                        Some((peer, _, _)) => peer.add_candidate(candidate).await,
                        None => Ok(()),
                    },
                    MediaConnection::Publish => match self.publisher.as_mut() {
                        Some((peer, _, _)) => peer.add_candidate(candidate).await,
                        None => Ok(()),
                    },
                };
                if let Err(e) = added {
                    tracing::debug!(error = %e, "a bad ICE candidate from the server");
                }
                None
            }
            PeerAction::Offer {
                op,
                generation,
                job,
            } => Some(match self.offer(op, generation, job).await {
                Ok(sdp) => PeerInput::Offered { op, sdp },
                Err(e) => PeerInput::OfferFailed {
                    op,
                    message: e.to_string(),
                },
            }),
            PeerAction::ApplyAnswer { op, sdp } => Some(PeerInput::Applied {
                op,
                result: self.apply(op, sdp).await.map_err(|e| e.to_string()),
            }),
            PeerAction::CancelOffer { op } => {
                if let (Some(Added::New { sender, .. }), Some((peer, _, _))) =
                    (self.added.remove(&op), self.publisher.as_mut())
                {
                    let _ = peer.pc.remove_track(&sender).await;
                }
                None
            }
            PeerAction::ClosePublisher => {
                // The tracks on it are over too (one whose answer was applied just before
                // included).
                self.close_publisher().await;
                self.media.end_local_tracks();
                None
            }
            PeerAction::CloseSubscriber => {
                self.close_subscriber().await;
                None
            }
        }
    }

    /// Makes the offer of job `op` on publishing connection `generation`.
    async fn offer(
        &mut self,
        op: OperationId,
        generation: u64,
        job: OfferJob,
    ) -> Result<String, CallError> {
        if self.publisher.as_ref().map(|(_, g, _)| *g) != Some(generation) {
            self.close_publisher().await;
            if !matches!(job, OfferJob::Republish(_)) {
                // A new connection for a publish: what the old one carried is over.
                self.media.end_local_tracks();
            }
            let (peer, events) = Peer::new(&self.media.settings).await?;
            self.publisher = Some((peer, generation, events));
        }
        let (peer, _, _) = self.publisher.as_mut().expect("made above");
        match job {
            OfferJob::Publish(source) => {
                let parked = match lock_plain(&self.media.local).get(&source) {
                    Some((track, false)) => Some(track.clone()),
                    _ => None,
                };
                match parked {
                    Some(track) => {
                        self.added.insert(op, Added::Parked { source, track });
                    }
                    None => {
                        let rids = self.media.simulcast.rids(source);
                        let (track, streams) = new_track(&self.media.me, source, rids);
                        let sender = peer
                            .pc
                            .add_track(track.clone() as Arc<dyn TrackLocal>)
                            .await
                            .map_err(MediaError::from)?;
                        self.added.insert(
                            op,
                            Added::New {
                                source,
                                track,
                                streams,
                                sender,
                            },
                        );
                    }
                }
            }
            OfferJob::Restart => peer.restart_ice().await?,
            OfferJob::Republish(sources) => {
                // The same handles on the new connection: what the application writes to
                // them goes out there.
                let tracks: Vec<LocalTrack> = {
                    let mut local = lock_plain(&self.media.local);
                    local.retain(|source, (_, published)| *published && sources.contains(source));
                    local.values().map(|(t, _)| t.clone()).collect()
                };
                for track in &tracks {
                    peer.pc
                        .add_track(track.rtp_track() as Arc<dyn TrackLocal>)
                        .await
                        .map_err(MediaError::from)?;
                }
            }
        }
        Ok(peer.offer().await?)
    }

    /// Applies the server's answer to `op`; a publish's track is the application's from then.
    async fn apply(&mut self, op: OperationId, sdp: String) -> Result<(), CallError> {
        let Some((peer, _, _)) = self.publisher.as_mut() else {
            return Err(CallError::media_message(
                "the publishing connection is gone",
            ));
        };
        let added = self.added.remove(&op);
        if let Err(e) = peer.accept(sdp).await {
            if let Some(Added::New { sender, .. }) = added {
                let _ = peer.pc.remove_track(&sender).await;
            }
            return Err(e.into());
        }
        let (source, track) = match added {
            None => return Ok(()),
            Some(Added::Parked { source, track }) => (source, track.revive()),
            Some(Added::New {
                source,
                track,
                streams,
                sender,
            }) => {
                let parameters = sender.get_parameters().await.ok();
                let payload_type = parameters
                    .as_ref()
                    .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
                    .ok_or_else(|| {
                        CallError::media_message("the server accepted no codec for this track")
                    })?;
                let audio_level_id = parameters
                    .as_ref()
                    .filter(|_| source.kind() == crate::model::MediaKind::Audio)
                    .and_then(|p| {
                        p.rtp_parameters
                            .header_extensions
                            .iter()
                            .find(|e| e.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
                    })
                    .and_then(|e| u8::try_from(e.id).ok());
                let stamps = if streams.len() > 1 {
                    let extensions = parameters
                        .as_ref()
                        .map(|p| p.rtp_parameters.header_extensions.clone())
                        .unwrap_or_default();
                    let mid = peer.local_mid_of(&source.as_str()).await;
                    Some(simulcast_stamps(&extensions, mid).ok_or_else(|| {
                        CallError::media_message(
                            "the server did not take the header extensions simulcast needs",
                        )
                    })?)
                } else {
                    None
                };
                (
                    source,
                    LocalTrack::new(
                        source,
                        track,
                        &streams,
                        payload_type,
                        stamps,
                        audio_level_id,
                    ),
                )
            }
        };
        lock_plain(&self.media.local).insert(source, (track, true));
        Ok(())
    }

    async fn close_publisher(&mut self) {
        self.added.clear();
        if let Some((peer, _, _)) = self.publisher.take() {
            peer.close().await;
        }
    }

    async fn close_subscriber(&mut self) {
        if let Some((peer, _, _)) = self.subscriber.take() {
            peer.close().await;
        }
    }
}

/// A new RTP track of `source`, and its streams: one per simulcast stream id in `rids` (smallest
/// first), or one without simulcast.
fn new_track(
    me: &UserId,
    source: TrackSource,
    rids: Vec<String>,
) -> (Arc<TrackLocalStaticRTP>, Vec<Stream>) {
    let kind = source.kind();
    let rids = if rids.is_empty() {
        vec![String::new()]
    } else {
        rids
    };
    let streams: Vec<Stream> = rids
        .into_iter()
        .map(|rid| (crate::media::rand_u32(), rid))
        .collect();
    let encodings = streams
        .iter()
        .map(|(ssrc, rid)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: rid.clone(),
                ssrc: Some(*ssrc),
                ..Default::default()
            },
            codec: codec_for(kind),
            ..Default::default()
        })
        .collect();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        me.to_string(),
        source.as_str().into_owned(),
        source.as_str().into_owned(),
        rtp_kind(kind),
        encodings,
    )));
    (track, streams)
}

/// The header extensions a simulcast packet carries, from what the answer negotiated on its
/// line (`extensions`) and the line's `mid`; `None` when either is missing.
fn simulcast_stamps(
    extensions: &[rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionParameters],
    mid: Option<String>,
) -> Option<Stamps> {
    let id_of = |uri: &str| {
        extensions
            .iter()
            .find(|e| e.uri == uri)
            .and_then(|e| u8::try_from(e.id).ok())
    };
    Some(Stamps {
        mid_id: id_of("urn:ietf:params:rtp-hdrext:sdes:mid")?,
        mid: bytes::Bytes::from(mid?),
        rid_id: id_of("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id")?,
    })
}

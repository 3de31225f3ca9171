//! The client side of media: the call's two peer connections to the server. It publishes on one
//! (this side offers, [`ClientMedia::publish`]) and receives on the other (the server offers;
//! answered by [`run`], the call's media task).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::session::MediaSignal;
use super::{CallError, Shared, lock};
use crate::event::{CallEvent, MediaEvent, OperationKind};
use crate::media::{LocalTrack, MediaError, Peer, PeerEvent, PeerSettings, RemoteTrack, codec_for};
use crate::model::MediaConnection;
use crate::model::{MediaKind, Publication, TrackSource, UserId};
use crate::protocol::{ClientFrame, IceCandidate};

/// How long the server may take to answer a publishing offer.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// What the call's media task is told.
pub(crate) enum MediaWork {
    /// SDP or a candidate from the server.
    Signal(MediaSignal),
    /// A candidate of the call's publishing connection, to send.
    LocalCandidate(IceCandidate),
    /// The call left its room: its peer connections are over.
    Reset,
    /// The call joined its room again on a new session: new peer connections, and its
    /// published tracks published again.
    Rejoined,
    /// The publishing connection failed (the server ends its publications too).
    PublisherFailed,
}

/// The call's peer connections.
pub(crate) struct ClientMedia {
    settings: PeerSettings,
    me: UserId,
    /// The media task's queue (weak: the task ends when the call closes).
    work: mpsc::WeakUnboundedSender<MediaWork>,
    /// The publishing connection; the async lock keeps one negotiation at a time.
    publisher: tokio::sync::Mutex<Option<Peer>>,
    /// Each source's track on the publishing connection, and whether it is published now. An
    /// unpublished track stays on the connection, silent: publishing the source again reuses
    /// it (the server still has it, so nothing new has to arrive there).
    local: Mutex<HashMap<TrackSource, (LocalTrack, bool)>>,
}

impl ClientMedia {
    pub(crate) fn new(
        settings: PeerSettings,
        me: UserId,
        work: mpsc::WeakUnboundedSender<MediaWork>,
    ) -> Self {
        ClientMedia {
            settings,
            me,
            work,
            publisher: tokio::sync::Mutex::new(None),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a track of `source` to the publishing connection and negotiates it with the server.
    /// `negotiate` sends the offer and waits for the server's answer.
    pub(crate) async fn publish<F, Fut>(
        &self,
        source: TrackSource,
        negotiate: F,
    ) -> Result<LocalTrack, CallError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, CallError>>,
    {
        let media_err = |e: MediaError| CallError::Media {
            message: e.to_string(),
        };
        let mut publisher = self.publisher.lock().await;
        let parked = match lock_plain(&self.local).get(&source) {
            Some((_, true)) => {
                return Err(CallError::InvalidParam {
                    message: format!("a {} track is published already", source.as_str()),
                });
            }
            Some((track, false)) => Some(track.clone()),
            None => None,
        };
        if let (Some(parked), Some(peer)) = (parked, publisher.as_mut()) {
            // Published before: the same track, negotiated again so the server publishes it.
            exchange(peer, negotiate).await?;
            let track = parked.revive();
            lock_plain(&self.local).insert(source, (track.clone(), true));
            return Ok(track);
        }
        if publisher.is_none() {
            // The connection's candidates go to the server as they are found.
            *publisher = Some(self.new_publisher().await.map_err(media_err)?);
        }
        let peer = publisher.as_mut().expect("made above");
        let kind = source.kind();
        let ssrc = crate::media::rand_u32();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            self.me.to_string(),
            source.as_str().to_owned(),
            source.as_str().to_owned(),
            rtp_kind(kind),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec_for(kind),
                ..Default::default()
            }],
        )));
        let sender = peer
            .pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| media_err(e.into()))?;
        if let Err(e) = exchange(peer, negotiate).await {
            let _ = peer.pc.remove_track(&sender).await;
            return Err(e);
        }
        let payload_type = sender
            .get_parameters()
            .await
            .ok()
            .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
            .ok_or_else(|| CallError::Media {
                message: "the server accepted no codec for this track".into(),
            })?;
        let track = LocalTrack::new(source, track, ssrc, payload_type);
        lock_plain(&self.local).insert(source, (track.clone(), true));
        Ok(track)
    }

    /// The published track of `source`, if it is published.
    pub(crate) fn local_track(&self, source: TrackSource) -> Option<LocalTrack> {
        match lock_plain(&self.local).get(&source) {
            Some((track, true)) => Some(track.clone()),
            _ => None,
        }
    }

    /// Stops sending `source` (the server is told separately): the track's handle ends, the
    /// track stays on the connection for a later publish.
    pub(crate) fn unpublish(&self, source: TrackSource) {
        if let Some((track, published)) = lock_plain(&self.local).get_mut(&source) {
            track.end();
            *published = false;
        }
    }

    /// A new publishing connection carrying the tracks published now (the same handles: what
    /// the application writes to them goes out on the new connection), negotiated in one offer.
    /// Nothing to do when no track is published.
    pub(crate) async fn republish<F, Fut>(&self, negotiate: F) -> Result<(), CallError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, CallError>>,
    {
        let media_err = |e: MediaError| CallError::Media {
            message: e.to_string(),
        };
        let mut publisher = self.publisher.lock().await;
        if let Some(old) = publisher.take() {
            old.close().await;
        }
        let tracks: Vec<LocalTrack> = {
            let mut local = lock_plain(&self.local);
            local.retain(|_, (_, published)| *published);
            local.values().map(|(t, _)| t.clone()).collect()
        };
        if tracks.is_empty() {
            return Ok(());
        }
        let mut peer = self.new_publisher().await.map_err(media_err)?;
        for track in &tracks {
            peer.pc
                .add_track(track.rtp_track() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| media_err(e.into()))?;
        }
        exchange(&mut peer, negotiate).await?;
        *publisher = Some(peer);
        Ok(())
    }

    /// A publishing connection whose candidates and failure go to the media task.
    async fn new_publisher(&self) -> Result<Peer, MediaError> {
        let (peer, mut events) = Peer::new(&self.settings).await?;
        let work = self.work.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(work) = work.upgrade() else { break };
                match event {
                    PeerEvent::Candidate(candidate) => {
                        let _ = work.send(MediaWork::LocalCandidate(candidate));
                    }
                    PeerEvent::Failed => {
                        let _ = work.send(MediaWork::PublisherFailed);
                    }
                    PeerEvent::Track(_) => {}
                }
            }
        });
        Ok(peer)
    }

    /// Closes the publishing connection and ends its tracks. The connection's lock is taken
    /// first, so a publish in progress finishes (or fails) before the tracks are cleared, and
    /// none is left published on a closed connection.
    async fn reset(&self) {
        let mut publisher = self.publisher.lock().await;
        for (_, (track, _)) in lock_plain(&self.local).drain() {
            track.end();
        }
        if let Some(peer) = publisher.take() {
            peer.close().await;
        }
    }
}

/// One offer/answer exchange on the publishing connection: `negotiate` sends the offer and
/// waits for the server's answer, which is then applied.
async fn exchange<F, Fut>(peer: &mut Peer, negotiate: F) -> Result<(), CallError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, CallError>>,
{
    let media_err = |e: MediaError| CallError::Media {
        message: e.to_string(),
    };
    let offer = peer.offer().await.map_err(media_err)?;
    let answer = negotiate(offer).await?;
    peer.accept(answer).await.map_err(media_err)
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

/// The call's media task: answers the server's offers on the receiving connection and turns
/// arriving tracks into events. Ends when the call closes.
pub(crate) async fn run(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    commands: mpsc::WeakSender<super::Command>,
    mut work: mpsc::UnboundedReceiver<MediaWork>,
) {
    let mut subscriber: Option<(Peer, mpsc::UnboundedReceiver<PeerEvent>)> = None;
    loop {
        let track_event = async {
            match subscriber.as_mut() {
                Some((_, events)) => events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = work.recv() => match item {
                None => break,
                Some(MediaWork::Reset) => {
                    if let Some((peer, _)) = subscriber.take() {
                        peer.close().await;
                    }
                    media.reset().await;
                }
                Some(MediaWork::Rejoined) => {
                    // The server's new membership offers its tracks again on a new connection.
                    if let Some((peer, _)) = subscriber.take() {
                        peer.close().await;
                    }
                    let (media, shared, commands) = (media.clone(), shared.clone(), commands.clone());
                    tokio::spawn(async move { republish(media, shared, commands).await });
                }
                Some(MediaWork::Signal(MediaSignal::SubscribeOffer { negotiation, sdp })) => {
                    if subscriber.is_none() {
                        match Peer::new(&media.settings).await {
                            Ok(made) => subscriber = Some(made),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot make the receiving peer connection");
                                continue;
                            }
                        }
                    }
                    let (peer, _) = subscriber.as_mut().expect("made above");
                    match peer.answer(sdp).await {
                        Ok(answer) => {
                            let (Some(shared), Some(commands)) = (shared.upgrade(), commands.upgrade()) else {
                                break;
                            };
                            let (op, text, online) = {
                                let mut shared = lock(&shared);
                                let (op, text) = shared.session.request(OperationKind::Negotiate, None, |op| {
                                    ClientFrame::SubscribeAnswer { op, negotiation, sdp: answer }
                                });
                                (op, text, shared.online)
                            };
                            // Offline, the session holds it until the connection is back.
                            if online {
                                let _ = commands.send(super::Command::Request(op, text)).await;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot answer the server's media offer"),
                    }
                }
                Some(MediaWork::Signal(MediaSignal::PublishAnswer { .. })) => {}
                Some(MediaWork::Signal(MediaSignal::Candidate { connection, candidate })) => {
                    let added = match connection {
                        MediaConnection::Subscribe => match subscriber.as_mut() {
                            Some((peer, _)) => peer.add_candidate(candidate).await,
                            None => Ok(()),
                        },
                        MediaConnection::Publish => match media.publisher.lock().await.as_mut() {
                            Some(peer) => peer.add_candidate(candidate).await,
                            None => Ok(()),
                        },
                    };
                    if let Err(e) = added {
                        tracing::debug!(error = %e, "a bad ICE candidate from the server");
                    }
                }
                Some(MediaWork::PublisherFailed) => {
                    media.reset().await;
                    let Some(shared) = shared.upgrade() else { break };
                    lock(&shared).publish(CallEvent::Media(MediaEvent::Failed {
                        connection: MediaConnection::Publish,
                        publication: None,
                        message: "the publishing peer connection failed; publish again".into(),
                    }));
                }
                Some(MediaWork::LocalCandidate(candidate)) => {
                    if !send(&commands, ClientFrame::IceCandidate { connection: MediaConnection::Publish, candidate }).await {
                        break;
                    }
                }
            },
            event = track_event => match event {
                Some(PeerEvent::Track(track)) => {
                    // The track id is `<publication id>#<n>` (docs/protocol.md, Media).
                    let track_id = track.track_id().await;
                    let id = track_id.rsplit_once('#').map_or(track_id.as_str(), |(id, _)| id);
                    let Some(publication) = Publication::from_id(id) else {
                        continue;
                    };
                    let Some(shared) = shared.upgrade() else { break };
                    let mut shared = lock(&shared);
                    shared.remote_tracks.insert(publication.id.clone(), RemoteTrack::new(publication.clone(), track));
                    let event = shared.session.tracks.arrived(publication);
                    shared.publish(event);
                }
                Some(PeerEvent::Candidate(candidate)) => {
                    if !send(&commands, ClientFrame::IceCandidate { connection: MediaConnection::Subscribe, candidate }).await {
                        break;
                    }
                }
                Some(PeerEvent::Failed) => {
                    // The server closes its side too; its next offer gets a new connection.
                    if let Some((peer, _)) = subscriber.take() {
                        peer.close().await;
                    }
                    let Some(shared) = shared.upgrade() else { break };
                    lock(&shared).publish(CallEvent::Media(MediaEvent::Failed {
                        connection: MediaConnection::Subscribe,
                        publication: None,
                        message: "the receiving peer connection failed".into(),
                    }));
                }
                None => subscriber = None,
            },
        }
    }
    if let Some((peer, _)) = subscriber.take() {
        peer.close().await;
    }
    media.reset().await;
}

/// Publishes the call's tracks again after a rejoin (the server's `publish_offer` without a
/// source publishes every track the offer sends). A failure is reported as a media event.
async fn republish(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    commands: mpsc::WeakSender<super::Command>,
) {
    let reserved = Arc::new(Mutex::new(None));
    let negotiate = |sdp: String| {
        let shared = shared.clone();
        let commands = commands.clone();
        let reserved = reserved.clone();
        async move {
            let closed = || CallError::Closed {
                reason: crate::model::Reason::Network,
            };
            let (shared, commands) = (
                shared.upgrade().ok_or_else(closed)?,
                commands.upgrade().ok_or_else(closed)?,
            );
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (op, text, online) = {
                let mut s = lock(&shared);
                let op = s.session.reserve(OperationKind::Negotiate);
                s.answers.insert(op, tx);
                let text = crate::protocol::encode(&ClientFrame::PublishOffer {
                    op,
                    sdp,
                    source: None,
                });
                s.session.made(op, &text);
                (op, text, s.online)
            };
            *lock_plain(&reserved) = Some(op);
            if online {
                let _ = commands.send(super::Command::Request(op, text)).await;
            }
            match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(Ok(answer))) => Ok(answer),
                Ok(Ok(Err(error))) => Err(CallError::Refused { op, error }),
                Ok(Err(_)) => Err(closed()),
                Err(_) => Err(CallError::Media {
                    message: "the server did not answer the media offer in time".into(),
                }),
            }
        }
    };
    let result = media.republish(negotiate).await;
    let reserved = *lock_plain(&reserved);
    if let Some(op) = reserved
        && let Some(shared) = shared.upgrade()
    {
        let mut s = lock(&shared);
        s.answers.remove(&op);
        s.session.forget(op);
    }
    if let Err(e) = result
        && let Some(shared) = shared.upgrade()
    {
        lock(&shared).publish(CallEvent::Media(MediaEvent::Failed {
            connection: MediaConnection::Publish,
            publication: None,
            message: format!("publishing again after the rejoin failed: {e}"),
        }));
    }
}

/// Sends a frame that expects no answer; false once the call is gone.
async fn send(commands: &mpsc::WeakSender<super::Command>, frame: ClientFrame) -> bool {
    match commands.upgrade() {
        Some(commands) => commands
            .send(super::Command::Frame(crate::protocol::encode(&frame)))
            .await
            .is_ok(),
        None => false,
    }
}

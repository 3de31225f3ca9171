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

use super::candidates::CandidateGate;
use super::clock::{now, until};
use super::policy::recovery::{Recovery, RecoveryOutput};
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
    /// The publishing connection failed: restart ICE on it.
    PublisherFailed,
    /// The publishing connection is connected (again).
    PublisherConnected,
    /// An ICE restart of the publishing connection was negotiated (or failed to be).
    RestartDone { negotiated: bool },
}

impl From<MediaError> for CallError {
    fn from(e: MediaError) -> Self {
        CallError::media(e)
    }
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
    /// The publishing connection's candidates wait until the server has answered its offer.
    gate: Arc<Mutex<CandidateGate>>,
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
            gate: Arc::default(),
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
            self.answered();
            let track = parked.revive();
            lock_plain(&self.local).insert(source, (track.clone(), true));
            return Ok(track);
        }
        if publisher.is_none() {
            // The connection's candidates go to the server as they are found.
            *publisher = Some(self.new_publisher().await.map_err(CallError::from)?);
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
            .map_err(|e| CallError::from(MediaError::from(e)))?;
        if let Err(e) = exchange(peer, negotiate).await {
            let _ = peer.pc.remove_track(&sender).await;
            return Err(e);
        }
        self.answered();
        let payload_type = sender
            .get_parameters()
            .await
            .ok()
            .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
            .ok_or_else(|| {
                CallError::media_message("the server accepted no codec for this track")
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

    /// Someone else muted this call's track of `source` (`held`): it sends nothing until the
    /// server says it is unmuted (`held: false`).
    pub(crate) fn hold(&self, source: TrackSource, held: bool) {
        if let Some((track, _)) = lock_plain(&self.local).get(&source) {
            track.hold(held);
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
        let mut publisher = self.publisher.lock().await;
        if let Some(old) = publisher.take() {
            lock_plain(&self.gate).closed();
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
        let mut peer = self.new_publisher().await.map_err(CallError::from)?;
        for track in &tracks {
            peer.pc
                .add_track(track.rtp_track() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| CallError::from(MediaError::from(e)))?;
        }
        exchange(&mut peer, negotiate).await?;
        self.answered();
        *publisher = Some(peer);
        Ok(())
    }

    /// The server answered an offer of the publishing connection: the candidates held until
    /// then go to the media task (which sends them), later ones as they are found.
    fn answered(&self) {
        let held = lock_plain(&self.gate).answered();
        if let Some(work) = self.work.upgrade() {
            for candidate in held {
                let _ = work.send(MediaWork::LocalCandidate(candidate));
            }
        }
    }

    /// A publishing connection whose candidates (once the server knows the connection, see
    /// [`CandidateGate`]) and failure go to the media task.
    async fn new_publisher(&self) -> Result<Peer, MediaError> {
        let (peer, mut events) = Peer::new(&self.settings).await?;
        let work = self.work.clone();
        let gate = self.gate.clone();
        let generation = lock_plain(&gate).new_connection();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(work) = work.upgrade() else { break };
                match event {
                    PeerEvent::Candidate(candidate) => {
                        if let Some(candidate) = lock_plain(&gate).found(generation, candidate) {
                            let _ = work.send(MediaWork::LocalCandidate(candidate));
                        }
                    }
                    PeerEvent::Failed => {
                        let _ = work.send(MediaWork::PublisherFailed);
                    }
                    PeerEvent::Connected => {
                        let _ = work.send(MediaWork::PublisherConnected);
                    }
                    PeerEvent::Track(_) => {}
                }
            }
        });
        Ok(peer)
    }

    /// Restarts ICE on the publishing connection: an offer with new credentials, negotiated
    /// by `negotiate`. The tracks and their handles stay. False when there is no connection.
    async fn restart_publisher<F, Fut>(&self, negotiate: F) -> Result<bool, CallError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<String, CallError>>,
    {
        let mut publisher = self.publisher.lock().await;
        let Some(peer) = publisher.as_mut() else {
            return Ok(false);
        };
        lock_plain(&self.gate).restarting();
        peer.restart_ice().await.map_err(CallError::from)?;
        exchange(peer, negotiate).await?;
        self.answered();
        Ok(true)
    }

    /// Whether the call has a publishing connection.
    async fn publishing(&self) -> bool {
        self.publisher.lock().await.is_some()
    }

    /// Closes the publishing connection and ends its tracks. The connection's lock is taken
    /// first, so a publish in progress finishes (or fails) before the tracks are cleared, and
    /// none is left published on a closed connection.
    /// Ends every local track at once (the publishing connection is given up; the media task
    /// closes the connection itself later).
    pub(crate) fn end_local_tracks(&self) {
        for (_, (track, _)) in lock_plain(&self.local).drain() {
            track.end();
        }
    }

    async fn reset(&self) {
        let mut publisher = self.publisher.lock().await;
        self.end_local_tracks();
        if let Some(peer) = publisher.take() {
            lock_plain(&self.gate).closed();
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
    let offer = peer.offer().await.map_err(CallError::from)?;
    let answer = negotiate(offer).await?;
    peer.accept(answer).await.map_err(CallError::from)
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

/// What the media task keeps about the call's two connections.
struct Connections {
    subscriber: Option<(Peer, mpsc::UnboundedReceiver<PeerEvent>)>,
    /// What is being restored, and when (the decisions: `policy/recovery.rs`).
    recovery: Recovery,
}

/// The call's media task: answers the server's offers on the receiving connection, turns
/// arriving tracks into events, and brings back a connection that fails (ICE restart). Ends
/// when the call closes.
pub(crate) async fn run(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    commands: mpsc::WeakSender<super::Command>,
    mut work: mpsc::UnboundedReceiver<MediaWork>,
) {
    let mut c = Connections {
        subscriber: None,
        recovery: Recovery::default(),
    };
    'media: loop {
        let track_event = async {
            match c.subscriber.as_mut() {
                Some((_, events)) => events.recv().await,
                None => std::future::pending().await,
            }
        };
        let retry = until(c.recovery.next_deadline());
        let Some(shared_now) = shared.upgrade() else {
            break;
        };
        let outputs = tokio::select! {
            item = work.recv() => match item {
                None => break,
                Some(MediaWork::Reset) => {
                    c.recovery.reset();
                    if let Some((peer, _)) = c.subscriber.take() {
                        peer.close().await;
                    }
                    media.reset().await;
                    Vec::new()
                }
                Some(MediaWork::Rejoined) => {
                    // The server's new membership offers its tracks again on a new connection.
                    c.recovery.reset();
                    if let Some((peer, _)) = c.subscriber.take() {
                        peer.close().await;
                    }
                    let (media, shared, commands) = (media.clone(), shared.clone(), commands.clone());
                    tokio::spawn(async move { republish(media, shared, commands).await });
                    Vec::new()
                }
                Some(MediaWork::Signal(MediaSignal::SubscribeOffer { negotiation, sdp })) => {
                    if !answer_offer(&media, &shared, &commands, &mut c, negotiation, sdp).await {
                        break;
                    }
                    Vec::new()
                }
                Some(MediaWork::Signal(MediaSignal::PublishAnswer { .. } | MediaSignal::Held { .. })) => Vec::new(),
                Some(MediaWork::Signal(MediaSignal::Candidate { connection, candidate })) => {
                    let added = match connection {
                        MediaConnection::Subscribe => match c.subscriber.as_mut() {
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
                    Vec::new()
                }
                Some(MediaWork::Signal(MediaSignal::Interrupted { connection })) => {
                    let publishing = media.publishing().await;
                    c.recovery.server_saw_failure(now(), connection, publishing, c.subscriber.is_some())
                }
                Some(MediaWork::Signal(MediaSignal::Lost { connection })) => {
                    // The session reported it (`MediaEvent::Failed`); the tracks end here.
                    c.recovery.given_up(connection);
                    match connection {
                        MediaConnection::Publish => media.reset().await,
                        MediaConnection::Subscribe => {
                            if let Some((peer, _)) = c.subscriber.take() {
                                peer.close().await;
                            }
                        }
                    }
                    Vec::new()
                }
                Some(MediaWork::PublisherFailed) => c.recovery.publisher_failed(now()),
                Some(MediaWork::PublisherConnected) => c.recovery.publisher_connected(),
                Some(MediaWork::RestartDone { negotiated }) => {
                    c.recovery.restart_done(now(), negotiated);
                    Vec::new()
                }
                Some(MediaWork::LocalCandidate(candidate)) => {
                    if !send(&commands, ClientFrame::IceCandidate { connection: MediaConnection::Publish, candidate }).await {
                        break;
                    }
                    Vec::new()
                }
            },
            () = retry => c.recovery.tick(now()),
            event = track_event => match event {
                Some(PeerEvent::Track(track)) => {
                    // The track id is `<publication id>#<n>` (docs/protocol.md, Media).
                    let track_id = track.track_id().await;
                    let id = track_id.rsplit_once('#').map_or(track_id.as_str(), |(id, _)| id);
                    let Some(publication) = Publication::from_id(id) else {
                        continue;
                    };
                    let mut shared = lock(&shared_now);
                    shared.remote_tracks.insert(publication.id.clone(), RemoteTrack::new(publication.clone(), track));
                    let event = shared.session.tracks.arrived(publication);
                    shared.publish(event);
                    Vec::new()
                }
                Some(PeerEvent::Candidate(candidate)) => {
                    if !send(&commands, ClientFrame::IceCandidate { connection: MediaConnection::Subscribe, candidate }).await {
                        break;
                    }
                    Vec::new()
                }
                Some(PeerEvent::Failed) => c.recovery.subscriber_failed(),
                Some(PeerEvent::Connected) => c.recovery.subscriber_connected(),
                None => {
                    c.subscriber = None;
                    Vec::new()
                }
            },
        };
        for output in outputs {
            match output {
                RecoveryOutput::Event(event) => lock(&shared_now).publish(CallEvent::Media(event)),
                RecoveryOutput::Report(connection) => {
                    if !send(&commands, ClientFrame::MediaInterrupted { connection }).await {
                        break 'media;
                    }
                }
                RecoveryOutput::RestartPublishing => {
                    let (media, shared, commands) =
                        (media.clone(), shared.clone(), commands.clone());
                    tokio::spawn(async move { restart_publishing(media, shared, commands).await });
                }
            }
        }
    }
    if let Some((peer, _)) = c.subscriber.take() {
        peer.close().await;
    }
    media.reset().await;
}

/// Answers the server's offer `negotiation` on the receiving connection (made on the first
/// offer). False once the call is gone.
async fn answer_offer(
    media: &ClientMedia,
    shared: &Weak<Mutex<Shared>>,
    commands: &mpsc::WeakSender<super::Command>,
    c: &mut Connections,
    negotiation: u64,
    sdp: String,
) -> bool {
    if c.subscriber.is_none() {
        match Peer::new(&media.settings).await {
            Ok(made) => c.subscriber = Some(made),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make the receiving peer connection");
                return true;
            }
        }
    }
    let (peer, _) = c.subscriber.as_mut().expect("made above");
    let answer = match peer.answer(sdp).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot answer the server's media offer");
            return true;
        }
    };
    let (Some(shared), Some(commands)) = (shared.upgrade(), commands.upgrade()) else {
        return false;
    };
    let (op, text, online) = {
        let mut shared = lock(&shared);
        let (op, text) = shared
            .session
            .request(OperationKind::Negotiate, None, |op| {
                ClientFrame::SubscribeAnswer {
                    op,
                    negotiation,
                    sdp: answer,
                }
            });
        (op, text, shared.online)
    };
    // Offline, the session holds it until the connection is back.
    if online {
        let _ = commands.send(super::Command::Request(op, text)).await;
    }
    true
}

/// Sends publishing offer `sdp` as request `op` (reserved by the caller), naming `source` or
/// none (every track the offer sends, or an ICE restart), and waits for the server's answer.
/// Offline, the request waits in the session and goes out once the connection is back.
pub(crate) async fn send_offer(
    shared: &Arc<Mutex<Shared>>,
    commands: &mpsc::Sender<super::Command>,
    op: crate::model::OperationId,
    sdp: String,
    source: Option<TrackSource>,
) -> Result<String, CallError> {
    let closed = |shared: &Arc<Mutex<Shared>>| CallError::Closed {
        reason: lock(shared).closed.unwrap_or(crate::model::Reason::Network),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (text, online) = {
        let mut s = lock(shared);
        s.answers.insert(op, tx);
        let text = crate::protocol::encode(&ClientFrame::PublishOffer { op, sdp, source });
        s.session.made(op, &text);
        (text, s.online)
    };
    if online
        && commands
            .send(super::Command::Request(op, text))
            .await
            .is_err()
    {
        return Err(closed(shared));
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(error))) => Err(CallError::Refused { op, error }),
        Ok(Err(_)) => Err(closed(shared)),
        Err(_) => Err(CallError::media_message(
            "the server did not answer the media offer in time",
        )),
    }
}

/// A publishing offer naming no source (publishing again after a rejoin, or an ICE restart),
/// as a request of its own that is forgotten once answered.
async fn offer_again(
    shared: &Weak<Mutex<Shared>>,
    commands: &mpsc::WeakSender<super::Command>,
    sdp: String,
) -> Result<String, CallError> {
    let closed = || CallError::Closed {
        reason: crate::model::Reason::Network,
    };
    let (shared, commands) = (
        shared.upgrade().ok_or_else(closed)?,
        commands.upgrade().ok_or_else(closed)?,
    );
    let op = lock(&shared).session.reserve(OperationKind::Negotiate);
    let result = send_offer(&shared, &commands, op, sdp, None).await;
    let mut s = lock(&shared);
    s.answers.remove(&op);
    s.session.forget(op);
    result
}

/// One ICE restart of the publishing connection; the media task hears how it went.
async fn restart_publishing(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    commands: mpsc::WeakSender<super::Command>,
) {
    let result = media
        .restart_publisher(|sdp| async { offer_again(&shared, &commands, sdp).await })
        .await;
    if let Err(e) = &result {
        tracing::debug!(error = %e, "an ICE restart of the publishing connection failed");
    }
    if let Some(work) = media.work.upgrade() {
        let _ = work.send(MediaWork::RestartDone {
            negotiated: matches!(result, Ok(true)),
        });
    }
}

/// Publishes the call's tracks again after a rejoin (the server's `publish_offer` without a
/// source publishes every track the offer sends). A failure is reported as a media event.
async fn republish(
    media: Arc<ClientMedia>,
    shared: Weak<Mutex<Shared>>,
    commands: mpsc::WeakSender<super::Command>,
) {
    let result = media
        .republish(|sdp| async { offer_again(&shared, &commands, sdp).await })
        .await;
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

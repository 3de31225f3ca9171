//! The SFU: the media shell that carries out the core's [`MediaCommand`]s. One actor task per
//! member owns that member's two peer connections (it publishes on one, receives on the other)
//! and does their negotiations one at a time. RTP is forwarded without decoding by a reader task
//! per published track, which writes each packet to every subscriber's leg (see
//! [`forward`](super::forward)). A subscriber's key-frame
//! requests (PLI, FIR) are relayed to the publisher, and a new video subscriber makes the SFU ask
//! for one itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

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
use webrtc::rtp_transceiver::RtpSender;

use super::State;
use super::forward::{Forward, lock};
use super::hub::{ConnId, Input, MediaCommand};
use super::workers::MediaWorkers;
use crate::media::{MediaError, Peer, PeerEvent, PeerSettings, asks_for_keyframe};
use crate::model::{MediaKind, OperationId, Publication, RoomId, TrackSource, UserId};
use crate::protocol::{ErrorCode, IceCandidate, MediaConnection, ServerFrame};

/// The SFU's shared state: one actor per member, and the published tracks.
pub(crate) struct Sfu {
    settings: PeerSettings,
    state: Weak<State>,
    actors: Mutex<HashMap<ConnId, mpsc::UnboundedSender<Work>>>,
    /// Published tracks by room and publication id (a publication id is unique only in its room).
    forwards: Mutex<HashMap<(RoomId, String), Forward>>,
    workers: MediaWorkers,
}

enum Work {
    Command(MediaCommand),
    Track(Arc<dyn TrackRemote>),
    /// A candidate of the server's side of one of the member's connections, to send.
    LocalCandidate(MediaConnection, IceCandidate),
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("actors", &lock(&self.actors).len())
            .finish_non_exhaustive()
    }
}

impl Sfu {
    pub(crate) fn new(settings: PeerSettings, state: Weak<State>, workers: MediaWorkers) -> Self {
        Sfu {
            settings,
            state,
            actors: Mutex::new(HashMap::new()),
            forwards: Mutex::new(HashMap::new()),
            workers,
        }
    }

    /// Hands a command to its member's actor (started on first use). Never blocks.
    pub(crate) fn dispatch(self: &Arc<Self>, command: MediaCommand) {
        let (conn, room) = match &command {
            MediaCommand::PublishOffer { conn, room, .. }
            | MediaCommand::SubscribeAnswer { conn, room, .. }
            | MediaCommand::RemoteCandidate { conn, room, .. }
            | MediaCommand::Subscribe { conn, room, .. }
            | MediaCommand::Unsubscribe { conn, room, .. } => (*conn, Some(room)),
            MediaCommand::Teardown { conn } => (*conn, None),
        };
        let mut actors = lock(&self.actors);
        let tx = match (actors.get(&conn), room) {
            (Some(tx), _) => tx,
            (None, None) => return,
            (None, Some(room)) => {
                // The member's actor runs on its room's worker, with the rest of the room's
                // media: a packet then crosses no thread on its way through the SFU.
                let (tx, rx) = mpsc::unbounded_channel();
                let actor = Actor::new(conn, room.clone(), self.clone(), tx.clone());
                self.workers.for_room(room).spawn(actor.run(rx));
                actors.entry(conn).or_insert(tx)
            }
        };
        let teardown = room.is_none();
        let _ = tx.send(Work::Command(command));
        if teardown {
            actors.remove(&conn);
        }
    }

    /// Number of member actors alive (for tests and the load tool).
    pub(crate) fn actor_count(&self) -> usize {
        lock(&self.actors).len()
    }

    /// Tasks alive on the media workers (actors, peer-connection drivers, readers, relays).
    pub(crate) fn task_count(&self) -> usize {
        self.workers.alive_tasks()
    }

    fn forward(&self, room: &RoomId, id: &str) -> Option<Forward> {
        lock(&self.forwards).get(&(room.clone(), id.to_owned())).cloned()
    }
}

/// One of the member's subscriptions: its leg on the receiving connection.
struct Subscription {
    sender: Arc<dyn RtpSender>,
    /// Relays the subscriber's key-frame requests to the publisher.
    relay: JoinHandle<()>,
}

/// One member's media: its peer connections and the tasks moving its packets.
struct Actor {
    conn: ConnId,
    room: RoomId,
    sfu: Arc<Sfu>,
    me: mpsc::UnboundedSender<Work>,
    publisher: Option<Peer>,
    user: Option<UserId>,
    published: Vec<(String, JoinHandle<()>)>,
    subscriber: Option<Peer>,
    /// Candidates from the member for a connection not made yet.
    early_candidates: Vec<(MediaConnection, IceCandidate)>,
    subscriptions: HashMap<String, Subscription>,
    negotiation: u64,
    awaiting_answer: bool,
    renegotiate: bool,
}

impl Actor {
    fn new(conn: ConnId, room: RoomId, sfu: Arc<Sfu>, me: mpsc::UnboundedSender<Work>) -> Self {
        Actor {
            conn,
            room,
            sfu,
            me,
            publisher: None,
            user: None,
            published: Vec::new(),
            subscriber: None,
            early_candidates: Vec::new(),
            subscriptions: HashMap::new(),
            negotiation: 0,
            awaiting_answer: false,
            renegotiate: false,
        }
    }

    fn send(&self, frame: ServerFrame) {
        if let Some(state) = self.sfu.state.upgrade() {
            state.send_to(self.conn, frame);
        }
    }

    fn fail(&self, op: Option<OperationId>, error: MediaError) {
        tracing::debug!(conn = self.conn, %error, "media request failed");
        self.send(ServerFrame::Error {
            op,
            code: ErrorCode::MediaFailed,
            message: error.to_string(),
        });
    }

    async fn run(mut self, mut work: mpsc::UnboundedReceiver<Work>) {
        while let Some(item) = work.recv().await {
            match item {
                Work::Command(MediaCommand::Teardown { .. }) => break,
                Work::Command(command) => self.command(command).await,
                Work::Track(track) => self.track_arrived(track).await,
                Work::LocalCandidate(connection, candidate) => {
                    self.send(ServerFrame::IceCandidate {
                        connection,
                        candidate,
                    })
                }
            }
        }
        self.teardown().await;
    }

    async fn command(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::PublishOffer { op, sdp, user, .. } => {
                self.user = Some(user);
                match self.answer_publisher(sdp).await {
                    Ok(sdp) => self.send(ServerFrame::PublishAnswer { op, sdp }),
                    Err(e) => self.fail(Some(op), e),
                }
            }
            MediaCommand::SubscribeAnswer {
                op,
                negotiation,
                sdp,
                ..
            } => {
                if negotiation != self.negotiation || !self.awaiting_answer {
                    self.send(ServerFrame::Error {
                        op: Some(op),
                        code: ErrorCode::InvalidParam,
                        message: format!("no open offer numbered {negotiation}"),
                    });
                    return;
                }
                let peer = self.subscriber.as_mut().expect("an offer was made");
                match peer.accept(sdp).await {
                    Ok(()) => {
                        self.send(ServerFrame::Done { op, seq: None });
                        self.start_negotiated_legs().await;
                    }
                    Err(e) => self.fail(Some(op), e),
                }
                self.awaiting_answer = false;
                if std::mem::take(&mut self.renegotiate) {
                    self.offer().await;
                }
            }
            MediaCommand::Subscribe { publication, .. } => {
                if self.resume(&publication) {
                    return;
                }
                if let Err(e) = self.subscribe(publication).await {
                    self.fail(None, e);
                }
                self.offer().await;
            }
            MediaCommand::Unsubscribe {
                publication, pause, ..
            } => {
                let forward = self.sfu.forward(&self.room, &publication.id);
                if pause {
                    // Kept negotiated: forwarding stops now and resumes on `Subscribe`.
                    if let Some(forward) = forward {
                        forward.set_paused(self.conn, true);
                    }
                } else if let Some(sub) = self.subscriptions.remove(&publication.id) {
                    if let Some(forward) = forward {
                        forward.remove_leg(self.conn);
                    }
                    if let Some(peer) = &self.subscriber {
                        let _ = peer.pc.remove_track(&sub.sender).await;
                    }
                    sub.relay.abort();
                    self.offer().await;
                }
            }
            MediaCommand::RemoteCandidate {
                connection,
                candidate,
                ..
            } => {
                let peer = match connection {
                    MediaConnection::Publish => self.publisher.as_mut(),
                    MediaConnection::Subscribe => self.subscriber.as_mut(),
                };
                match peer {
                    Some(peer) => {
                        if let Err(e) = peer.add_candidate(candidate).await {
                            tracing::debug!(conn = self.conn, error = %e, "a bad ICE candidate");
                        }
                    }
                    None => self.early_candidates.push((connection, candidate)),
                }
            }
            MediaCommand::Teardown { .. } => {}
        }
    }

    /// Makes one of the member's peer connections; its events become this actor's work.
    async fn make_peer(&mut self, connection: MediaConnection) -> Result<Peer, MediaError> {
        let (mut peer, mut events) = Peer::new(&self.sfu.settings).await?;
        let me = self.me.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let work = match event {
                    PeerEvent::Track(track) => Work::Track(track),
                    PeerEvent::Candidate(c) => Work::LocalCandidate(connection, c),
                    PeerEvent::Down => continue,
                };
                if me.send(work).is_err() {
                    break;
                }
            }
        });
        let (early, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early_candidates)
            .into_iter()
            .partition(|(c, _)| *c == connection);
        self.early_candidates = rest;
        for (_, candidate) in early {
            peer.add_candidate(candidate).await?;
        }
        Ok(peer)
    }

    async fn answer_publisher(&mut self, offer: String) -> Result<String, MediaError> {
        if self.publisher.is_none() {
            self.publisher = Some(self.make_peer(MediaConnection::Publish).await?);
        }
        self.publisher
            .as_mut()
            .expect("made above")
            .answer(offer)
            .await
    }

    /// A track arrived on the publishing connection: forward it and tell the core.
    async fn track_arrived(&mut self, track: Arc<dyn TrackRemote>) {
        eprintln!("DEBUG track arrived conn {} id {:?} ssrcs {:?}", self.conn, track.track_id().await, track.ssrcs().await);
        let Some(user) = self.user.clone() else {
            return;
        };
        let Some(source) = TrackSource::from_track_id(&track.track_id().await) else {
            tracing::debug!(conn = self.conn, "a track with an unknown source; ignored");
            return;
        };
        let Some(ssrc) = track.ssrcs().await.first().copied() else {
            return;
        };
        let Some(codec) = track.codec(ssrc).await else {
            return;
        };
        let publication = Publication::new(user, source);
        let (forward, reader) = Forward::start(codec, track);
        lock(&self.sfu.forwards).insert((self.room.clone(), publication.id.clone()), forward);
        self.published.push((publication.id.clone(), reader));
        if let Some(state) = self.sfu.state.upgrade() {
            state.handle(Input::TrackPublished {
                conn: self.conn,
                source,
            });
        }
    }

    async fn subscribe(&mut self, publication: Publication) -> Result<(), MediaError> {
        let Some(forward) = self.sfu.forward(&self.room, &publication.id) else {
            return Ok(());
        };
        if self.subscriptions.contains_key(&publication.id) {
            return Ok(());
        }
        if self.subscriber.is_none() {
            self.subscriber = Some(self.make_peer(MediaConnection::Subscribe).await?);
        }
        let peer = self.subscriber.as_ref().expect("made above");
        let ssrc = crate::media::rand_u32();
        let kind = match publication.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            publication.participant.to_string(),
            publication.id.clone(),
            publication.id.clone(),
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
        let sender = peer
            .pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await?;
        forward.add_leg(self.conn, track.clone(), ssrc);
        let relay = tokio::spawn(relay_keyframe_requests(track, forward.remote.clone()));
        self.subscriptions
            .insert(publication.id, Subscription { sender, relay });
        if kind == RtpCodecKind::Video {
            // A new receiver needs a key frame to start decoding: ask the publisher for one.
            request_keyframe(&forward.remote).await;
        }
        Ok(())
    }

    /// Resumes a subscription paused at the member's request; false when there is none.
    fn resume(&mut self, publication: &Publication) -> bool {
        let Some(forward) = self.sfu.forward(&self.room, &publication.id) else {
            return false;
        };
        if !self.subscriptions.contains_key(&publication.id) {
            return false;
        }
        let was_paused = forward.set_paused(self.conn, false);
        if was_paused && publication.kind == MediaKind::Video {
            let remote = forward.remote.clone();
            tokio::spawn(async move { request_keyframe(&remote).await });
        }
        true
    }

    /// After an answer: tells each leg's reader the payload type negotiated on it, which starts
    /// a new leg's packets flowing (for the others it is the type they already have).
    async fn start_negotiated_legs(&self) {
        for (id, sub) in &self.subscriptions {
            let Some(forward) = self.sfu.forward(&self.room, id) else {
                continue;
            };
            let payload_type = sub
                .sender
                .get_parameters()
                .await
                .ok()
                .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type));
            if let Some(payload_type) = payload_type {
                forward.set_payload_type(self.conn, payload_type);
            }
        }
    }

    /// Offers the subscribing connection's current tracks, unless an offer is still unanswered
    /// (then once more after the answer).
    async fn offer(&mut self) {
        if self.awaiting_answer {
            self.renegotiate = true;
            return;
        }
        let Some(peer) = self.subscriber.as_mut() else {
            return;
        };
        match peer.offer().await {
            Ok(sdp) => {
                self.negotiation += 1;
                self.awaiting_answer = true;
                self.send(ServerFrame::SubscribeOffer {
                    negotiation: self.negotiation,
                    sdp,
                });
            }
            Err(e) => self.fail(None, e),
        }
    }

    async fn teardown(&mut self) {
        for (id, sub) in self.subscriptions.drain() {
            if let Some(forward) = self.sfu.forward(&self.room, &id) {
                forward.remove_leg(self.conn);
            }
            sub.relay.abort();
        }
        {
            let mut forwards = lock(&self.sfu.forwards);
            for (id, reader) in self.published.drain(..) {
                reader.abort();
                forwards.remove(&(self.room.clone(), id));
            }
        }
        for peer in [self.publisher.take(), self.subscriber.take()]
            .into_iter()
            .flatten()
        {
            peer.close().await;
        }
    }
}

/// Asks a publisher for a key frame (a picture loss indication on its track).
async fn request_keyframe(publisher: &Arc<dyn TrackRemote>) {
    if let Some(media_ssrc) = publisher.ssrcs().await.first().copied() {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        let _ = publisher.write_rtcp(vec![Box::new(pli)]).await;
    }
}

/// Passes a subscriber's key-frame requests (PLI, FIR) on to the publisher.
async fn relay_keyframe_requests(track: Arc<TrackLocalStaticRTP>, publisher: Arc<dyn TrackRemote>) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        if packets.iter().any(|p| asks_for_keyframe(p.as_ref())) {
            request_keyframe(&publisher).await;
        }
    }
}

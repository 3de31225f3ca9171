//! The client's core: turns server frames into [`CallEvent`]s and operation outcomes, and keeps
//! the room view and the open invitations. Sans-IO: the async shell in `call/mod.rs` feeds it
//! frames and hands its events to subscribers.

use std::collections::{BTreeMap, HashMap};

use crate::event::{
    CallEvent, InviteEvent, InviteReport, MediaEvent, MessageEvent, OpError, OperationKind,
    Outcome, ParticipantEvent, PropertyEvent, ReceivedMessage, RecordingEvent, RoomSnapshot,
};
use crate::model::{Invitation, InvitationId, OperationId, Reason, RoomId, TrackSource, UserId};
use crate::protocol::{ClientFrame, ServerFrame};

use super::tracks::{TrackBook, TrackChanges};

/// What one server frame produced.
#[derive(Debug, Default)]
pub(crate) struct Handled {
    /// Events for subscribers, in order.
    pub(crate) events: Vec<CallEvent>,
    /// Operations that finished, with their outcome.
    pub(crate) outcomes: Vec<(OperationId, Result<Outcome, OpError>)>,
    /// Media negotiation for the call's peer connections.
    pub(crate) media: Vec<MediaSignal>,
    /// What happens to the call's remote track handles.
    pub(crate) tracks: TrackChanges,
}

/// SDP from the server for the call's media.
#[derive(Debug)]
pub(crate) enum MediaSignal {
    /// The answer to this call's publishing offer `op`.
    PublishAnswer { op: OperationId, sdp: String },
    /// The server's offer for the subscribing peer connection.
    SubscribeOffer { negotiation: u64, sdp: String },
    /// A candidate of the server's side of one of the call's connections.
    Candidate {
        connection: crate::protocol::MediaConnection,
        candidate: crate::protocol::IceCandidate,
    },
    /// The server's side of one of the call's connections failed: restart ICE on it.
    Interrupted {
        connection: crate::protocol::MediaConnection,
    },
    /// The server gave one of the call's connections up (it was not restored in time).
    Lost {
        connection: crate::protocol::MediaConnection,
    },
    /// Someone else (a host, the backend) muted this call's own track of `source` (`held`):
    /// stop sending it until the server says it is unmuted (`held: false`, the call's own
    /// unmute applied).
    Held { source: TrackSource, held: bool },
}

#[derive(Debug)]
struct Pending {
    kind: OperationKind,
    /// The invitation a cancel, accept or reject is about.
    invitation: Option<InvitationId>,
    /// The request as sent, to send again after a lost connection (`None` until it is made).
    frame: Option<String>,
}

/// Where a session stands in what the server sent it: the resume handshake's numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) received: u64,
    pub(crate) room: Option<RoomId>,
    pub(crate) seq: Option<u64>,
}

/// How to join the room again on a new session.
#[derive(Clone, Debug)]
pub(crate) struct Rejoin {
    pub(crate) room: RoomId,
    pub(crate) me: crate::model::Participant,
    pub(crate) auto_subscribe: bool,
}

impl Rejoin {
    /// The join again, as request `op`: the same room, name, flags and state.
    pub(crate) fn frame(self, op: OperationId) -> ClientFrame {
        ClientFrame::Join {
            op,
            room: Some(self.room),
            display_name: Some(self.me.display_name),
            audio: self.me.audio,
            video: self.me.video,
            state: self.me.state,
            auto_subscribe: self.auto_subscribe,
        }
    }
}

/// One logged-in user's view of its call.
#[derive(Debug)]
pub(crate) struct Session {
    me: UserId,
    next_op: u64,
    pending: HashMap<OperationId, Pending>,
    room: Option<RoomSnapshot>,
    /// Open invitations to us.
    received: BTreeMap<InvitationId, Invitation>,
    /// Open invitations we made.
    sent: BTreeMap<InvitationId, Invitation>,
    /// Room events that broke the sequence so far (always 0 with a correct server).
    seq_faults: u64,
    /// Frames taken twice (a replay overlapping what arrived), dropped.
    duplicates: u64,
    /// The highest personal frame number taken.
    last_n: u64,
    /// The current room's `auto_subscribe`, for a join again.
    auto_subscribe: bool,
    /// The tracks reaching the call.
    pub(crate) tracks: TrackBook,
}

impl Session {
    pub(crate) fn new(me: UserId) -> Self {
        Session {
            me,
            next_op: 0,
            pending: HashMap::new(),
            room: None,
            received: BTreeMap::new(),
            sent: BTreeMap::new(),
            seq_faults: 0,
            duplicates: 0,
            last_n: 0,
            auto_subscribe: true,
            tracks: TrackBook::default(),
        }
    }

    /// The room as this session sees it now.
    pub(crate) fn room(&self) -> Option<&RoomSnapshot> {
        self.room.as_ref()
    }

    /// Open invitations to this user.
    pub(crate) fn received_invitations(&self) -> impl Iterator<Item = &Invitation> {
        self.received.values()
    }

    /// Open invitations this call made.
    pub(crate) fn sent_invitations(&self) -> impl Iterator<Item = &Invitation> {
        self.sent.values()
    }

    /// Room events that broke the sequence so far.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn seq_faults(&self) -> u64 {
        self.seq_faults
    }

    /// Allocates an operation id, remembers what it is, and builds its frame (encoded, and
    /// kept to send again after a lost connection).
    pub(crate) fn request(
        &mut self,
        kind: OperationKind,
        invitation: Option<InvitationId>,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) -> (OperationId, String) {
        self.next_op += 1;
        let op = OperationId(self.next_op);
        let frame = frame(op);
        if let ClientFrame::Join { auto_subscribe, .. } = &frame {
            self.auto_subscribe = *auto_subscribe;
        }
        let text = crate::protocol::encode(&frame);
        self.pending.insert(
            op,
            Pending {
                kind,
                invitation,
                frame: Some(text.clone()),
            },
        );
        (op, text)
    }

    /// Keeps the frame of reserved request `op`, once it is made.
    pub(crate) fn made(&mut self, op: OperationId, text: &str) {
        if let Some(p) = self.pending.get_mut(&op) {
            p.frame = Some(text.to_owned());
        }
    }

    /// Where this session stands, for a resume or an acknowledgement.
    pub(crate) fn taken(&self) -> Taken {
        Taken {
            received: self.last_n,
            room: self.room.as_ref().map(|r| r.room.clone()),
            seq: self.room.as_ref().map(|r| r.seq),
        }
    }

    /// The requests still unanswered, in the order they were made, to send again.
    pub(crate) fn unanswered(&self) -> Vec<(OperationId, String)> {
        let mut frames: Vec<_> = self
            .pending
            .iter()
            .filter_map(|(op, p)| p.frame.clone().map(|f| (*op, f)))
            .collect();
        frames.sort_by_key(|(op, _)| *op);
        frames
    }

    /// Requests unanswered now.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Frames taken twice and dropped so far.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The server lost this session (it restarted): every unanswered request fails with
    /// `session_lost`, every open invitation ends (reason `network`: its fate is unknown), and
    /// the numbering of personal frames starts again. Returns how to join the room again, if
    /// the call was in one (its view stays until the join again answers).
    pub(crate) fn lost(&mut self) -> (Handled, Option<Rejoin>) {
        let mut out = Handled::default();
        let mut ops: Vec<_> = self.pending.keys().copied().collect();
        ops.sort();
        for op in ops {
            if let Some(pending) = self.pending.remove(&op)
                && pending.kind != OperationKind::Negotiate
            {
                let error = OpError {
                    code: crate::protocol::ErrorCode::SessionLost,
                    message: "the server lost the session before answering; \
                              whether the request took effect is unknown"
                        .into(),
                };
                self.finish(op, pending, Err(error), None, &mut out);
            }
        }
        for (_, invitation) in std::mem::take(&mut self.received)
            .into_iter()
            .chain(std::mem::take(&mut self.sent))
        {
            out.events.push(CallEvent::Invite(InviteEvent::Canceled {
                invitation,
                reason: Reason::Network,
            }));
        }
        self.last_n = 0;
        let rejoin = self.room.as_ref().and_then(|snap| {
            let me = snap.participants.iter().find(|p| p.user_id == self.me)?;
            Some(Rejoin {
                room: snap.room.clone(),
                me: me.clone(),
                auto_subscribe: self.auto_subscribe,
            })
        });
        if rejoin.is_none()
            && let Some(left) = self.closed(Reason::Network)
        {
            out.events.push(left);
        }
        (out, rejoin)
    }

    /// Allocates an op id for a request whose frame is made later (a publish: its offer takes
    /// a moment to make).
    pub(crate) fn reserve(&mut self, kind: OperationKind) -> OperationId {
        self.next_op += 1;
        let op = OperationId(self.next_op);
        self.pending.insert(
            op,
            Pending {
                kind,
                invitation: None,
                frame: None,
            },
        );
        op
    }

    /// Whether `op` still waits for its answer.
    pub(crate) fn is_pending(&self, op: OperationId) -> bool {
        self.pending.contains_key(&op)
    }

    /// Forgets a request that could not be sent, or that the client finished itself.
    pub(crate) fn forget(&mut self, op: OperationId) {
        self.pending.remove(&op);
    }

    /// Ops still waiting for an answer.
    pub(crate) fn pending(&self) -> impl Iterator<Item = OperationId> + '_ {
        self.pending.keys().copied()
    }

    /// Takes one server frame, with its personal number `n` if it has one; returns the
    /// events and outcomes it makes, in order. A frame taken before (a replay overlapping what
    /// had arrived) makes nothing.
    pub(crate) fn handle(&mut self, frame: ServerFrame, n: Option<u64>) -> Handled {
        if let Some(n) = n {
            if n <= self.last_n {
                self.duplicates += 1;
                return Handled::default();
            }
            self.last_n = n;
        }
        let mut out = self.handle_frame(frame);
        let (events, mut changes) = self.tracks.follow(std::mem::take(&mut out.events));
        out.events = events;
        changes.ended.append(&mut out.tracks.ended);
        out.tracks = changes;
        out
    }

    fn handle_frame(&mut self, frame: ServerFrame) -> Handled {
        let mut out = Handled::default();
        match frame {
            ServerFrame::Welcome { .. } | ServerFrame::Pong {} => {}
            ServerFrame::Resumed { resync, .. } => {
                if let Some(resync) = resync {
                    self.resynced(*resync, &mut out);
                }
            }
            ServerFrame::Joined {
                op,
                room,
                seq,
                participants,
                properties,
                publications,
            } => {
                let snapshot = RoomSnapshot {
                    room,
                    seq,
                    me: self.me.clone(),
                    participants,
                    properties,
                    publications,
                };
                self.joined(op, snapshot, &mut out)
            }
            ServerFrame::PublishAnswer { op, sdp } => {
                // The answer goes to the publish's negotiation, which finishes the op once the
                // answer is applied (`Call::publish`); a refusal finishes it here.
                out.media.push(MediaSignal::PublishAnswer { op, sdp });
            }
            ServerFrame::SubscribeOffer { negotiation, sdp } => {
                out.media
                    .push(MediaSignal::SubscribeOffer { negotiation, sdp });
            }
            ServerFrame::MediaFailed {
                connection,
                publication,
                message,
            } => out.events.push(CallEvent::Media(MediaEvent::Failed {
                connection,
                publication,
                message,
            })),
            ServerFrame::MediaInterrupted { connection, .. } => {
                out.media.push(MediaSignal::Interrupted { connection });
            }
            ServerFrame::MediaLost {
                connection,
                message,
            } => {
                if connection == crate::protocol::MediaConnection::Subscribe {
                    // What the lost connection carried is over; the server offers it again on
                    // a new connection, and each track comes back as a new `Subscribed` one.
                    for (publication, received) in self.tracks.lost() {
                        out.tracks.ended.push(publication.id.clone());
                        if received {
                            out.events
                                .push(CallEvent::Media(MediaEvent::Unsubscribed { publication }));
                        }
                    }
                }
                out.media.push(MediaSignal::Lost { connection });
                out.events.push(CallEvent::Media(MediaEvent::Failed {
                    connection,
                    publication: None,
                    message,
                }));
            }
            ServerFrame::IceCandidate {
                connection,
                candidate,
            } => out.media.push(MediaSignal::Candidate {
                connection,
                candidate,
            }),
            ServerFrame::TrackPublished {
                room,
                seq,
                publication,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.publications.push(publication.clone());
                    // A new publication of this call's own starts unmuted on the server (after
                    // a rejoin, a mute by someone else is over).
                    if publication.participant == self.me {
                        out.media.push(MediaSignal::Held {
                            source: publication.source,
                            held: false,
                        });
                    }
                    out.events.push(CallEvent::Media(MediaEvent::Published {
                        room,
                        seq,
                        publication,
                    }));
                }
            }
            ServerFrame::TrackMuted {
                room,
                seq,
                publication,
                by,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    for p in &mut snap.publications {
                        if p.id == publication.id {
                            *p = publication.clone();
                        }
                    }
                    // Someone else muted this call's own track: it stops sending it too, until
                    // the server says it is unmuted (this call's own unmute, applied).
                    if publication.participant == self.me && (by.is_some() || !publication.muted) {
                        out.media.push(MediaSignal::Held {
                            source: publication.source,
                            held: publication.muted,
                        });
                    }
                    let event = if publication.muted {
                        MediaEvent::Muted {
                            room,
                            seq,
                            publication,
                            by,
                        }
                    } else {
                        MediaEvent::Unmuted {
                            room,
                            seq,
                            publication,
                        }
                    };
                    out.events.push(CallEvent::Media(event));
                }
            }
            ServerFrame::TrackUnpublished {
                room,
                seq,
                publication,
                reason,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.publications.retain(|p| p.id != publication.id);
                    out.events.push(CallEvent::Media(MediaEvent::Unpublished {
                        room,
                        seq,
                        publication,
                        reason,
                    }));
                }
            }
            ServerFrame::Done { op, seq } => {
                if let Some(seq) = seq
                    && let Some(room) = self.room.as_ref().map(|r| r.room.clone())
                {
                    self.advance(&room, seq);
                }
                match self.pending.remove(&op) {
                    Some(pending) => self.finish(op, pending, Ok(()), seq, &mut out),
                    None => tracing::warn!(%op, "answer to an operation this call did not send"),
                }
            }
            ServerFrame::Error { op, code, message } => {
                let error = OpError { code, message };
                match op.and_then(|op| self.pending.remove(&op).map(|p| (op, p))) {
                    Some((op, pending)) => self.finish(op, pending, Err(error), None, &mut out),
                    None => out.events.push(CallEvent::ServerError(error)),
                }
            }
            ServerFrame::Refreshed { op, .. } => match self.pending.remove(&op) {
                Some(pending) => self.finish(op, pending, Ok(()), None, &mut out),
                None => tracing::warn!(%op, "answer to an operation this call did not send"),
            },
            ServerFrame::Bans { op, bans, .. } => {
                self.pending.remove(&op);
                out.events.push(CallEvent::Bans {
                    op,
                    result: Ok(bans.clone()),
                });
                out.outcomes.push((op, Ok(Outcome::Bans(bans))));
            }
            ServerFrame::Invited {
                op,
                room,
                invitations,
                failed,
            } => {
                self.pending.remove(&op);
                for invitation in &invitations {
                    self.sent.insert(invitation.id, invitation.clone());
                }
                let report = InviteReport {
                    room,
                    invitations,
                    failed,
                };
                out.events.push(CallEvent::Invite(InviteEvent::Sent {
                    op,
                    result: Ok(report.clone()),
                }));
                out.outcomes.push((op, Ok(Outcome::Invited(report))));
            }
            ServerFrame::InviteReceived { invitation } => {
                self.received.insert(invitation.id, invitation.clone());
                out.events
                    .push(CallEvent::Invite(InviteEvent::Received(invitation)));
            }
            ServerFrame::InviteCanceled { invitation, reason } => {
                self.received.remove(&invitation.id);
                self.sent.remove(&invitation.id);
                out.events.push(CallEvent::Invite(InviteEvent::Canceled {
                    invitation,
                    reason,
                }));
            }
            ServerFrame::InviteAccepted { invitation } => {
                self.sent.remove(&invitation.id);
                out.events
                    .push(CallEvent::Invite(InviteEvent::Accepted { invitation }));
            }
            ServerFrame::InviteRejected { invitation, reason } => {
                self.sent.remove(&invitation.id);
                out.events.push(CallEvent::Invite(InviteEvent::Rejected {
                    invitation,
                    reason,
                }));
            }
            ServerFrame::ParticipantJoined {
                room,
                seq,
                participant,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.participants.push(participant.clone());
                    out.events
                        .push(CallEvent::Participant(ParticipantEvent::Joined {
                            room,
                            seq,
                            participant,
                        }));
                }
            }
            ServerFrame::ParticipantLeft {
                room,
                seq,
                participant,
                reason,
            } => {
                let me = participant.user_id == self.me;
                if let Some(snap) = self.advance(&room, seq) {
                    if me {
                        self.room = None;
                        out.events.push(CallEvent::Left {
                            room,
                            reason,
                            op: None,
                        });
                    } else {
                        snap.participants
                            .retain(|p| p.user_id != participant.user_id);
                        out.events
                            .push(CallEvent::Participant(ParticipantEvent::Left {
                                room,
                                seq,
                                participant,
                                reason,
                            }));
                    }
                }
            }
            ServerFrame::ParticipantUpdated {
                room,
                seq,
                participant,
                changes,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    if let Some(p) = snap
                        .participants
                        .iter_mut()
                        .find(|p| p.user_id == participant.user_id)
                    {
                        *p = participant.clone();
                    }
                    out.events
                        .push(CallEvent::Participant(ParticipantEvent::Updated {
                            room,
                            seq,
                            participant,
                            changes,
                        }));
                }
            }
            ServerFrame::PropertiesChanged {
                room,
                seq,
                properties,
                changes,
                by,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.properties = properties.clone();
                    out.events.push(CallEvent::Property(PropertyEvent::Changed {
                        room,
                        seq,
                        properties,
                        changes,
                        by,
                    }));
                }
            }
            ServerFrame::Message {
                room,
                seq,
                from,
                scope,
                content_type,
                content,
            } => {
                let in_order = match seq {
                    Some(seq) => self.advance(&room, seq).is_some(),
                    None => self.room.as_ref().is_some_and(|r| r.room == room),
                };
                if in_order {
                    out.events.push(CallEvent::Message(MessageEvent::Received(
                        ReceivedMessage {
                            room,
                            seq,
                            from,
                            scope,
                            content_type,
                            content,
                        },
                    )));
                }
            }
            ServerFrame::CallEnded {
                room, seq, reason, ..
            } => {
                if self.advance(&room, seq).is_some() {
                    self.room = None;
                    out.events.push(CallEvent::Left {
                        room,
                        reason,
                        op: None,
                    });
                }
            }
            ServerFrame::RecordingStarted {
                room,
                seq,
                recording,
                recorder,
                by,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Started {
                            room,
                            seq,
                            recording,
                            recorder,
                            by,
                        }));
                }
            }
            ServerFrame::RecordingStopped {
                room,
                seq,
                recording,
                reason,
                files,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Stopped {
                            room,
                            seq,
                            recording,
                            reason,
                            files,
                        }));
                }
            }
            ServerFrame::RecordingAborted {
                room,
                seq,
                recording,
                recorder,
                reason,
                shut_down,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Aborted {
                            room,
                            seq,
                            recording,
                            shut_down,
                            recorder,
                            reason,
                        }));
                }
            }
            ServerFrame::RecordJob { job } => {
                out.events
                    .push(CallEvent::Recording(RecordingEvent::Job(job)));
            }
            ServerFrame::RecordStop { recording, reason } => {
                out.events
                    .push(CallEvent::Recording(RecordingEvent::StopAsked {
                        recording,
                        reason,
                    }));
            }
            // A goodbye that asks to reconnect is the shell's business (it resumes).
            ServerFrame::Goodbye { reason, reconnect } => {
                if !reconnect {
                    out.events.extend(self.closed(reason))
                }
            }
        }
        out
    }

    /// The server could not replay what this session missed: take its state as it is now.
    fn resynced(&mut self, resync: crate::protocol::Resync, out: &mut Handled) {
        self.last_n = resync.n;
        self.received = resync.invitations.into_iter().map(|i| (i.id, i)).collect();
        self.sent = resync
            .sent_invitations
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let snapshot = resync.room.map(|r| RoomSnapshot {
            room: r.room,
            seq: r.seq,
            me: self.me.clone(),
            participants: r.participants,
            properties: r.properties,
            publications: r.publications,
        });
        let old = std::mem::replace(&mut self.room, snapshot.clone());
        if let Some(old) = old
            && snapshot.as_ref().is_none_or(|s| s.room != old.room)
        {
            out.events.push(CallEvent::Left {
                room: old.room,
                reason: Reason::Network,
                op: None,
            });
        }
        out.events.push(CallEvent::Resynced {
            snapshot,
            missed: resync.missed,
        });
    }

    /// We are in a room: a join's answer, an accepted invitation, or an invite from outside a
    /// room that started a call.
    fn joined(&mut self, op: OperationId, snapshot: RoomSnapshot, out: &mut Handled) {
        if self.pending.get(&op).map(|p| p.kind) == Some(OperationKind::Rejoin) {
            self.pending.remove(&op);
            self.room = Some(snapshot.clone());
            out.events.push(CallEvent::Rejoined { snapshot });
            return;
        }
        if let Some(old) = self.room.take() {
            // Accepting an invitation during a call leaves that call.
            out.events.push(CallEvent::Left {
                room: old.room,
                reason: Reason::Quit,
                op: None,
            });
        }
        self.room = Some(snapshot.clone());
        out.events.push(CallEvent::Joined {
            op,
            result: Ok(snapshot.clone()),
        });
        match self.pending.get(&op).map(|p| p.kind) {
            // The invite's own answer (`invited`) follows.
            Some(OperationKind::Invite) => {}
            Some(OperationKind::AcceptInvite) => {
                let pending = self.pending.remove(&op);
                if let Some(id) = pending.and_then(|p| p.invitation) {
                    self.received.remove(&id);
                }
                out.events
                    .push(CallEvent::Invite(InviteEvent::AcceptResult {
                        op,
                        result: Ok(()),
                    }));
                out.outcomes.push((op, Ok(Outcome::Joined(snapshot))));
            }
            _ => {
                self.pending.remove(&op);
                out.outcomes.push((op, Ok(Outcome::Joined(snapshot))));
            }
        }
    }

    /// The outcome event of a request answered with `done` or `error`.
    fn finish(
        &mut self,
        op: OperationId,
        pending: Pending,
        result: Result<(), OpError>,
        seq: Option<u64>,
        out: &mut Handled,
    ) {
        // Joins, invites and accepts are answered with `joined` / `invited`; a `done` for them
        // is a server fault, reported as a failed operation rather than trusted.
        let result = match pending.kind {
            OperationKind::Join
            | OperationKind::Invite
            | OperationKind::AcceptInvite
            | OperationKind::ListBans => result.and_then(|()| Err(answered_with_done())),
            _ => result,
        };
        let invite = |event: fn(OperationId, Result<(), OpError>) -> InviteEvent| {
            CallEvent::Invite(event(op, result.clone()))
        };
        let event = match pending.kind {
            OperationKind::Join => CallEvent::Joined {
                op,
                result: result.clone().and_then(|()| Err(answered_with_done())),
            },
            OperationKind::Leave if result.is_ok() => {
                let room = self
                    .room
                    .take()
                    .map(|r| r.room)
                    .unwrap_or_else(|| RoomId::from(""));
                CallEvent::Left {
                    room,
                    reason: Reason::Quit,
                    op: Some(op),
                }
            }
            OperationKind::SendMessage => CallEvent::Message(MessageEvent::Sent {
                op,
                seq,
                result: result.clone(),
            }),
            OperationKind::ListBans => CallEvent::Bans {
                op,
                result: result.clone().and_then(|()| Err(answered_with_done())),
            },
            OperationKind::Invite => CallEvent::Invite(InviteEvent::Sent {
                op,
                result: result.clone().and_then(|()| Err(answered_with_done())),
            }),
            OperationKind::CancelInvite => {
                if result.is_ok()
                    && let Some(id) = pending.invitation
                {
                    self.sent.remove(&id);
                }
                invite(|op, result| InviteEvent::CancelResult { op, result })
            }
            OperationKind::AcceptInvite => {
                invite(|op, result| InviteEvent::AcceptResult { op, result })
            }
            OperationKind::RejectInvite => {
                if result.is_ok()
                    && let Some(id) = pending.invitation
                {
                    self.received.remove(&id);
                }
                invite(|op, result| InviteEvent::RejectResult { op, result })
            }
            OperationKind::Rejoin => {
                // The join again was refused (the room is full, the token expired…): out.
                if let Some(room) = self.room.take() {
                    out.events.push(CallEvent::Left {
                        room: room.room,
                        reason: Reason::Network,
                        op: None,
                    });
                }
                if let Err(error) = result {
                    out.events.push(CallEvent::ServerError(error));
                }
                return;
            }
            OperationKind::Negotiate => {
                // Internal and awaited by no one: only a failure is worth telling the
                // application, and no outcome is kept (it would crowd out the application's).
                if let Err(error) = result {
                    out.events.push(CallEvent::ServerError(error));
                }
                return;
            }
            kind => CallEvent::Completed {
                op,
                kind,
                result: result.clone(),
            },
        };
        out.events.push(event);
        if let Some(event) = self.tracks.request_done(op, result.is_ok()) {
            out.events.push(event);
        }
        out.outcomes.push((op, result.map(|()| Outcome::Done)));
    }

    /// The connection is gone: the final events of the call.
    pub(crate) fn closed(&mut self, reason: Reason) -> Option<CallEvent> {
        self.received.clear();
        self.sent.clear();
        self.room.take().map(|room| CallEvent::Left {
            room: room.room,
            reason,
            op: None,
        })
    }

    /// Accepts room event number `seq` of `room`: the current room's view, moved on to `seq`, or
    /// `None` for an event of a room this session is not in.
    fn advance(&mut self, room: &RoomId, seq: u64) -> Option<&mut RoomSnapshot> {
        let snap = self.room.as_mut().filter(|snap| &snap.room == room)?;
        if seq <= snap.seq {
            // Taken already (a replay that overlaps what had arrived).
            self.duplicates += 1;
            return None;
        }
        if seq != snap.seq + 1 {
            self.seq_faults += 1;
            tracing::warn!(room = %room, expected = snap.seq + 1, got = seq, "room event out of sequence");
        }
        snap.seq = seq;
        Some(snap)
    }
}

/// The error for a join, invite or accept that the server answered with `done`.
fn answered_with_done() -> OpError {
    OpError {
        code: crate::protocol::ErrorCode::Unknown,
        message: "the server answered with `done` where a room or report was due".into(),
    }
}

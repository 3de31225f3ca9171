//! The client's session core: turns server frames into [`CallEvent`]s and operation outcomes,
//! and keeps the room view and the open invitations. Sans-IO: the driver (`call/driver.rs`)
//! feeds it frames and the call hands its events to subscribers. This file holds the session's
//! state, its requests and the frames about the session itself (answers, resume, goodbye); the
//! other frames are taken by area, as the server's core is split: `media.rs`, `invites.rs`,
//! `room.rs`, `recording.rs`; `outcomes.rs` settles each request's one outcome.

use std::collections::{BTreeMap, HashMap};

use crate::event::{CallEvent, InviteEvent, OpError, OperationKind, Outcome, RoomSnapshot};
use crate::model::{Invitation, InvitationId, OperationId, Reason, RoomId, TrackSource, UserId};
use crate::protocol::{ClientFrame, ServerFrame};

use super::tracks::{TrackBook, TrackChanges};

mod invites;
mod media;
mod outcomes;
mod recording;
mod room;

/// One area's handler: takes the frames of its area (`None`), gives the others back.
type Area = fn(&mut Session, ServerFrame, &mut Handled) -> Option<ServerFrame>;

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
    /// The call's own negotiation requests the server refused (they have no outcome).
    pub(crate) failed_negotiations: Vec<(OperationId, OpError)>,
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
    /// Send only these simulcast streams of the call's track of `source` (dynacast).
    Layers {
        source: TrackSource,
        rids: Vec<String>,
    },
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
        // While the room is joined again on a new session, the view kept is the old session's:
        // the new one has taken nothing of any room yet.
        let rejoining = self
            .pending
            .values()
            .any(|p| p.kind == OperationKind::Rejoin);
        let room = self.room.as_ref().filter(|_| !rejoining);
        Taken {
            received: self.last_n,
            room: room.map(|r| r.room.clone()),
            seq: room.map(|r| r.seq),
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

    /// The call ended for `reason` with requests unanswered: each fails with `session_lost`
    /// (whether it took effect is unknown), so every request has its one outcome.
    pub(crate) fn ended(&mut self, reason: Reason) -> Handled {
        let mut out = Handled::default();
        let mut ops: Vec<_> = self.pending.keys().copied().collect();
        ops.sort();
        for op in ops {
            if let Some(pending) = self.pending.remove(&op)
                && !matches!(
                    pending.kind,
                    OperationKind::Negotiate | OperationKind::Rejoin
                )
            {
                let error = OpError {
                    code: crate::protocol::ErrorCode::SessionLost,
                    message: format!("the call closed ({reason})"),
                };
                self.finish(op, pending, Err(error), None, &mut out);
            }
        }
        out
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
    #[cfg(any(test, feature = "internals"))]
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
            ServerFrame::Done { op, seq } => match self.pending.remove(&op) {
                Some(pending) => {
                    // A group message's own room event: the position moves past it.
                    if let Some(seq) = seq
                        && let Some(room) = self.room.as_ref().map(|r| r.room.clone())
                    {
                        self.advance(&room, seq);
                    }
                    self.finish(op, pending, Ok(()), seq, &mut out)
                }
                // An answer to no request moves nothing (the client contract's transcript 08).
                None => tracing::warn!(%op, "answer to an operation this call did not send"),
            },
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
                if self.pending.remove(&op).is_none() {
                    tracing::warn!(%op, "bans for an operation this call did not send");
                    return out;
                }
                out.events.push(CallEvent::Bans {
                    op,
                    result: Ok(bans.clone()),
                });
                out.outcomes.push((op, Ok(Outcome::Bans(bans))));
            }
            // A goodbye that asks to reconnect is the shell's business (it resumes).
            ServerFrame::Goodbye { reason, reconnect } => {
                if !reconnect {
                    out.events.extend(self.closed(reason))
                }
            }
            // The other frames, by area (media, invitations, the room, recordings).
            frame => {
                let areas: [Area; 4] = [
                    Session::media_frame,
                    Session::invite_frame,
                    Session::room_frame,
                    Session::recording_frame,
                ];
                let mut frame = Some(frame);
                for area in areas {
                    frame = match frame {
                        Some(f) => area(self, f, &mut out),
                        None => break,
                    };
                }
                if let Some(frame) = frame {
                    tracing::warn!(?frame, "a server frame the client does not handle");
                }
            }
        }
        out
    }
}

//! The client's core: turns server frames into [`CallEvent`]s and keeps the room view. Sans-IO:
//! the async shell in `call/mod.rs` feeds it frames and hands its events to subscribers.

use std::collections::HashMap;

use crate::event::{
    CallEvent, MessageEvent, OpError, OperationKind, ParticipantEvent, PropertyEvent,
    ReceivedMessage, RoomSnapshot,
};
use crate::model::{OperationId, Reason, RoomId, UserId};
use crate::protocol::{ClientFrame, ServerFrame};

/// One logged-in user's view of its call.
#[derive(Debug)]
pub(crate) struct Session {
    me: UserId,
    next_op: u64,
    pending: HashMap<OperationId, OperationKind>,
    room: Option<RoomSnapshot>,
    /// Room sequence numbers that arrived out of order (a server fault; counted, never hidden).
    seq_faults: u64,
}

impl Session {
    pub(crate) fn new(me: UserId) -> Self {
        Session {
            me,
            next_op: 0,
            pending: HashMap::new(),
            room: None,
            seq_faults: 0,
        }
    }

    /// The room as this session sees it now.
    pub(crate) fn room(&self) -> Option<&RoomSnapshot> {
        self.room.as_ref()
    }

    /// Room events that broke the sequence so far (always 0 with a correct server).
    #[cfg(test)]
    pub(crate) fn seq_faults(&self) -> u64 {
        self.seq_faults
    }

    /// Allocates an operation id, remembers its kind, and builds its frame.
    pub(crate) fn request(
        &mut self,
        kind: OperationKind,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) -> (OperationId, ClientFrame) {
        self.next_op += 1;
        let op = OperationId(self.next_op);
        self.pending.insert(op, kind);
        (op, frame(op))
    }

    /// Forgets a request that could not be sent.
    pub(crate) fn forget(&mut self, op: OperationId) {
        self.pending.remove(&op);
    }

    /// Ops still waiting for an answer.
    pub(crate) fn pending(&self) -> impl Iterator<Item = OperationId> + '_ {
        self.pending.keys().copied()
    }

    /// Takes one server frame; returns the events it makes, in order.
    pub(crate) fn handle(&mut self, frame: ServerFrame) -> Vec<CallEvent> {
        let mut events = Vec::new();
        match frame {
            ServerFrame::Welcome { .. } => {}
            ServerFrame::Joined {
                op,
                room,
                seq,
                participants,
                properties,
            } => {
                self.pending.remove(&op);
                let snapshot = RoomSnapshot {
                    room,
                    seq,
                    me: self.me.clone(),
                    participants,
                    properties,
                };
                self.room = Some(snapshot.clone());
                events.push(CallEvent::Joined {
                    op,
                    result: Ok(snapshot),
                });
            }
            ServerFrame::Done { op, seq } => {
                if let Some(seq) = seq
                    && let Some(room) = self.room.as_ref().map(|r| r.room.clone())
                {
                    self.advance(&room, seq);
                }
                match self.pending.remove(&op) {
                    Some(kind) => events.push(self.outcome(op, kind, Ok(()))),
                    None => tracing::warn!(%op, "answer to an operation this call did not send"),
                }
            }
            ServerFrame::Error { op, code, message } => {
                let error = OpError { code, message };
                match op.and_then(|op| self.pending.remove(&op).map(|k| (op, k))) {
                    Some((op, OperationKind::Join)) => events.push(CallEvent::Joined {
                        op,
                        result: Err(error),
                    }),
                    Some((op, kind)) => events.push(self.outcome(op, kind, Err(error))),
                    None => events.push(CallEvent::ServerError(error)),
                }
            }
            ServerFrame::ParticipantJoined {
                room,
                seq,
                participant,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.participants.push(participant.clone());
                    events.push(CallEvent::Participant(ParticipantEvent::Joined {
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
                        events.push(CallEvent::Left {
                            room,
                            reason,
                            op: None,
                        });
                    } else {
                        snap.participants
                            .retain(|p| p.user_id != participant.user_id);
                        events.push(CallEvent::Participant(ParticipantEvent::Left {
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
                    events.push(CallEvent::Participant(ParticipantEvent::Updated {
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
                    events.push(CallEvent::Property(PropertyEvent::Changed {
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
                    events.push(CallEvent::Message(MessageEvent::Received(
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
            ServerFrame::CallEnded { room, seq, .. } => {
                if self.advance(&room, seq).is_some() {
                    self.room = None;
                    events.push(CallEvent::Left {
                        room,
                        reason: Reason::Over,
                        op: None,
                    });
                }
            }
            ServerFrame::Goodbye { reason } => events.extend(self.closed(reason)),
        }
        events
    }

    /// The connection is gone: the final events of the call.
    pub(crate) fn closed(&mut self, reason: Reason) -> Option<CallEvent> {
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
        if seq != snap.seq + 1 {
            self.seq_faults += 1;
            tracing::warn!(room = %room, expected = snap.seq + 1, got = seq, "room event out of sequence");
        }
        snap.seq = seq;
        Some(snap)
    }

    fn outcome(
        &mut self,
        op: OperationId,
        kind: OperationKind,
        result: Result<(), OpError>,
    ) -> CallEvent {
        match (kind, result) {
            (OperationKind::Leave, Ok(())) => {
                let room = self
                    .room
                    .take()
                    .map(|r| r.room)
                    .unwrap_or_else(|| RoomId(String::new()));
                CallEvent::Left {
                    room,
                    reason: Reason::Quit,
                    op: Some(op),
                }
            }
            (OperationKind::SendMessage, result) => {
                CallEvent::Message(MessageEvent::Sent { op, result })
            }
            (kind, result) => CallEvent::Completed { op, kind, result },
        }
    }
}

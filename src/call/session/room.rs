//! Room frames: members, properties, messages, the call's end; joining, a resync, the room's sequence.

use crate::event::{
    CallEvent, InviteEvent, MessageEvent, OperationKind, Outcome, ParticipantEvent, PropertyEvent,
    ReceivedMessage, RoomSnapshot,
};
use crate::model::{OperationId, Reason, RoomId};
use crate::protocol::ServerFrame;

use super::{Handled, Session};

impl Session {
    /// Takes `frame` if it is one of this area's: `None` then, else the frame back.
    pub(super) fn room_frame(
        &mut self,
        frame: ServerFrame,
        out: &mut Handled,
    ) -> Option<ServerFrame> {
        match frame {
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
            other => return Some(other),
        }
        None
    }

    /// The server could not replay what this session missed: take its state as it is now.
    pub(super) fn resynced(&mut self, resync: crate::protocol::Resync, out: &mut Handled) {
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
    pub(super) fn joined(&mut self, op: OperationId, snapshot: RoomSnapshot, out: &mut Handled) {
        if !self.pending.contains_key(&op) {
            // No request of this call: it changes nothing (the client contract's transcript 08).
            tracing::warn!(%op, "a joined for an operation this call did not send");
            return;
        }
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
    pub(super) fn advance(&mut self, room: &RoomId, seq: u64) -> Option<&mut RoomSnapshot> {
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

//! Answers to this call's requests: each operation's one outcome.

use crate::event::{CallEvent, InviteEvent, MessageEvent, OpError, OperationKind, Outcome};
use crate::model::{OperationId, Reason, RoomId};

use super::{Handled, Pending, Session};

impl Session {
    /// The outcome event of a request answered with `done` or `error`.
    pub(super) fn finish(
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
                    out.failed_negotiations.push((op, error.clone()));
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
}

/// The error for a join, invite or accept that the server answered with `done`.
pub(super) fn answered_with_done() -> OpError {
    OpError {
        code: crate::protocol::ErrorCode::Unknown,
        message: "the server answered with `done` where a room or report was due".into(),
    }
}

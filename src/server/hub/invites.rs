//! Invitations: invite, cancel, accept, reject, expiry. Sans-IO like the rest of the core: the
//! hub's clock (`Hub::now`) is what the shell last told it, and expiry happens on `Input::Tick`.
//!
//! Every invitation ends exactly once, and both sides hear how: accepted, rejected (declined or
//! busy), canceled by its caller, unanswered (`no_response`), or canceled because its caller left
//! the call (`quit`, `network`, `kicked`, `over`).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::{
    Invitation, InvitationId, InviteFailure, MAX_INVITE_CALLEES, MAX_INVITE_EXTRA_LEN,
    MAX_INVITE_TIMEOUT_MS, OperationId, Participant, Reason, Rejection, UserId, valid_id,
};
use crate::protocol::{ErrorCode, ServerFrame};

use super::Hub;
use super::io::{Emit, Millis, Refusal, SessionId, refuse};

struct Open {
    invitation: Invitation,
    caller_conn: SessionId,
    deadline: Millis,
}

/// The open invitations, with an index of their deadlines.
#[derive(Default)]
pub(crate) struct InvitationBook {
    open: HashMap<InvitationId, Open>,
    deadlines: BTreeSet<(Millis, InvitationId)>,
    next_id: u64,
}

impl InvitationBook {
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Open invitations for `user`, oldest first.
    pub(crate) fn for_callee(&self, user: &UserId) -> Vec<Invitation> {
        let mut found: Vec<_> = self
            .open
            .values()
            .filter(|o| &o.invitation.callee == user)
            .map(|o| o.invitation.clone())
            .collect();
        found.sort_by_key(|i| i.id);
        found
    }

    /// Every open invitation with its caller's connection.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn list(&self) -> Vec<(Invitation, SessionId)> {
        self.open
            .values()
            .map(|o| (o.invitation.clone(), o.caller_conn))
            .collect()
    }

    fn is_open(&self, room: &crate::model::RoomId, callee: &UserId) -> bool {
        self.open
            .values()
            .any(|o| &o.invitation.room == room && &o.invitation.callee == callee)
    }

    fn add(
        &mut self,
        mut invitation: Invitation,
        caller_conn: SessionId,
        now: Millis,
    ) -> Invitation {
        self.next_id += 1;
        invitation.id = InvitationId(self.next_id);
        let deadline = now.saturating_add(invitation.timeout_ms);
        self.deadlines.insert((deadline, invitation.id));
        self.open.insert(
            invitation.id,
            Open {
                invitation: invitation.clone(),
                caller_conn,
                deadline,
            },
        );
        invitation
    }

    fn get(&self, id: InvitationId) -> Result<&Open, Refusal> {
        self.open.get(&id).ok_or_else(|| {
            Refusal::new(
                ErrorCode::NoSuchInvitation,
                format!("{id} was answered, canceled or has expired (or never existed)"),
            )
        })
    }

    fn remove(&mut self, id: InvitationId) -> Option<Open> {
        let open = self.open.remove(&id)?;
        self.deadlines.remove(&(open.deadline, id));
        Some(open)
    }

    fn of_caller(&self, conn: SessionId) -> Vec<InvitationId> {
        let mut ids: Vec<_> = self
            .open
            .values()
            .filter(|o| o.caller_conn == conn)
            .map(|o| o.invitation.id)
            .collect();
        ids.sort();
        ids
    }

    /// Open invitations made by `conn`, oldest first.
    pub(crate) fn sent_by(&self, conn: SessionId) -> Vec<Invitation> {
        self.of_caller(conn)
            .into_iter()
            .filter_map(|id| self.open.get(&id).map(|o| o.invitation.clone()))
            .collect()
    }

    fn due(&mut self, now: Millis) -> Vec<Open> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            due.extend(self.remove(id));
        }
        due
    }
}

impl Hub {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn invite(
        &mut self,
        conn: SessionId,
        op: OperationId,
        callees: Vec<UserId>,
        video: bool,
        extra: String,
        timeout_ms: Option<u64>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = &self.sessions[&conn];
        if login.room.is_none() {
            // Starting a call makes a server-named room.
            login.may_enter(None)?;
        }
        if callees.is_empty() || callees.len() > MAX_INVITE_CALLEES {
            return refuse(ErrorCode::InvalidParam, "invite 1 to 16 callees");
        }
        let mut seen = HashSet::new();
        for callee in &callees {
            if !valid_id(callee.as_str()) {
                return refuse(
                    ErrorCode::InvalidParam,
                    format!("`{callee}` is not a valid user id"),
                );
            }
            if !seen.insert(callee) {
                return refuse(
                    ErrorCode::InvalidParam,
                    format!("`{callee}` is named twice"),
                );
            }
            if callee == login.user() {
                return refuse(ErrorCode::InvalidParam, "you cannot invite yourself");
            }
        }
        if extra.len() > MAX_INVITE_EXTRA_LEN {
            return refuse(ErrorCode::InvalidParam, "extra is larger than 1 KiB");
        }
        let timeout_ms = timeout_ms.unwrap_or(self.config.invite_timeout_ms);
        if timeout_ms == 0 || timeout_ms > MAX_INVITE_TIMEOUT_MS {
            return refuse(ErrorCode::InvalidParam, "timeout_ms must be 1 to 600000");
        }
        if let Some(room_id) = &login.room {
            let room = &self.rooms[room_id];
            for callee in &callees {
                if room.has_user(callee) {
                    return refuse(
                        ErrorCode::AlreadyInRoom,
                        format!("`{callee}` is in the room"),
                    );
                }
                if self.invitations.is_open(room_id, callee) {
                    return refuse(
                        ErrorCode::AlreadyInvited,
                        format!("`{callee}` already has an open invitation to this room"),
                    );
                }
            }
        }

        // Who can be reached.
        let mut failed = Vec::new();
        let mut reachable = Vec::new();
        for callee in callees {
            let conns = self.sessions.of_user(&callee);
            let busy = conns.iter().any(|c| self.sessions[c].room.is_some());
            if conns.is_empty() && !self.config.hold_offline_invitations {
                failed.push(InviteFailure {
                    user_id: callee,
                    reason: Reason::Offline,
                });
            } else if busy && self.config.auto_reject_busy {
                failed.push(InviteFailure {
                    user_id: callee,
                    reason: Reason::Busy,
                });
            } else {
                let name = conns
                    .first()
                    .map(|c| self.sessions[c].identity.name.clone())
                    .unwrap_or_else(|| callee.to_string());
                reachable.push((callee, name));
            }
        }

        // Outside a room, an invite that reaches someone starts a call: the caller joins a new room.
        let room = match self.sessions[&conn].room.clone() {
            Some(room) => Some(room),
            None if reachable.is_empty() => None,
            None => {
                let caller = Participant {
                    video,
                    ..self.sessions[&conn].participant(None)
                };
                self.join(conn, op, None, caller, true, out)?;
                self.sessions[&conn].room.clone()
            }
        };

        let mut invitations = Vec::new();
        if let Some(room) = &room {
            let login = &self.sessions[&conn];
            let (caller, caller_name) = (login.user().clone(), login.identity.name.clone());
            for (callee, callee_name) in reachable {
                let invitation = self.invitations.add(
                    Invitation {
                        id: InvitationId(0),
                        room: room.clone(),
                        caller: caller.clone(),
                        caller_name: caller_name.clone(),
                        callee,
                        callee_name,
                        video,
                        extra: extra.clone(),
                        timeout_ms,
                    },
                    conn,
                    self.now,
                );
                self.to_user(
                    &invitation.callee,
                    ServerFrame::InviteReceived {
                        invitation: invitation.clone(),
                    },
                    out,
                );
                invitations.push(invitation);
            }
        }
        self.counted.invitations_sent += invitations.len() as u64;
        out.push(Emit::Send {
            to: conn,
            frame: ServerFrame::Invited {
                op,
                room,
                invitations,
                failed,
            },
        });
        Ok(())
    }

    pub(super) fn cancel_invite(
        &mut self,
        conn: SessionId,
        id: InvitationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        if self.invitations.get(id)?.caller_conn != conn {
            return refuse(
                ErrorCode::NotInvited,
                format!("{id} was made by someone else"),
            );
        }
        let open = self.invitations.remove(id).expect("checked above");
        self.to_user(
            &open.invitation.callee.clone(),
            ServerFrame::InviteCanceled {
                invitation: open.invitation,
                reason: Reason::Canceled,
            },
            out,
        );
        Ok(())
    }

    /// Checks that `conn` may answer invitation `id`, and takes it out of the book.
    fn answer(&mut self, conn: SessionId, id: InvitationId) -> Result<Open, Refusal> {
        let open = self.invitations.get(id)?;
        if &open.invitation.callee != self.sessions[&conn].user() {
            return refuse(ErrorCode::NotInvited, format!("{id} is for someone else"));
        }
        Ok(self.invitations.remove(id).expect("checked above"))
    }

    /// Tells the callee's other devices that this one answered.
    fn tell_other_devices(
        &self,
        conn: SessionId,
        open: &Open,
        reason: Reason,
        out: &mut Vec<Emit>,
    ) {
        let others: Vec<SessionId> = self
            .sessions
            .of_user(&open.invitation.callee)
            .iter()
            .copied()
            .filter(|c| *c != conn)
            .collect();
        if !others.is_empty() {
            out.push(Emit::Broadcast {
                to: others,
                frame: std::sync::Arc::new(ServerFrame::InviteCanceled {
                    invitation: open.invitation.clone(),
                    reason,
                }),
            });
        }
    }

    pub(super) fn accept_invite(
        &mut self,
        conn: SessionId,
        op: OperationId,
        id: InvitationId,
        video: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let open = self.invitations.get(id)?;
        let room = open.invitation.room.clone();
        let login = &self.sessions[&conn];
        let user = login.user().clone();
        if open.invitation.callee == user {
            login.may_enter(Some(&room))?;
            if self.rooms.get(&room).is_some_and(|r| r.has_user(&user)) {
                return refuse(
                    ErrorCode::AlreadyInRoom,
                    format!("you are in room `{room}` already"),
                );
            }
            // What the join below would refuse, refused before the invitation is answered.
            self.may_join(conn, &room)?;
        }
        let open = self.answer(conn, id)?;
        // Accepting while in another call leaves that call.
        self.leave_room(conn, Reason::Quit, out);
        let participant = Participant {
            video,
            ..self.sessions[&conn].participant(None)
        };
        self.join(conn, op, Some(room), participant, true, out)?;
        out.push(Emit::Send {
            to: open.caller_conn,
            frame: ServerFrame::InviteAccepted {
                invitation: open.invitation.clone(),
            },
        });
        self.tell_other_devices(conn, &open, Reason::AcceptedElsewhere, out);
        Ok(())
    }

    pub(super) fn reject_invite(
        &mut self,
        conn: SessionId,
        id: InvitationId,
        rejection: Rejection,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let open = self.answer(conn, id)?;
        out.push(Emit::Send {
            to: open.caller_conn,
            frame: ServerFrame::InviteRejected {
                invitation: open.invitation.clone(),
                reason: rejection.reason(),
            },
        });
        self.tell_other_devices(conn, &open, Reason::RejectedElsewhere, out);
        Ok(())
    }

    /// The connection `conn` left its call: the invitations it made end. The callees are told
    /// why; so is the caller, when it is still connected to hear it.
    pub(super) fn caller_left(
        &mut self,
        conn: SessionId,
        reason: Reason,
        tell_caller: bool,
        out: &mut Vec<Emit>,
    ) {
        for id in self.invitations.of_caller(conn) {
            let open = self.invitations.remove(id).expect("listed just now");
            let callee = open.invitation.callee.clone();
            let frame = ServerFrame::InviteCanceled {
                invitation: open.invitation,
                reason,
            };
            if tell_caller {
                out.push(Emit::Send {
                    to: conn,
                    frame: frame.clone(),
                });
            }
            self.to_user(&callee, frame, out);
        }
    }

    /// Ends the invitations whose time ran out: `no_response` on both sides.
    pub(super) fn expire_invitations(&mut self, out: &mut Vec<Emit>) {
        for open in self.invitations.due(self.now) {
            out.push(Emit::Send {
                to: open.caller_conn,
                frame: ServerFrame::InviteRejected {
                    invitation: open.invitation.clone(),
                    reason: Reason::NoResponse,
                },
            });
            let callee = open.invitation.callee.clone();
            self.to_user(
                &callee,
                ServerFrame::InviteCanceled {
                    invitation: open.invitation,
                    reason: Reason::NoResponse,
                },
                out,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConnId, Input, Output, testing};
    use super::*;
    use crate::protocol::ClientFrame;

    fn hub() -> Hub {
        Hub::new(testing::config())
    }

    fn send(hub: &mut Hub, now: Millis, conn: ConnId, frame: ClientFrame) -> Vec<Output> {
        hub.handle(now, Input::Frame { conn, frame })
    }

    fn hello(hub: &mut Hub, conn: ConnId, user: &str) {
        send(hub, 0, conn, testing::hello(user));
    }

    /// The (connection, frame type, reason) of every frame sent.
    fn sent(out: &[Output]) -> Vec<(ConnId, String, Option<Reason>)> {
        let mut all = Vec::new();
        for o in out {
            let (to, frame) = match o {
                Output::Send { to, frame } => (vec![*to], frame),
                Output::Broadcast { to, frame } => (to.clone(), &**frame),
                Output::Deliver { to, frame, .. } => (vec![*to], &**frame),
                Output::Close { .. }
                | Output::Media(_)
                | Output::StartRecorder
                | Output::Notice(_) => continue,
            };
            let value = serde_json::to_value(frame).unwrap();
            let reason = value
                .get("reason")
                .and_then(|r| serde_json::from_value(r.clone()).ok());
            for conn in to {
                all.push((conn, value["type"].as_str().unwrap().to_owned(), reason));
            }
        }
        all
    }

    #[test]
    fn an_invitation_expires_exactly_at_its_deadline_on_the_core_clock() {
        let mut hub = hub();
        hello(&mut hub, 1, "alice");
        hello(&mut hub, 2, "bob");
        hello(&mut hub, 3, "bob");
        let out = send(
            &mut hub,
            1_000,
            1,
            ClientFrame::Invite {
                op: OperationId(1),
                callees: vec!["bob".into()],
                video: false,
                extra: String::new(),
                timeout_ms: Some(5_000),
            },
        );
        let types: Vec<_> = sent(&out).into_iter().map(|(c, t, _)| (c, t)).collect();
        assert_eq!(
            types,
            [
                (1, "joined".to_owned()),
                (2, "invite_received".to_owned()),
                (3, "invite_received".to_owned()),
                (1, "invited".to_owned())
            ]
        );
        assert_eq!(hub.invitations.next_deadline(), Some(6_000));
        assert!(hub.handle(5_999, Input::Tick).is_empty(), "not yet");
        let out = hub.handle(6_000, Input::Tick);
        assert_eq!(
            sent(&out),
            [
                (1, "invite_rejected".to_owned(), Some(Reason::NoResponse)),
                (2, "invite_canceled".to_owned(), Some(Reason::NoResponse)),
                (3, "invite_canceled".to_owned(), Some(Reason::NoResponse)),
            ]
        );
        assert_eq!(hub.invitations.next_deadline(), None);
        assert!(hub.handle(60_000, Input::Tick).is_empty(), "it ends once");
    }

    #[test]
    fn the_server_default_timeout_applies_when_the_caller_names_none() {
        let mut hub = hub();
        hello(&mut hub, 1, "alice");
        hello(&mut hub, 2, "bob");
        send(
            &mut hub,
            500,
            1,
            ClientFrame::Invite {
                op: OperationId(1),
                callees: vec!["bob".into()],
                video: false,
                extra: String::new(),
                timeout_ms: None,
            },
        );
        assert_eq!(hub.invitations.next_deadline(), Some(30_500));
    }
}

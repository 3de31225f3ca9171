//! Requests that need a login: joining, invitations and their answers, a token's refresh and
//! revocation.
//! Each handler checks what its request needs and carries it out; `mod.rs` dispatches.
#![allow(clippy::too_many_arguments)] // a handler takes its frame's fields, one argument each

use crate::auth::Revocation;
use crate::model::{InvitationId, OperationId, Participant, Rejection, RoomId, UserId};
use crate::protocol::{ErrorCode, ServerFrame};

use super::super::Hub;
use super::super::io::{Emit, Refusal, SessionId, refuse};
use super::done;

impl Hub {
    /// `join`: see [`ClientFrame::Join`](crate::protocol::ClientFrame::Join).
    pub(super) fn join_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        room: Option<RoomId>,
        display_name: Option<String>,
        audio: bool,
        video: bool,
        state: String,
        auto_subscribe: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = self.login(conn)?;
        if let Some(current) = &login.room {
            return refuse(
                ErrorCode::AlreadyJoined,
                format!("already in room `{current}`"),
            );
        }
        login.may_enter(room.as_ref())?;
        let participant = Participant {
            audio,
            video,
            state,
            ..login.participant(display_name)
        };
        self.join(conn, op, room, participant, auto_subscribe, out)
    }

    /// `invite`: see [`ClientFrame::Invite`](crate::protocol::ClientFrame::Invite).
    pub(super) fn invite_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        callees: Vec<UserId>,
        video: bool,
        extra: String,
        timeout_ms: Option<u64>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.login(conn)?;
        self.invite(conn, op, callees, video, extra, timeout_ms, out)
    }

    /// `cancel_invite`: see [`ClientFrame::CancelInvite`](crate::protocol::ClientFrame::CancelInvite).
    pub(super) fn cancel_invite_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        invitation: InvitationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.login(conn)?;
        self.cancel_invite(conn, invitation, out)?;
        self.counted.invitations_canceled += 1;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `accept_invite`: see [`ClientFrame::AcceptInvite`](crate::protocol::ClientFrame::AcceptInvite).
    pub(super) fn accept_invite_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        invitation: InvitationId,
        video: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.login(conn)?;
        self.accept_invite(conn, op, invitation, video, out)?;
        self.counted.invitations_accepted += 1;
        Ok(())
    }

    /// `reject_invite`: see [`ClientFrame::RejectInvite`](crate::protocol::ClientFrame::RejectInvite).
    pub(super) fn reject_invite_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        invitation: InvitationId,
        reason: Rejection,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.login(conn)?;
        self.reject_invite(conn, invitation, reason, out)?;
        self.counted.invitations_rejected += 1;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `refresh`: see [`ClientFrame::Refresh`](crate::protocol::ClientFrame::Refresh).
    pub(super) fn refresh_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        token: String,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.login(conn)?;
        self.refresh(conn, op, &token, out)
    }

    /// `revoke`: see [`ClientFrame::Revoke`](crate::protocol::ClientFrame::Revoke).
    pub(super) fn revoke_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        jti: Option<String>,
        user_id: Option<UserId>,
        issued_before: Option<u64>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = self.login(conn)?;
        login.require(login.identity.grants.admin, "revoking tokens")?;
        let revocation = match (jti, user_id, issued_before) {
            (Some(jti), None, None) => Revocation::Token { jti },
            (None, Some(user_id), Some(issued_before)) => Revocation::User {
                user_id,
                issued_before,
            },
            _ => {
                return refuse(
                    ErrorCode::InvalidParam,
                    "give either jti, or user_id and issued_before",
                );
            }
        };
        // The answer goes first: the revocation may end the sender's own session, and
        // then straight to its connection (the session is gone when frames are routed).
        let transport = login.transport();
        let mut ended = Vec::new();
        self.revoke(revocation, &mut ended)?;
        match (self.sessions.contains(conn), transport) {
            (true, _) => out.push(done(conn, op, None)),
            (false, Some(transport)) => out.push(Emit::Deliver {
                to: transport,
                n: None,
                frame: std::sync::Arc::new(ServerFrame::Done { op, seq: None }),
            }),
            (false, None) => {}
        }
        out.append(&mut ended);
        Ok(())
    }
}

//! Requests about the room the sender is in: leaving, ending, moderation (kick, ban, roles), its
//! own state, properties, messages.
//! Each handler checks what its request needs and carries it out; `mod.rs` dispatches.

use crate::model::{BanTerm, OperationId, PropertyUpdate, Reason, Text, UserId};
use crate::protocol::{ErrorCode, ServerFrame};

use super::super::Hub;
use super::super::io::{Emit, Refusal, SessionId, refuse};
use super::{MESSAGE, MODERATE, done};

impl Hub {
    /// `leave`: see [`ClientFrame::Leave`](crate::protocol::ClientFrame::Leave).
    pub(super) fn leave_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.room_of_member(conn, None)?;
        self.leave_room(conn, Reason::Quit, out);
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `end`: see [`ClientFrame::End`](crate::protocol::ClientFrame::End).
    pub(super) fn end_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, Some(MODERATE))?;
        self.rooms[&room].require_host(conn, "end the call")?;
        let by = self.sessions[&conn].user().clone();
        self.end_room(&room, by, out);
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `kick`: see [`ClientFrame::Kick`](crate::protocol::ClientFrame::Kick).
    pub(super) fn kick_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        user_id: UserId,
        ban: Option<BanTerm>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = match ban {
            Some(_) => self.host_room(conn, "ban")?,
            None => self.room_of_member(conn, Some(MODERATE))?,
        };
        if self.rooms[&room].is_recorder(&user_id) {
            return refuse(
                ErrorCode::InvalidParam,
                "the recorder leaves when its recording stops: use stop_recording",
            );
        }
        if let Some(term) = ban {
            let by = self.sessions[&conn].user().clone();
            if by == user_id {
                return refuse(ErrorCode::InvalidParam, "a host cannot ban itself");
            }
            self.bans
                .check_room_for(&room, &user_id, term, &by, self.config.max_bans)?;
            self.bans.add(&room, &user_id, term, &by, self.now);
            if !self.rooms[&room].has_user(&user_id) {
                out.push(done(conn, op, None));
                return Ok(());
            }
        }
        let kicked = self.with_room(&room, |r, out| r.kick(conn, &user_id, out), out)?;
        self.set_room(kicked, None);
        self.caller_left(kicked, Reason::Kicked, true, out);
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `unban`: see [`ClientFrame::Unban`](crate::protocol::ClientFrame::Unban).
    pub(super) fn unban_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        user_id: UserId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.host_room(conn, "unban")?;
        if !self.bans.remove(&room, &user_id) {
            return refuse(
                ErrorCode::NotBanned,
                format!("`{user_id}` is not banned from room `{room}`"),
            );
        }
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `list_bans`: see [`ClientFrame::ListBans`](crate::protocol::ClientFrame::ListBans).
    pub(super) fn list_bans_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.host_room(conn, "list bans")?;
        let bans = self.bans.list(&room, self.now);
        out.push(Emit::Send {
            to: conn,
            frame: ServerFrame::Bans { op, room, bans },
        });
        Ok(())
    }

    /// `set_properties`: see [`ClientFrame::SetProperties`](crate::protocol::ClientFrame::SetProperties).
    pub(super) fn set_properties_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        update: PropertyUpdate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, None)?;
        let login = self.login(conn)?;
        let grants = login.identity.grants;
        let PropertyUpdate {
            screen_share,
            recording,
            custom,
        } = &update;
        login.require(grants.publish || screen_share.is_none(), "screen sharing")?;
        login.require(grants.record || recording.is_none(), "recording")?;
        if recording.is_some() {
            self.rooms[&room].require_host(conn, "record")?;
            return refuse(
                ErrorCode::InvalidParam,
                "the recording state follows the recorder: use start_recording and \
                 stop_recording",
            );
        }
        login.require(
            grants.set_properties || custom.is_empty(),
            "custom properties",
        )?;
        self.with_room(&room, |r, out| r.set_properties(conn, update, out), out)?;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `send_message`: see [`ClientFrame::SendMessage`](crate::protocol::ClientFrame::SendMessage).
    pub(super) fn send_message_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        to: Option<UserId>,
        content_type: Text,
        content: Text,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, Some(MESSAGE))?;
        let seq = self.with_room(
            &room,
            |r, out| r.message(conn, to.as_ref(), content_type, content, out),
            out,
        )?;
        self.counted.messages += 1;
        out.push(done(conn, op, seq));
        Ok(())
    }
}

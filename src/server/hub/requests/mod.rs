//! What each client frame asks of the core: [`Hub::frame`] has one arm per frame (no frame falls
//! through), each handing the frame's fields to its area's handler (`login.rs`, `room.rs`,
//! `media.rs`, `recording.rs`), sorted by what it needs: nothing (`hello`), a login (joining,
//! invitations), or a room and perhaps a grant (moderation, properties, messages, media).

use crate::auth::Grants;
use crate::model::{OperationId, RoomId};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame};

mod login;
mod media;
mod recording;
mod room;

use super::io::{Emit, Refusal, SessionId, refuse};
use super::room::Room;
use super::{Hub, Login};

/// A token grant a request needs, and how a refusal names it.
type Grant = (fn(&Grants) -> bool, &'static str);

const MODERATE: Grant = (
    |g| g.moderate,
    "moderating (kick, end, roles, muting others)",
);
const MESSAGE: Grant = (|g| g.message, "messages");
const PUBLISH: Grant = (|g| g.publish, "publishing media");
const RECORD: Grant = (|g| g.record, "recording");

impl Hub {
    /// Handles one decoded frame from `conn`.
    pub(super) fn frame(
        &mut self,
        conn: SessionId,
        frame: ClientFrame,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        match frame {
            // The session layer's own (`sessions.rs`), handled before a frame gets here.
            ClientFrame::Hello { .. } | ClientFrame::Resume { .. } | ClientFrame::Ping { .. } => {
                Ok(())
            }

            // A login is enough.
            ClientFrame::Join {
                op,
                room,
                display_name,
                audio,
                video,
                state,
                auto_subscribe,
            } => self.join_request(
                conn,
                op,
                room,
                display_name,
                audio,
                video,
                state,
                auto_subscribe,
                out,
            ),
            ClientFrame::Invite {
                op,
                callees,
                video,
                extra,
                timeout_ms,
            } => self.invite_request(conn, op, callees, video, extra, timeout_ms, out),
            ClientFrame::CancelInvite { op, invitation } => {
                self.cancel_invite_request(conn, op, invitation, out)
            }
            ClientFrame::AcceptInvite {
                op,
                invitation,
                video,
            } => self.accept_invite_request(conn, op, invitation, video, out),
            ClientFrame::RejectInvite {
                op,
                invitation,
                reason,
            } => self.reject_invite_request(conn, op, invitation, reason, out),

            ClientFrame::Refresh { op, token } => self.refresh_request(conn, op, token, out),
            ClientFrame::Revoke {
                op,
                jti,
                user_id,
                issued_before,
            } => self.revoke_request(conn, op, jti, user_id, issued_before, out),

            // The room: membership, moderation, properties, messages.
            ClientFrame::Leave { op } => self.leave_request(conn, op, out),
            ClientFrame::End { op } => self.end_request(conn, op, out),
            ClientFrame::Kick { op, user_id, ban } => {
                self.kick_request(conn, op, user_id, ban, out)
            }
            ClientFrame::Unban { op, user_id } => self.unban_request(conn, op, user_id, out),
            ClientFrame::ListBans { op } => self.list_bans_request(conn, op, out),
            ClientFrame::SetRole { op, user_id, role } => {
                let f = |r: &mut Room, out: &mut Vec<Emit>| r.set_role(conn, &user_id, role, out);
                self.in_room(conn, op, Some(MODERATE), f, out)
            }
            ClientFrame::Update { op, update } => {
                self.in_room(conn, op, None, |r, out| r.update(conn, update, out), out)
            }
            ClientFrame::SetProperties { op, update } => {
                self.set_properties_request(conn, op, update, out)
            }
            ClientFrame::SendMessage {
                op,
                to,
                content_type,
                content,
            } => self.send_message_request(conn, op, to, content_type, content, out),

            // Media: publishing, negotiating, receiving.
            ClientFrame::PublishOffer { op, sdp, source } => {
                self.publish_offer_request(conn, op, sdp, source, out)
            }
            ClientFrame::Unpublish { op, source } => {
                self.in_room(conn, op, None, |r, out| r.unpublish(conn, source, out), out)
            }
            ClientFrame::Mute {
                op,
                source,
                muted,
                user_id,
            } => self.mute_request(conn, op, source, muted, user_id, out),
            ClientFrame::SubscribeAnswer {
                op,
                negotiation,
                sdp,
            } => self.subscribe_answer_request(conn, op, negotiation, sdp, out),
            ClientFrame::IceCandidate {
                connection,
                candidate,
            } => self.ice_candidate_request(conn, connection, candidate, out),
            ClientFrame::MediaInterrupted { connection } => {
                self.media_interrupted_by(conn, connection, out)
            }
            ClientFrame::Subscribe { op, publication } => self.in_room(
                conn,
                op,
                None,
                |r, out| r.subscribe(conn, &publication, out),
                out,
            ),
            ClientFrame::Unsubscribe { op, publication } => {
                let f = |r: &mut Room, out: &mut Vec<Emit>| r.unsubscribe(conn, &publication, out);
                self.in_room(conn, op, None, f, out)
            }
            ClientFrame::RequestVideo {
                op,
                publication,
                width,
                height,
            } => {
                let size = crate::model::VideoSize::new(width, height);
                let f = |r: &mut Room, out: &mut Vec<Emit>| {
                    r.request_video(conn, &publication, size, out)
                };
                self.in_room(conn, op, None, f, out)
            }
            // Recording.
            ClientFrame::StartRecording { op, options } => {
                self.start_recording_request(conn, op, options, out)
            }
            ClientFrame::StopRecording { op } => self.stop_recording_request(conn, op, out),
            ClientFrame::RecorderReady { op } => self.recorder_ready_request(conn, op, out),
            ClientFrame::RecorderJoin { op, recording } => {
                self.recorder_join_request(conn, op, recording, out)
            }
            ClientFrame::RecordingReport { recording, report } => {
                self.recording_report_request(conn, recording, report, out)
            }
        }
    }

    /// A request the member's room carries out with nothing else to check: the member is in a
    /// room (with `grant`, if one is needed), the room does `f`, and the answer is `done`.
    fn in_room(
        &mut self,
        conn: SessionId,
        op: OperationId,
        grant: Option<Grant>,
        f: impl FnOnce(&mut Room, &mut Vec<Emit>) -> Result<(), Refusal>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, grant)?;
        self.with_room(&room, f, out)?;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `conn`'s login, or a refusal.
    fn login(&self, conn: SessionId) -> Result<&Login, Refusal> {
        self.sessions
            .get(conn)
            .ok_or_else(|| Refusal::new(ErrorCode::NotLoggedIn, "send hello first"))
    }

    /// The room `conn` hosts with the `moderate` grant (bans), or a refusal.
    fn host_room(&self, conn: SessionId, what: &str) -> Result<RoomId, Refusal> {
        let room = self.room_of_member(conn, Some(MODERATE))?;
        self.rooms[&room].require_host(conn, what)?;
        Ok(room)
    }

    /// The room `conn` is in, checking `grant` if the request needs one.
    pub(super) fn room_of_member(
        &self,
        conn: SessionId,
        grant: Option<Grant>,
    ) -> Result<RoomId, Refusal> {
        let login = self.login(conn)?;
        let Some(room) = login.room.clone() else {
            return refuse(ErrorCode::NotInRoom, "join a room first");
        };
        if let Some((granted, what)) = grant {
            login.require(granted(&login.identity.grants), what)?;
        }
        Ok(room)
    }
}

/// The `done` answer to request `op` of `conn` (with the room event's `seq` it made, if any).
fn done(conn: SessionId, op: OperationId, seq: Option<u64>) -> Emit {
    Emit::Send {
        to: conn,
        frame: ServerFrame::Done { op, seq },
    }
}

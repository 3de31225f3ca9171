//! What each client frame asks of the core, one arm per frame (no frame falls through), sorted
//! by what it needs: nothing (`hello`), a login (joining, invitations), or a room and perhaps a
//! grant (moderation, properties, messages, media).

use crate::auth::{Grants, Revocation};
use crate::model::{OperationId, Participant, PropertyUpdate, Reason, Role, RoomId};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::io::{ConnId, Output, Refusal, refuse};
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
        conn: ConnId,
        frame: ClientFrame,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let done = |op: OperationId, seq: Option<u64>| Output::Send {
            to: conn,
            frame: ServerFrame::Done { op, seq },
        };
        match frame {
            ClientFrame::Hello { version, token } => self.hello(conn, version, &token, out),
            // The session layer's own (`sessions.rs`), handled before a frame gets here.
            ClientFrame::Resume { .. } | ClientFrame::Ping { .. } => Ok(()),

            // A login is enough.
            ClientFrame::Join {
                op,
                room,
                display_name,
                audio,
                video,
                state,
                auto_subscribe,
            } => {
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
            ClientFrame::Invite {
                op,
                callees,
                video,
                extra,
                timeout_ms,
            } => {
                self.login(conn)?;
                self.invite(conn, op, callees, video, extra, timeout_ms, out)
            }
            ClientFrame::CancelInvite { op, invitation } => {
                self.login(conn)?;
                self.cancel_invite(conn, invitation, out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::AcceptInvite {
                op,
                invitation,
                video,
            } => {
                self.login(conn)?;
                self.accept_invite(conn, op, invitation, video, out)
            }
            ClientFrame::RejectInvite {
                op,
                invitation,
                reason,
            } => {
                self.login(conn)?;
                self.reject_invite(conn, invitation, reason, out)?;
                out.push(done(op, None));
                Ok(())
            }

            ClientFrame::Refresh { op, token } => {
                self.login(conn)?;
                self.refresh(conn, op, &token, out)
            }
            ClientFrame::Revoke {
                op,
                jti,
                user_id,
                issued_before,
            } => {
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
                    (true, _) => out.push(done(op, None)),
                    (false, Some(transport)) => out.push(Output::Deliver {
                        to: transport,
                        n: None,
                        frame: std::sync::Arc::new(ServerFrame::Done { op, seq: None }),
                    }),
                    (false, None) => {}
                }
                out.append(&mut ended);
                Ok(())
            }

            // The room: membership, moderation, properties, messages.
            ClientFrame::Leave { op } => {
                self.room_of_member(conn, None)?;
                self.leave_room(conn, Reason::Quit, out);
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::End { op } => {
                let room = self.room_of_member(conn, Some(MODERATE))?;
                self.rooms[&room].require_host(conn, "end the call")?;
                let by = self.sessions[&conn].user().clone();
                self.end_room(&room, by, out);
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Kick { op, user_id, ban } => {
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
                        out.push(done(op, None));
                        return Ok(());
                    }
                }
                let kicked = self.with_room(&room, |r, out| r.kick(conn, &user_id, out), out)?;
                self.set_room(kicked, None);
                self.caller_left(kicked, Reason::Kicked, true, out);
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Unban { op, user_id } => {
                let room = self.host_room(conn, "unban")?;
                if !self.bans.remove(&room, &user_id) {
                    return refuse(
                        ErrorCode::NotBanned,
                        format!("`{user_id}` is not banned from room `{room}`"),
                    );
                }
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::ListBans { op } => {
                let room = self.host_room(conn, "list bans")?;
                let bans = self.bans.list(&room, self.now);
                out.push(Output::Send {
                    to: conn,
                    frame: ServerFrame::Bans { op, room, bans },
                });
                Ok(())
            }
            ClientFrame::SetRole { op, user_id, role } => {
                let room = self.room_of_member(conn, Some(MODERATE))?;
                self.with_room(&room, |r, out| r.set_role(conn, &user_id, role, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Update { op, update } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.update(conn, update, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::SetProperties { op, update } => {
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
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::SendMessage {
                op,
                to,
                content_type,
                content,
            } => {
                let room = self.room_of_member(conn, Some(MESSAGE))?;
                let seq = self.with_room(
                    &room,
                    |r, out| r.message(conn, to.as_ref(), content_type, content, out),
                    out,
                )?;
                out.push(done(op, seq));
                Ok(())
            }

            // Media: publishing, negotiating, receiving.
            ClientFrame::PublishOffer { op, sdp, source } => {
                let room = self.room_of_member(conn, Some(PUBLISH))?;
                if self.rooms[&room].member(conn).participant.role == Role::Recorder {
                    return refuse(ErrorCode::PermissionDenied, "a recorder publishes nothing");
                }
                self.with_room(
                    &room,
                    |r, out| r.publish_offer(conn, op, sdp, source, out),
                    out,
                )
            }
            ClientFrame::Unpublish { op, source } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.unpublish(conn, source, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Mute {
                op,
                source,
                muted,
                user_id: None,
            } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.mute(conn, source, muted, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Mute {
                op,
                source,
                muted,
                user_id: Some(user),
            } => {
                // Muting someone else is moderation; one's own track needs no grant.
                let own = self.sessions.get(conn).is_some_and(|l| *l.user() == user);
                let room = self.room_of_member(conn, (!own).then_some(MODERATE))?;
                self.with_room(
                    &room,
                    |r, out| r.mute_member(conn, &user, source, muted, out),
                    out,
                )?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::SubscribeAnswer {
                op,
                negotiation,
                sdp,
            } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(
                    &room,
                    |r, out| r.subscribe_answer(conn, op, negotiation, sdp, out),
                    out,
                )
            }
            ClientFrame::IceCandidate {
                connection,
                candidate,
            } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(
                    &room,
                    |r, out| r.remote_candidate(conn, connection, candidate, out),
                    out,
                )
            }
            ClientFrame::MediaInterrupted { connection } => {
                self.media_interrupted_by(conn, connection, out)
            }
            // Recording.
            ClientFrame::StartRecording { op, options } => {
                let room = self.room_of_member(conn, Some(RECORD))?;
                self.rooms[&room].require_host(conn, "record")?;
                let by = self.sessions[&conn].user().clone();
                self.start_recording(by, room, options, out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::StopRecording { op } => {
                let room = self.room_of_member(conn, Some(RECORD))?;
                self.rooms[&room].require_host(conn, "record")?;
                let by = self.sessions[&conn].user().clone();
                self.stop_recording(by, &room, out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::RecorderReady { op } => {
                let login = self.login(conn)?;
                login.require(login.identity.grants.recorder, "recording jobs")?;
                self.recorder_ready(conn, out);
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::RecorderJoin { op, recording } => {
                let login = self.login(conn)?;
                login.require(login.identity.grants.recorder, "recording jobs")?;
                self.recorder_join(conn, op, &recording, out)
            }
            ClientFrame::RecordingReport { recording, report } => {
                let login = self.login(conn)?;
                login.require(login.identity.grants.recorder, "recording jobs")?;
                self.recording_report(conn, recording, report, out)
            }
            ClientFrame::Subscribe { op, publication } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.subscribe(conn, &publication, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::Unsubscribe { op, publication } => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.unsubscribe(conn, &publication, out), out)?;
                out.push(done(op, None));
                Ok(())
            }
            ClientFrame::RequestVideo {
                op,
                publication,
                width,
                height,
            } => {
                let room = self.room_of_member(conn, None)?;
                let size = crate::model::VideoSize::new(width, height);
                self.with_room(
                    &room,
                    |r, out| r.request_video(conn, &publication, size, out),
                    out,
                )?;
                out.push(done(op, None));
                Ok(())
            }
        }
    }

    /// `conn`'s login, or a refusal.
    fn login(&self, conn: ConnId) -> Result<&Login, Refusal> {
        self.sessions
            .get(conn)
            .ok_or_else(|| Refusal::new(ErrorCode::NotLoggedIn, "send hello first"))
    }

    /// The room `conn` hosts with the `moderate` grant (bans), or a refusal.
    fn host_room(&self, conn: ConnId, what: &str) -> Result<RoomId, Refusal> {
        let room = self.room_of_member(conn, Some(MODERATE))?;
        self.rooms[&room].require_host(conn, what)?;
        Ok(room)
    }

    /// The room `conn` is in, checking `grant` if the request needs one.
    pub(super) fn room_of_member(
        &self,
        conn: ConnId,
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

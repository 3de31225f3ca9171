//! The server's core: logins, rooms, invitations, and the routing of requests to them. Sans-IO:
//! the async shell feeds it [`Input`]s with the current time and delivers the [`Output`]s;
//! nothing here touches a socket or reads a clock.

use crate::auth::Identity;
use crate::model::{OperationId, Participant, Reason, Role, RoomId, UserId};
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, ServerFrame};

mod admin;
mod bans;
mod interruptions;
mod invites;
pub(crate) mod io;
mod negotiation;
pub(crate) mod net_status;
mod notices;
mod outbox;
mod recording;
mod requests;
pub(crate) mod room;
mod room_book;
mod room_layers;
mod room_media;
mod room_mute;
mod room_net;
mod room_speakers;
mod room_talk;
pub(crate) mod sdp;
mod session_book;
mod sessions;
pub(crate) mod speakers;
mod tokens;
mod video_layers;

pub(crate) use admin::{AdminReply, AdminRequest, HubCounters, HubStats};
use bans::BanBook;
use invites::InvitationBook;
pub(crate) use io::{ConnId, Emit, HubConfig, Input, Millis, Output, Refusal, SessionId, refuse};
use io::{MediaFact, MediaReport};
use recording::RecorderBook;
use room::{Room, check_display_name, check_room_id, check_state};
use room_book::RoomBook;
use session_book::Login;
use session_book::SessionBook;
use tokens::TokenBook;

/// Logins, rooms and invitations.
pub(crate) struct Hub {
    pub(super) config: HubConfig,
    pub(super) now: Millis,
    /// The sessions, their connections and their users.
    sessions: SessionBook,
    /// The rooms, and what names new rooms and memberships.
    rooms: RoomBook,
    /// Outcomes counted for the metrics.
    counted: HubCounters,
    pub(super) invitations: InvitationBook,
    /// Interrupted peer connections, by the end of their grace period.
    pub(super) media_deadlines: interruptions::Deadlines,
    /// Who is banned from which room.
    bans: BanBook,
    /// Token expiries and revocations.
    tokens: TokenBook,
    /// Recorders and recording jobs.
    recorders: RecorderBook,
}

impl Hub {
    pub(crate) fn new(config: HubConfig) -> Self {
        Hub {
            sessions: SessionBook::new(config.grace_ms),
            config,
            now: 0,
            rooms: RoomBook::default(),
            counted: HubCounters::default(),
            invitations: InvitationBook::default(),
            media_deadlines: Default::default(),
            bans: BanBook::default(),
            tokens: TokenBook::default(),
            recorders: RecorderBook::default(),
        }
    }

    /// Whether connection `conn` carries a session (it logged in with `hello` or `resume`).
    pub(crate) fn is_logged_in(&self, conn: ConnId) -> bool {
        self.sessions.carries(conn)
    }

    /// Number of rooms alive.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// When the core next needs a [`Input::Tick`], if ever.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let grace = self.sessions.next_grace_end();
        [
            self.invitations.next_deadline(),
            grace,
            self.next_media_deadline(),
            self.bans.next_deadline(),
            self.tokens.next_deadline(),
            self.recorders.next_deadline(),
            self.rooms.next_empty_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The media id of `conn`'s membership, if it is in a room.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn media_of(&self, session: u64) -> Option<io::MediaId> {
        let session = SessionId(session);
        let room = self.rooms.get(self.sessions.get(session)?.room.as_ref()?)?;
        Some(room.member(session).key.media)
    }

    /// Members who are banned from the room they are in (an invariant: none).
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn banned_members(&self) -> usize {
        self.rooms
            .iter()
            .flat_map(|(id, room)| room.participants().into_iter().map(move |p| (id, p)))
            .filter(|(id, p)| self.bans.is_banned(id, &p.user_id, self.now))
            .count()
    }

    /// The rooms alive, by id.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn room_ids(&self) -> std::collections::BTreeSet<RoomId> {
        self.rooms.keys().cloned().collect()
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn room(&self, id: &RoomId) -> Option<&Room> {
        self.rooms.get(id)
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn open_invitations(&self) -> Vec<(crate::model::Invitation, u64)> {
        self.invitations
            .list()
            .into_iter()
            .map(|(invitation, caller)| (invitation, caller.0))
            .collect()
    }

    /// The user and room of the session connection `conn` carries (for log fields).
    pub(crate) fn whereabouts(&self, conn: ConnId) -> Option<(UserId, Option<RoomId>)> {
        let login = self.sessions.get(self.sessions.carried_by(conn)?)?;
        Some((login.user().clone(), login.room.clone()))
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn room_of(&self, session: u64) -> Option<RoomId> {
        self.sessions
            .get(SessionId(session))
            .and_then(|l| l.room.clone())
    }

    /// Takes one input at time `now`; returns what to send, in order.
    pub(crate) fn handle(&mut self, now: Millis, input: Input) -> Vec<Output> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        match input {
            Input::Frame { conn, frame } => self.frame_from(conn, frame, &mut out),
            Input::Disconnected { conn, reason } => self.connection_lost(conn, reason, &mut out),
            Input::HandshakeTimeout { conn } => {
                // Logged in by `hello` or by `resume`: either way it has a session.
                if !self.sessions.carries(conn) {
                    out.push(Emit::Close {
                        conn,
                        reason: Reason::Timeout,
                    });
                }
            }
            Input::Tick => {
                self.expire_invitations(&mut out);
                self.expire_sessions(&mut out);
                self.expire_media(&mut out);
                self.expire_tokens(&mut out);
                self.expire_recordings(&mut out);
                self.expire_empty_rooms(&mut out);
                self.bans.expire(self.now);
            }

            Input::Media(MediaReport {
                from,
                fact: MediaFact::PeerFailed { connection },
            }) => self.interrupt_media(&from.room, from.media, connection, &mut out),
            Input::Media(MediaReport {
                from,
                fact: MediaFact::AudioLevel { source, level_dbov },
            }) => {
                if let Some(room) = self.rooms.get_mut(&from.room) {
                    room.audio_measured(from.media, source, level_dbov, self.now, &mut out);
                }
            }
            Input::Media(MediaReport {
                from,
                fact: MediaFact::LinkMeasured(sample),
            }) => {
                if let Some(room) = self.rooms.get_mut(&from.room) {
                    room.link_measured(from.media, &sample, self.now, &mut out);
                }
            }
            Input::Media(report) => {
                if let Some(room) = self.rooms.get_mut(&report.from.room) {
                    room.media_report(report.from.media, report.fact, &mut out);
                    room.flush_offers(&mut out);
                }
            }
        }
        self.route(out)
    }

    /// The operator revokes tokens at time `now` (see [`Hub::revoke`]): how many sessions
    /// ended, and what to send.
    pub(crate) fn revoke_now(
        &mut self,
        now: Millis,
        revocation: crate::auth::Revocation,
    ) -> Result<(usize, Vec<Output>), Refusal> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        let ended = self.revoke(revocation, &mut out)?;
        Ok((ended, self.route(out)))
    }

    /// Ends session `conn`: it leaves its room, its invitations end.
    pub(super) fn end_session(&mut self, conn: SessionId, reason: Reason, out: &mut Vec<Emit>) {
        let Some(login) = self.sessions.close(conn) else {
            return;
        };
        self.tokens
            .session_ended(conn, login.identity.expires_at_ms());
        if let Some(room) = &login.room {
            self.with_room(room, |r, out| r.remove(conn, reason, out), out);
        }
        self.recording_session_ended(conn, out);
        if let Some(room) = &login.room {
            self.recording_after_departure(room, out);
        }
        self.caller_left(conn, reason, false, out);
    }

    /// Recorders connected and taking jobs.
    pub(crate) fn recorder_count(&self) -> usize {
        self.recorders.agents()
    }

    /// Runs `f` on a room and drops the room if it is left empty (a managed room waits for
    /// its empty timeout instead).
    pub(super) fn with_room<T>(
        &mut self,
        id: &RoomId,
        f: impl FnOnce(&mut Room, &mut Vec<Emit>) -> T,
        out: &mut Vec<Emit>,
    ) -> T {
        let room = self.rooms.get_mut(id).expect("a login's room exists");
        let result = f(room, out);
        room.flush_offers(out);
        if room.is_empty() {
            if room.managed {
                if room.empty_since.is_none() {
                    room.empty_since = Some(self.now);
                    if let Some(at) = room.empty_deadline() {
                        self.rooms.gone_at(at, id);
                    }
                }
            } else {
                self.drop_room(id, out);
            }
        }
        result
    }

    /// Room `id` is gone: its recordings are over, its bans for the room end, the backend
    /// hears it.
    pub(super) fn drop_room(&mut self, id: &RoomId, out: &mut Vec<Emit>) {
        if !self.rooms.contains(id) {
            return;
        }
        self.room_recordings_over(id, out);
        self.rooms.occupied(id);
        if self.rooms.remove(id).is_some() {
            self.bans.room_ended(id);
            out.push(Emit::Notice(crate::model::ServerEvent::RoomFinished {
                room: id.clone(),
            }));
        }
    }

    /// Ends the call in `room` (checked: a host's request, or the server API's): every member
    /// is out, the room is gone.
    pub(super) fn end_room(&mut self, room: &RoomId, by: UserId, out: &mut Vec<Emit>) {
        let members = self.with_room(room, |r, out| r.end_by(by, out), out);
        for member in members {
            self.set_room(member, None);
            self.caller_left(member, Reason::Over, true, out);
        }
        self.drop_room(room, out);
    }

    /// Takes `conn` out of its room (it asked to, or it answers an invitation elsewhere).
    pub(super) fn leave_room(&mut self, conn: SessionId, reason: Reason, out: &mut Vec<Emit>) {
        let Some(room) = self.sessions.get(conn).and_then(|l| l.room.clone()) else {
            return;
        };
        self.with_room(&room, |r, out| r.remove(conn, reason, out), out);
        self.set_room(conn, None);
        self.recording_member_left(conn, out);
        self.recording_after_departure(&room, out);
        self.caller_left(conn, reason, true, out);
    }

    pub(super) fn set_room(&mut self, conn: SessionId, room: Option<RoomId>) {
        if let Some(login) = self.sessions.get_mut(conn) {
            login.room = room;
        }
    }

    /// Makes room for one more session of `user` under the per-user limit. Sessions waiting
    /// for their resume count (each holds what it was sent), but they are not connections: a
    /// phone whose network flaps must not be locked out by its own lost sessions. So at the
    /// limit the oldest lost one ends now, as its grace period would have ended it, and only a
    /// user whose sessions are all connected is refused.
    fn make_room_for_a_session(
        &mut self,
        user: &UserId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let sessions = self.sessions.of_user(user);
        if sessions.len() < self.config.max_connections_per_user {
            return Ok(());
        }
        let oldest_lost = sessions
            .iter()
            .filter_map(|s| Some((self.sessions.get(*s)?.lost_at()?, *s)))
            .min();
        let Some((_, session)) = oldest_lost else {
            return refuse(
                ErrorCode::TooManyConnections,
                format!(
                    "a user may have {} connections",
                    self.config.max_connections_per_user
                ),
            );
        };
        // As its grace period would have ended it (`end_session` takes it off the lost list).
        self.end_session(session, Reason::Network, out);
        Ok(())
    }

    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        version: u32,
        token: &str,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let identity = self.logging_in(conn, version, token)?;
        // The session's id is the connection's.
        let session = SessionId(conn);
        // A recorder has a session per job it runs (and one taking jobs): not capped.
        if !identity.grants.recorder {
            self.make_room_for_a_session(&identity.user, out)?;
        }
        let user = identity.user.clone();
        out.push(Emit::Send {
            to: session,
            frame: ServerFrame::Welcome {
                version: PROTOCOL_VERSION,
                user_id: user.clone(),
                session: conn,
                resume_key: self.resume_key(session),
                expires_at: identity.expires_at,
            },
        });
        self.tokens
            .session_expires(session, None, identity.expires_at_ms());
        // Invitations still open for this user reach this device too.
        for invitation in self.invitations.for_callee(&user) {
            out.push(Emit::Send {
                to: session,
                frame: ServerFrame::InviteReceived { invitation },
            });
        }
        self.sessions.open(conn, identity);
        self.counted.logins += 1;
        Ok(())
    }

    /// What `hello` and `resume` check first: the connection has no session yet (not even one
    /// another connection took over: its id is the session's), the version, and the token.
    pub(super) fn logging_in(
        &self,
        conn: ConnId,
        version: u32,
        token: &str,
    ) -> Result<Identity, Refusal> {
        if self.sessions.carries(conn) || self.sessions.contains(SessionId(conn)) {
            return refuse(ErrorCode::AlreadyLoggedIn, "this connection is logged in");
        }
        if version != PROTOCOL_VERSION {
            return refuse(
                ErrorCode::UnsupportedVersion,
                format!("this server speaks version {PROTOCOL_VERSION}, not {version}"),
            );
        }
        self.verify_token(token)
    }

    /// A fresh server-made room id.
    pub(super) fn new_room_id(&mut self) -> RoomId {
        self.rooms.new_id(&self.config.room_prefix)
    }

    /// What stops session `conn` from joining room `id` (or making it, if it does not exist):
    /// a ban, no `create` grant, the limits. The same checks for `join` and `accept_invite`.
    pub(super) fn may_join(&self, conn: SessionId, id: &RoomId) -> Result<(), Refusal> {
        let identity = &self.sessions.get(conn).expect("a joining session").identity;
        self.bans.check(id, &identity.user, self.now)?;
        match self.rooms.get(id) {
            Some(room) if room.people() >= room.max_people(self.config.max_participants) => refuse(
                ErrorCode::RoomFull,
                format!(
                    "room `{id}` holds at most {} members",
                    room.max_people(self.config.max_participants)
                ),
            ),
            Some(_) => Ok(()),
            None if !identity.grants.create => refuse(
                ErrorCode::NoSuchRoom,
                format!(
                    "room `{id}` does not exist, and the access token does not allow creating rooms"
                ),
            ),
            None if self.rooms.len() >= self.config.max_rooms => refuse(
                ErrorCode::TooManyRooms,
                format!("the server holds at most {} rooms", self.config.max_rooms),
            ),
            None => Ok(()),
        }
    }

    pub(super) fn join(
        &mut self,
        conn: SessionId,
        op: OperationId,
        room: Option<RoomId>,
        mut participant: Participant,
        auto_subscribe: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        check_display_name(&participant.display_name)?;
        check_state(&participant.state)?;
        let identity = &self.sessions.get(conn).expect("a joining session").identity;
        let id = match room {
            Some(id) => {
                check_room_id(&id)?;
                id
            }
            None if !identity.grants.create => {
                return refuse(
                    ErrorCode::NoSuchRoom,
                    "a server-named room is a new room, and the access token does not allow \
                     creating rooms",
                );
            }
            None => self.new_room_id(),
        };
        let ghost = self
            .rooms
            .get(&id)
            .and_then(|room| room.lost_seat_of(&participant.user_id, &self.sessions));
        if ghost.is_none() {
            self.may_join(conn, &id)?;
        } else {
            // Its own seat, kept for it: only a ban keeps it out (the room exists, and the
            // seat is freed for it below).
            self.bans.check(&id, &participant.user_id, self.now)?;
        }
        let identity = &self.sessions[&conn].identity;
        if identity.hosts(&id) {
            participant.role = Role::Host;
        }
        if let Some(ghost) = ghost {
            // The user is back on a new session while its old one is lost: the new one takes
            // the seat at once (if the ghost was alone, the room is made again for it).
            self.end_session(ghost, Reason::Replaced, out);
        }
        let created = !self.rooms.contains(&id);
        if created {
            out.push(Emit::Notice(crate::model::ServerEvent::RoomStarted {
                room: id.clone(),
            }));
        }
        self.rooms.occupied(&id);
        let speakers = self.config.speakers;
        let room = self
            .rooms
            .get_or_make(&id, || Room::new(id.clone(), speakers));
        let first = room.is_empty();
        if room.has_user(&participant.user_id) {
            return refuse(
                ErrorCode::DuplicateUser,
                format!("`{}` is already in room `{id}`", participant.user_id),
            );
        }
        let media = self.rooms.new_media_id();
        let room = self.rooms.get_mut(&id).expect("made above");
        room.join(conn, media, op, participant, auto_subscribe, out);
        room.flush_offers(out);
        self.set_room(conn, Some(id.clone()));
        if first {
            self.record_from_start(conn, &id, out);
        }
        Ok(())
    }

    /// Sends `frame` to every connection of `user`.
    pub(super) fn to_user(&self, user: &UserId, frame: ServerFrame, out: &mut Vec<Emit>) {
        let conns = self.sessions.of_user(user);
        if !conns.is_empty() {
            out.push(Emit::Broadcast {
                to: conns.to_vec(),
                frame: std::sync::Arc::new(frame),
            });
        }
    }
}

/// Helpers for the core's unit and property tests (and the benchmarks).
#[cfg(any(test, feature = "internals"))]
pub(crate) mod testing {
    use super::HubConfig;
    use crate::auth::{AccessToken, Grants};
    use crate::protocol::{ClientFrame, PROTOCOL_VERSION};

    /// The secret the tests' tokens are signed with.
    pub(crate) const SECRET: &[u8] = b"the secret of the core's unit tests (32+ bytes)";

    /// A core configuration with the default limits.
    pub(crate) fn config() -> HubConfig {
        HubConfig {
            room_prefix: "t-".into(),
            invite_timeout_ms: 30_000,
            auto_reject_busy: false,
            hold_offline_invitations: false,
            secret: SECRET.to_vec(),
            max_rooms: 10_000,
            max_participants: 256,
            max_connections_per_user: 8,
            resume_secret: b"the core tests' resume key secret".to_vec(),
            grace_ms: 15_000,
            outbox_capacity: 1024,
            // The core tests' clock starts at 0, long before the tokens' real `iat`: no cap.
            max_token_lifetime_ms: u64::MAX,
            max_bans: 100_000,
            embedded_recorder: false,
            recorder_start_timeout_ms: 10_000,
            auto_record: None,
            speakers: Default::default(),
        }
    }

    /// A token for `user` with `grants`, dated as issued at the start of the core tests'
    /// clock (which starts at 0, not at the real time).
    pub(crate) fn token(user: &str, grants: Grants) -> String {
        AccessToken::new(user)
            .grants(grants)
            .issued_at(std::time::UNIX_EPOCH)
            .sign(SECRET)
            .expect("a valid test token")
    }

    /// A `hello` for `user`, with a token holding every grant.
    pub(crate) fn hello(user: &str) -> ClientFrame {
        ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            token: token(user, Grants::all()),
        }
    }

    /// Request `op`: join `room` with the defaults (auto-subscribing).
    pub(crate) fn join(room: &str, op: crate::model::OperationId) -> ClientFrame {
        ClientFrame::Join {
            op,
            room: Some(room.into()),
            display_name: None,
            audio: false,
            video: false,
            state: String::new(),
            auto_subscribe: true,
        }
    }
}

//! One room: roster, roles and the room's event sequence (its properties and messages are in
//! `room_talk.rs`, its media in `room_media.rs`). Sans-IO: every method
//! takes a request and pushes the frames it causes onto an output list; nothing here touches a
//! socket or reads a clock.

use crate::model::{
    CallProperties, MAX_DISPLAY_NAME_LEN, MAX_STATE_LEN, OperationId, Participant,
    ParticipantChanges, ParticipantUpdate, PropertyChanges, Publication, Reason, Role, RoomId,
    UserId,
};
use crate::protocol::{ErrorCode, ServerFrame};

use super::io::{Emit, MediaId, MediaKey, Millis, Refusal, SessionId, refuse};
use super::negotiation::{Publishing, Receiving};

pub(super) struct Member {
    pub(super) conn: SessionId,
    pub(super) participant: Participant,
    /// This membership's media: its id, and its two negotiations.
    pub(super) key: MediaKey,
    pub(super) publishing: Publishing,
    pub(super) receiving: Receiving,
    /// How well its media gets through (`net_status.rs`).
    pub(super) net: super::net_status::NetQuality,
}

/// A room's state.
pub(crate) struct Room {
    pub(super) id: RoomId,
    pub(super) seq: u64,
    pub(super) members: Vec<Member>,
    pub(super) properties: CallProperties,
    /// Published tracks, with the publisher's connection, in publishing order.
    pub(super) publications: Vec<(SessionId, Publication)>,
    /// Who receives which publication (connection, publication id).
    pub(super) subscriptions: std::collections::BTreeSet<(SessionId, String)>,
    /// Subscriptions their member paused (still negotiated on its connection).
    pub(super) paused: std::collections::BTreeSet<(SessionId, String)>,
    /// Members who receive only the tracks they ask for.
    pub(super) manual: std::collections::BTreeSet<SessionId>,
    /// Some member's legs (or offer) changed since the last `flush_offers`.
    pub(super) offers_due: bool,
    /// What the server API made it with (nothing for a room a `join` made).
    pub(super) options: crate::model::RoomOptions,
    /// Made by the server API: it outlives its members for its empty timeout.
    pub(super) managed: bool,
    /// Since when a managed room has had no member.
    pub(super) empty_since: Option<super::io::Millis>,
    /// Which simulcast layer each receiver gets of each video.
    pub(super) video: super::video_layers::VideoLayers,
    /// Who speaks.
    pub(super) speakers: super::speakers::Speakers,
    /// The camera of the loudest speaker, as last told to the receivers' bandwidth allocation.
    pub(super) favoured_camera: Option<String>,
}

impl Room {
    /// An empty room whose speakers are told as `speakers` says.
    pub(crate) fn new(id: RoomId, speakers: super::speakers::SpeakerConfig) -> Self {
        Room {
            id,
            seq: 0,
            members: Vec::new(),
            properties: CallProperties::default(),
            publications: Vec::new(),
            subscriptions: Default::default(),
            paused: Default::default(),
            manual: Default::default(),
            offers_due: false,
            options: Default::default(),
            managed: false,
            empty_since: None,
            video: Default::default(),
            speakers: super::speakers::Speakers::new(speakers),
            favoured_camera: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members who count towards the room's size limit: all but recorders.
    pub(crate) fn people(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.participant.role != Role::Recorder)
            .count()
    }

    /// Whether `user` is in the room as its recorder.
    pub(crate) fn is_recorder(&self, user: &UserId) -> bool {
        self.members
            .iter()
            .any(|m| &m.participant.user_id == user && m.participant.role == Role::Recorder)
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn participants(&self) -> Vec<Participant> {
        self.members.iter().map(|m| m.participant.clone()).collect()
    }

    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn properties(&self) -> &CallProperties {
        &self.properties
    }

    pub(crate) fn has_user(&self, user: &UserId) -> bool {
        self.members.iter().any(|m| &m.participant.user_id == user)
    }

    pub(super) fn index_of_conn(&self, conn: SessionId) -> Option<usize> {
        self.members.iter().position(|m| m.conn == conn)
    }

    pub(super) fn index_of_user(&self, user: &UserId) -> Result<usize, Refusal> {
        self.members
            .iter()
            .position(|m| &m.participant.user_id == user)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NoSuchParticipant,
                    format!("`{user}` is not in room `{}`", self.id),
                )
            })
    }

    /// Where `conn` is among the members, or a refusal.
    pub(super) fn member_index(&self, conn: SessionId) -> Result<usize, Refusal> {
        self.index_of_conn(conn)
            .ok_or_else(|| Refusal::new(ErrorCode::NotInRoom, "not a member"))
    }

    pub(super) fn member(&self, conn: SessionId) -> &Member {
        // The hub only routes a connection to the room it is a member of.
        &self.members[self.index_of_conn(conn).expect("connection is a member")]
    }

    pub(crate) fn require_host(&self, conn: SessionId, what: &str) -> Result<(), Refusal> {
        if self.member(conn).participant.role == Role::Host {
            Ok(())
        } else {
            refuse(
                ErrorCode::PermissionDenied,
                format!("only a host may {what}"),
            )
        }
    }

    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn conns(&self) -> Vec<SessionId> {
        self.members.iter().map(|m| m.conn).collect()
    }

    pub(super) fn conns_except(&self, conn: SessionId) -> Vec<SessionId> {
        self.members
            .iter()
            .map(|m| m.conn)
            .filter(|c| *c != conn)
            .collect()
    }

    /// Sends a room event to `to`; what the application's backend hears of it (a webhook) goes
    /// out whoever receives it (the first member's `participant_joined` reaches no member).
    pub(super) fn broadcast(&self, to: Vec<SessionId>, frame: ServerFrame, out: &mut Vec<Emit>) {
        if let Some(event) = super::notices::event_of(&frame) {
            out.push(Emit::Notice(event));
        }
        if !to.is_empty() {
            out.push(Emit::Broadcast {
                to,
                frame: std::sync::Arc::new(frame),
            });
        }
    }

    /// The session holding `user`'s seat, when that session's connection is lost.
    pub(super) fn lost_seat_of(
        &self,
        user: &UserId,
        sessions: &super::session_book::SessionBook,
    ) -> Option<SessionId> {
        let member = self
            .members
            .iter()
            .find(|m| &m.participant.user_id == user)?;
        sessions
            .get(member.conn)
            .is_some_and(|l| l.transport().is_none())
            .then_some(member.conn)
    }

    /// Tells the room that member `conn`'s connection was lost or is back.
    pub(super) fn set_connection(
        &mut self,
        conn: SessionId,
        state: crate::model::ConnectionState,
        now: Millis,
        out: &mut Vec<Emit>,
    ) {
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        if self.members[i].participant.connection != state {
            self.members[i].participant.connection = state;
            let lost = state == crate::model::ConnectionState::Reconnecting;
            let net = self.members[i].net.signaling(lost, now);
            if let Some(net) = net {
                self.members[i].participant.net = net;
            }
            let changes = ParticipantChanges {
                connection: true,
                net: net.is_some(),
                ..Default::default()
            };
            self.emit_updated(i, changes, out);
        }
    }

    /// The room as it is now, for a resync.
    pub(super) fn state(&self) -> crate::protocol::RoomState {
        crate::protocol::RoomState {
            room: self.id.clone(),
            seq: self.seq,
            participants: self.members.iter().map(|m| m.participant.clone()).collect(),
            properties: self.properties.clone(),
            publications: self.publications.iter().map(|(_, p)| p.clone()).collect(),
        }
    }

    /// Adds a member. The first member of a room is its host, and so is a member that comes
    /// with the host role (from its access token).
    pub(crate) fn join(
        &mut self,
        conn: SessionId,
        media: MediaId,
        op: OperationId,
        mut participant: Participant,
        auto_subscribe: bool,
        out: &mut Vec<Emit>,
    ) {
        if !auto_subscribe {
            self.manual.insert(conn);
        }
        // The first person in is host: with no host present (only a recorder, finishing its
        // files), a person joining becomes one.
        let hosted = self
            .members
            .iter()
            .any(|m| m.participant.role == Role::Host);
        if !hosted && participant.role != Role::Recorder {
            participant.role = Role::Host;
        }
        let seq = self.next_seq();
        let frame = ServerFrame::ParticipantJoined {
            room: self.id.clone(),
            seq,
            participant: participant.clone(),
        };
        self.broadcast(self.conns(), frame, out);
        self.members.push(Member {
            conn,
            participant,
            key: MediaKey {
                room: self.id.clone(),
                media,
            },
            publishing: Publishing::default(),
            receiving: Receiving::default(),
            net: Default::default(),
        });
        out.push(Emit::Send {
            to: conn,
            frame: ServerFrame::Joined {
                op,
                room: self.id.clone(),
                seq,
                participants: self.members.iter().map(|m| m.participant.clone()).collect(),
                properties: self.properties.clone(),
                publications: self.publications.iter().map(|(_, p)| p.clone()).collect(),
            },
        });
        // The newcomer receives every track already published (unless it chooses).
        if auto_subscribe {
            let existing: Vec<Publication> =
                self.publications.iter().map(|(_, p)| p.clone()).collect();
            for publication in existing {
                self.start_subscription(conn, publication, out);
            }
        }
    }

    /// Removes a member who left on its own (`Quit`) or lost its connection (`Network`).
    pub(crate) fn remove(&mut self, conn: SessionId, reason: Reason, out: &mut Vec<Emit>) {
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        let member = self.members.remove(i);
        let seq = self.next_seq();
        let frame = ServerFrame::ParticipantLeft {
            room: self.id.clone(),
            seq,
            participant: member.participant.clone(),
            reason,
        };
        self.broadcast(self.conns(), frame, out);
        self.drop_media(&member, reason, out);
        self.after_departure(&member.participant.user_id, out);
    }

    /// Keeps the room's invariants after someone left: a screen share of theirs stops, and a room
    /// with members keeps a host (the longest-present member is promoted).
    fn after_departure(&mut self, user: &UserId, out: &mut Vec<Emit>) {
        if self.members.is_empty() {
            return;
        }
        if self
            .properties
            .screen_share
            .as_ref()
            .is_some_and(|s| &s.user_id == user)
        {
            self.properties.screen_share = None;
            let changes = PropertyChanges {
                screen_share: true,
                ..Default::default()
            };
            self.emit_properties(changes, user.clone(), out);
        }
        // A recorder is never made host.
        let host = self
            .members
            .iter()
            .any(|m| m.participant.role == Role::Host);
        let next = self
            .members
            .iter()
            .position(|m| m.participant.role != Role::Recorder);
        if !host && let Some(i) = next {
            self.members[i].participant.role = Role::Host;
            let changes = ParticipantChanges {
                role: true,
                ..Default::default()
            };
            self.emit_updated(i, changes, out);
        }
    }

    pub(super) fn emit_updated(
        &mut self,
        i: usize,
        changes: ParticipantChanges,
        out: &mut Vec<Emit>,
    ) {
        let seq = self.next_seq();
        let frame = ServerFrame::ParticipantUpdated {
            room: self.id.clone(),
            seq,
            participant: self.members[i].participant.clone(),
            changes,
        };
        self.broadcast(self.conns(), frame, out);
    }

    pub(super) fn emit_properties(
        &mut self,
        changes: PropertyChanges,
        by: UserId,
        out: &mut Vec<Emit>,
    ) {
        let seq = self.next_seq();
        let frame = ServerFrame::PropertiesChanged {
            room: self.id.clone(),
            seq,
            properties: self.properties.clone(),
            changes,
            by,
        };
        self.broadcast(self.conns(), frame, out);
    }

    /// Ends the call (a host's or the server API's request, `by`): every member is out.
    /// Returns the members' connections.
    pub(super) fn end_by(&mut self, by: UserId, out: &mut Vec<Emit>) -> Vec<SessionId> {
        self.close(by, Reason::Over, out)
    }

    /// Ends the call because its required recording failed (recording `by`'s): every member
    /// is out. Returns the members' connections.
    pub(crate) fn shut_down(&mut self, by: UserId, out: &mut Vec<Emit>) -> Vec<SessionId> {
        self.close(by, Reason::RecordingFailed, out)
    }

    fn close(&mut self, by: UserId, reason: Reason, out: &mut Vec<Emit>) -> Vec<SessionId> {
        let seq = self.next_seq();
        let frame = ServerFrame::CallEnded {
            room: self.id.clone(),
            seq,
            by,
            reason,
        };
        let conns = self.conns();
        self.broadcast(conns.clone(), frame, out);
        // The backend hears each member leave, and its tracks end, as when members go one by
        // one (the members themselves only need `call_ended`).
        for member in &self.members {
            out.push(Emit::Notice(crate::model::ServerEvent::ParticipantLeft {
                room: self.id.clone(),
                participant: member.participant.clone(),
                reason,
            }));
            for (_, publication) in self.publications.iter().filter(|(c, _)| *c == member.conn) {
                out.push(Emit::Notice(crate::model::ServerEvent::TrackUnpublished {
                    room: self.id.clone(),
                    publication: publication.clone(),
                    reason,
                }));
            }
        }
        for member in std::mem::take(&mut self.members) {
            super::room_media::end_media(&member, out);
        }
        self.publications.clear();
        self.subscriptions.clear();
        self.paused.clear();
        self.manual.clear();
        conns
    }

    /// Removes `target` on a host's request. Returns the kicked member's connection.
    pub(crate) fn kick(
        &mut self,
        conn: SessionId,
        target: &UserId,
        out: &mut Vec<Emit>,
    ) -> Result<SessionId, Refusal> {
        self.require_host(conn, "kick")?;
        let i = self.index_of_user(target)?;
        if self.members[i].conn == conn {
            return refuse(
                ErrorCode::InvalidParam,
                "use leave to leave; a host cannot kick itself",
            );
        }
        self.kick_user(target, out)
    }

    /// Removes `target` (a host's or the server API's request). Returns its connection.
    pub(super) fn kick_user(
        &mut self,
        target: &UserId,
        out: &mut Vec<Emit>,
    ) -> Result<SessionId, Refusal> {
        let i = self.index_of_user(target)?;
        let seq = self.next_seq();
        let frame = ServerFrame::ParticipantLeft {
            room: self.id.clone(),
            seq,
            participant: self.members[i].participant.clone(),
            reason: Reason::Kicked,
        };
        self.broadcast(self.conns(), frame, out);
        let member = self.members.remove(i);
        self.drop_media(&member, Reason::Kicked, out);
        self.after_departure(&member.participant.user_id, out);
        Ok(member.conn)
    }

    /// Changes a member's role on a host's request.
    pub(crate) fn set_role(
        &mut self,
        conn: SessionId,
        target: &UserId,
        role: Role,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.require_host(conn, "change roles")?;
        let i = self.index_of_user(target)?;
        if self.members[i].participant.role == role {
            return Ok(());
        }
        if role == Role::Recorder || self.members[i].participant.role == Role::Recorder {
            return refuse(
                ErrorCode::InvalidParam,
                "the recorder role is the server's to give",
            );
        }
        let hosts = self
            .members
            .iter()
            .filter(|m| m.participant.role == Role::Host)
            .count();
        if role != Role::Host && hosts == 1 {
            return refuse(ErrorCode::InvalidParam, "a room keeps at least one host");
        }
        self.members[i].participant.role = role;
        self.emit_updated(
            i,
            ParticipantChanges {
                role: true,
                ..Default::default()
            },
            out,
        );
        Ok(())
    }

    /// Changes the sender's own participant fields.
    pub(crate) fn update(
        &mut self,
        conn: SessionId,
        update: ParticipantUpdate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        if let Some(name) = &update.display_name {
            check_display_name(name)?;
        }
        if let Some(state) = &update.state {
            check_state(state)?;
        }
        let i = self.index_of_conn(conn).expect("connection is a member");
        let p = &mut self.members[i].participant;
        let mut changes = ParticipantChanges::default();
        if let Some(audio) = update.audio {
            changes.audio = std::mem::replace(&mut p.audio, audio) != audio;
        }
        if let Some(video) = update.video {
            changes.video = std::mem::replace(&mut p.video, video) != video;
        }
        if let Some(name) = update.display_name {
            changes.display_name = p.display_name != name;
            p.display_name = name;
        }
        if let Some(state) = update.state {
            changes.state = p.state != state;
            p.state = state;
        }
        if !changes.is_empty() {
            self.emit_updated(i, changes, out);
        }
        Ok(())
    }
}

/// Refuses a room id that cannot be one (a member's `join`, the server API's room).
pub(crate) fn check_room_id(id: &RoomId) -> Result<(), Refusal> {
    if !crate::model::valid_id(id.as_str()) {
        return refuse(
            ErrorCode::InvalidParam,
            "room must be 1 to 64 bytes of [A-Za-z0-9+_.-], not starting with - _ or .",
        );
    }
    Ok(())
}

pub(crate) fn check_display_name(name: &str) -> Result<(), Refusal> {
    if name.len() > MAX_DISPLAY_NAME_LEN {
        return refuse(
            ErrorCode::InvalidParam,
            "display_name is longer than 128 bytes",
        );
    }
    Ok(())
}

pub(crate) fn check_state(state: &str) -> Result<(), Refusal> {
    if state.len() > MAX_STATE_LEN {
        return refuse(ErrorCode::InvalidParam, "state is larger than 1 KiB");
    }
    Ok(())
}

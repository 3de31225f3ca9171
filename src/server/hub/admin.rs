//! The server API's requests (the application's backend, with an `admin` token): the same rooms
//! through the same room code as members' requests, with the backend as the actor. Sans-IO, like
//! the rest of the core.

use std::collections::BTreeMap;

use crate::model::{
    BanTerm, PropertyUpdate, RecordingOptions, RoomDetails, RoomId, RoomOptions, RoomSummary,
    ServerEvent, Text, TrackSource, UserId,
};
use crate::protocol::ErrorCode;

use super::Hub;
use super::io::{Emit, Millis, Output, Refusal, refuse};
use super::room::Room;

/// A server API request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AdminRequest {
    /// Every room.
    ListRooms,
    /// One room in full.
    GetRoom { room: RoomId },
    /// What the server measures of one room's media.
    GetRoomStatistics { room: RoomId },
    /// Make a room ahead of its call.
    CreateRoom { room: RoomId, options: RoomOptions },
    /// End the call: every member is out, the room is gone.
    EndRoom { room: RoomId },
    /// Remove a member (and ban them, with a term).
    RemoveParticipant {
        room: RoomId,
        user: UserId,
        ban: Option<BanTerm>,
    },
    /// Mute a member's track (only its publisher unmutes it).
    MuteTrack {
        room: RoomId,
        user: UserId,
        source: TrackSource,
    },
    /// Set or remove custom call properties (`None` removes).
    SetProperties {
        room: RoomId,
        custom: BTreeMap<String, Option<String>>,
    },
    /// A message from the backend to the room, or to one member.
    SendMessage {
        room: RoomId,
        to: Option<UserId>,
        content_type: Text,
        content: Text,
    },
    /// Start recording the room.
    StartRecording {
        room: RoomId,
        options: RecordingOptions,
    },
    /// Stop the room's recording.
    StopRecording { room: RoomId },
}

/// A server API answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AdminReply {
    /// The rooms, by id.
    Rooms(Vec<RoomSummary>),
    /// One room.
    Room(Box<RoomDetails>),
    /// One room's media, with each member's media id (the shell fills in the tracks).
    Statistics(
        Box<crate::model::RoomStatistics>,
        Vec<(super::io::MediaId, crate::model::UserId)>,
    ),
    /// Done; a group message's room sequence number.
    Done { seq: Option<u64> },
}

impl Hub {
    /// A server API request at time `now`, carrying the backend's token: the answer, and what
    /// to send (also when refused: nothing is half done, but the outputs are the shell's to
    /// deliver either way).
    pub(crate) fn admin(
        &mut self,
        now: Millis,
        token: &str,
        request: AdminRequest,
    ) -> (Result<AdminReply, Refusal>, Vec<Output>) {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        let result = self
            .admin_identity(token)
            .and_then(|by| self.admin_request(by, request, &mut out));
        (result, self.route(out))
    }

    /// Who the token names, if it is valid and carries the `admin` grant.
    fn admin_identity(&self, token: &str) -> Result<UserId, Refusal> {
        let identity = self.verify_token(token)?;
        if !identity.grants.admin {
            return refuse(
                ErrorCode::MissingGrant,
                "the access token does not allow the server API (it needs the admin grant)",
            );
        }
        Ok(identity.user)
    }

    fn admin_request(
        &mut self,
        by: UserId,
        request: AdminRequest,
        out: &mut Vec<Emit>,
    ) -> Result<AdminReply, Refusal> {
        let done = |seq| Ok(AdminReply::Done { seq });
        match request {
            AdminRequest::ListRooms => {
                let mut rooms: Vec<RoomSummary> = self.rooms.values().map(Room::summary).collect();
                rooms.sort_by(|a, b| a.room.cmp(&b.room));
                Ok(AdminReply::Rooms(rooms))
            }
            AdminRequest::GetRoom { room } => Ok(AdminReply::Room(Box::new(
                self.named_room(&room)?.details(),
            ))),
            AdminRequest::GetRoomStatistics { room } => {
                let (statistics, media) = self.named_room(&room)?.statistics();
                Ok(AdminReply::Statistics(Box::new(statistics), media))
            }
            AdminRequest::CreateRoom { room, options } => {
                super::room::check_room_id(&room)?;
                if let Err(message) = options.validate() {
                    return refuse(ErrorCode::InvalidParam, message);
                }
                if self.rooms.contains(&room) {
                    return refuse(ErrorCode::RoomExists, format!("room `{room}` exists"));
                }
                if self.rooms.len() >= self.config.max_rooms {
                    return refuse(
                        ErrorCode::TooManyRooms,
                        format!("the server holds at most {} rooms", self.config.max_rooms),
                    );
                }
                let made = Room::managed(room.clone(), options, self.now, self.config.speakers);
                if let Some(at) = made.empty_deadline() {
                    self.rooms.gone_at(at, &room);
                }
                let details = made.details();
                self.rooms.insert(room.clone(), made);
                out.push(Emit::Notice(ServerEvent::RoomStarted { room }));
                Ok(AdminReply::Room(Box::new(details)))
            }
            AdminRequest::EndRoom { room } => {
                self.named_room(&room)?;
                self.end_room(&room, by, out);
                done(None)
            }
            AdminRequest::RemoveParticipant { room, user, ban } => {
                let r = self.named_room(&room)?;
                if r.is_recorder(&user) {
                    return refuse(
                        ErrorCode::InvalidParam,
                        "the recorder leaves when its recording stops: stop the recording",
                    );
                }
                let present = r.has_user(&user);
                if let Some(term) = ban {
                    self.bans
                        .check_room_for(&room, &user, term, &by, self.config.max_bans)?;
                    self.bans.add(&room, &user, term, &by, self.now);
                    if !present {
                        return done(None);
                    }
                }
                let kicked = self.with_room(&room, |r, out| r.kick_user(&user, out), out)?;
                self.set_room(kicked, None);
                self.caller_left(kicked, crate::model::Reason::Kicked, true, out);
                // The last person may be gone (a host cannot kick itself; the backend can).
                self.recording_after_departure(&room, out);
                done(None)
            }
            AdminRequest::MuteTrack { room, user, source } => {
                let r = self.named_room(&room)?;
                let i = r.index_of_user(&user)?;
                let conn = r.members[i].conn;
                if r.members[i].participant.role == crate::model::Role::Recorder {
                    return refuse(ErrorCode::InvalidParam, "the recorder publishes nothing");
                }
                self.with_room(
                    &room,
                    |r, out| r.set_muted(conn, source, true, Some(by), out),
                    out,
                )?;
                done(None)
            }
            AdminRequest::SetProperties { room, custom } => {
                self.named_room(&room)?;
                let update = PropertyUpdate {
                    custom,
                    ..Default::default()
                };
                self.with_room(
                    &room,
                    |r, out| r.set_properties_as(by, true, update, out),
                    out,
                )?;
                done(None)
            }
            AdminRequest::SendMessage {
                room,
                to,
                content_type,
                content,
            } => {
                self.named_room(&room)?;
                let seq = self.with_room(
                    &room,
                    |r, out| r.message_from(by, None, to.as_ref(), content_type, content, out),
                    out,
                )?;
                done(seq)
            }
            AdminRequest::StartRecording { room, options } => {
                self.named_room(&room)?;
                self.start_recording(by, room, options, out)?;
                done(None)
            }
            AdminRequest::StopRecording { room } => {
                self.named_room(&room)?;
                self.stop_recording(by, &room, out)?;
                done(None)
            }
        }
    }

    fn named_room(&self, room: &RoomId) -> Result<&Room, Refusal> {
        self.rooms
            .get(room)
            .ok_or_else(|| Refusal::new(ErrorCode::NoSuchRoom, format!("no room `{room}`")))
    }

    /// Managed rooms whose empty timeout passed are gone.
    pub(super) fn expire_empty_rooms(&mut self, out: &mut Vec<Emit>) {
        while let Some((at, id)) = self.rooms.pop_empty_due(self.now) {
            let due = self
                .rooms
                .get(&id)
                .is_some_and(|r| r.is_empty() && r.empty_deadline() == Some(at));
            if due {
                self.drop_room(&id, out);
            }
        }
    }
}

impl Room {
    /// A room the server API makes ahead of its call, empty since `now`; its speakers are
    /// told as its options say, else as `speakers` (the server's).
    pub(crate) fn managed(
        id: RoomId,
        options: crate::model::RoomOptions,
        now: super::io::Millis,
        speakers: super::speakers::SpeakerConfig,
    ) -> Self {
        let speakers = super::speakers::SpeakerConfig {
            threshold_dbov: options
                .speaker_threshold_dbov
                .unwrap_or(speakers.threshold_dbov),
            interval_ms: options.speaker_interval_ms.unwrap_or(speakers.interval_ms),
        };
        Room {
            options,
            managed: true,
            empty_since: Some(now),
            ..Room::new(id, speakers)
        }
    }

    /// When a managed room with no member is gone.
    pub(super) fn empty_deadline(&self) -> Option<super::io::Millis> {
        let timeout = self
            .options
            .empty_timeout_secs
            .unwrap_or(crate::model::DEFAULT_EMPTY_TIMEOUT_SECS);
        Some(self.empty_since? + timeout * 1000)
    }

    /// The room for the server API's list.
    pub(crate) fn summary(&self) -> crate::model::RoomSummary {
        crate::model::RoomSummary {
            room: self.id.clone(),
            participants: self.members.len(),
            publications: self.publications.len(),
            recording: self.properties.recording.clone(),
            managed: self.managed,
        }
    }

    /// The room in full, for the server API.
    pub(crate) fn details(&self) -> crate::model::RoomDetails {
        crate::model::RoomDetails {
            room: self.id.clone(),
            seq: self.seq,
            participants: self.members.iter().map(|m| m.participant.clone()).collect(),
            publications: self.publications.iter().map(|(_, p)| p.clone()).collect(),
            properties: self.properties.clone(),
            options: self.options.clone(),
            managed: self.managed,
        }
    }

    /// The most members (recorders aside) the room takes, under the server's limit `server`.
    pub(super) fn max_people(&self, server: usize) -> usize {
        self.options
            .max_participants
            .map_or(server, |n| n.min(server))
    }
}

/// What the metrics read off the core when scraped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HubStats {
    /// Sessions (logged in), and how many of them have lost their connection.
    pub(crate) sessions: usize,
    pub(crate) lost_sessions: usize,
    /// Connections carrying a session.
    pub(crate) logged_in: usize,
    pub(crate) rooms: usize,
    pub(crate) participants: usize,
    pub(crate) publications: usize,
    pub(crate) subscriptions: usize,
    /// Rooms by recording state (`starting`, `recording`, `stopping`, `failed`).
    pub(crate) recordings: Vec<(&'static str, usize)>,
    pub(crate) recorders: usize,
    /// What the core counted since it started.
    pub(crate) counted: HubCounters,
}

/// Outcomes the core counts as they happen (totals since it started): the metrics show them,
/// so a refused request counts under its refusal only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HubCounters {
    /// Sessions logged in (`hello`).
    pub(crate) logins: u64,
    /// Sessions resumed, and the frames replayed to them.
    pub(crate) resumes: u64,
    pub(crate) replayed: u64,
    /// Invitations made (one per callee reached).
    pub(crate) invitations_sent: u64,
    /// Invitations accepted, rejected and canceled by a request.
    pub(crate) invitations_accepted: u64,
    pub(crate) invitations_rejected: u64,
    pub(crate) invitations_canceled: u64,
    /// Members' in-call messages sent.
    pub(crate) messages: u64,
}

impl Hub {
    /// The counts the metrics show (one pass over the rooms).
    pub(crate) fn stats(&self) -> HubStats {
        use crate::model::RecordingState;
        let mut recordings = [
            ("starting", 0),
            ("recording", 0),
            ("stopping", 0),
            ("failed", 0),
        ];
        let (sessions, lost_sessions, logged_in) = self.sessions.counts();
        let mut stats = HubStats {
            sessions,
            lost_sessions,
            logged_in,
            rooms: self.rooms.len(),
            recorders: self.recorders.agents(),
            counted: self.counted,
            ..Default::default()
        };
        for room in self.rooms.values() {
            stats.participants += room.members.len();
            stats.publications += room.publications.len();
            stats.subscriptions += room.subscriptions.len();
            let at = match room.properties.recording {
                RecordingState::Starting { .. } => 0,
                RecordingState::Recording { .. } => 1,
                RecordingState::Stopping { .. } => 2,
                RecordingState::Failed { .. } => 3,
                _ => continue,
            };
            recordings[at].1 += 1;
        }
        stats.recordings = recordings.to_vec();
        stats
    }
}

//! What the server API (`docs/api.md`) and the webhooks (`docs/api.md#webhooks`) carry: a room's
//! options, a room as the application's backend sees it, and the events the server posts.

use serde::{Deserialize, Serialize};

use super::{
    AbortReason, CallProperties, Participant, Publication, Reason, RecordedFile, RecordingId,
    RecordingOptions, RecordingState, RoomId, StopReason, UserId,
};

/// How long a room made by the server API waits for its first member (and, once its last member
/// has left, for the next) before it is gone, when its options do not say: 5 minutes.
pub const DEFAULT_EMPTY_TIMEOUT_SECS: u64 = 300;

/// Options of a room made ahead of its call through the server API. `Default`: the server's
/// limits, [`DEFAULT_EMPTY_TIMEOUT_SECS`], no recording from the start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomOptions {
    /// At most this many members (recorders aside); the server's own limit still applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<usize>,
    /// Seconds the room lives with no member before it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_timeout_secs: Option<u64>,
    /// Record every call in the room from its first member on, with these options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_record: Option<RecordingOptions>,
    /// A member speaks when its microphone is at this level or louder (in −dBov, 0 to 127; 0
    /// is the loudest) often enough; the server's setting otherwise (35).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_threshold_dbov: Option<u8>,
    /// The room hears who speaks at most this often, in milliseconds (100 to 10,000); the
    /// server's setting otherwise (500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_interval_ms: Option<u64>,
}

impl RoomOptions {
    /// At most `n` members.
    pub fn max_participants(mut self, n: usize) -> Self {
        self.max_participants = Some(n);
        self
    }

    /// Gone after `secs` seconds with no member.
    pub fn empty_timeout_secs(mut self, secs: u64) -> Self {
        self.empty_timeout_secs = Some(secs);
        self
    }

    /// Recorded from its first member on.
    pub fn auto_record(mut self, options: RecordingOptions) -> Self {
        self.auto_record = Some(options);
        self
    }

    /// Speakers are those at `dbov` (−dBov) or louder.
    pub fn speaker_threshold_dbov(mut self, dbov: u8) -> Self {
        self.speaker_threshold_dbov = Some(dbov);
        self
    }

    /// The active speakers are told at most every `ms` milliseconds.
    pub fn speaker_interval_ms(mut self, ms: u64) -> Self {
        self.speaker_interval_ms = Some(ms);
        self
    }

    /// Checks the options: a size of at least 1, a timeout of at most a day, valid recording
    /// options. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_participants == Some(0) {
            return Err("max_participants is at least 1".into());
        }
        if self.empty_timeout_secs.is_some_and(|s| s > 86_400) {
            return Err("empty_timeout_secs is at most 86400 (a day)".into());
        }
        if let Some(record) = &self.auto_record {
            record.validate().map_err(String::from)?;
        }
        if self.speaker_threshold_dbov.is_some_and(|d| d > 127) {
            return Err("speaker_threshold_dbov is 0 to 127".into());
        }
        if self
            .speaker_interval_ms
            .is_some_and(|ms| !(MIN_SPEAKER_INTERVAL_MS..=MAX_SPEAKER_INTERVAL_MS).contains(&ms))
        {
            return Err("speaker_interval_ms is 100 to 10000".into());
        }
        Ok(())
    }
}

/// The shortest interval between two active-speaker updates a room or server may set.
pub const MIN_SPEAKER_INTERVAL_MS: u64 = 100;
/// The longest.
pub const MAX_SPEAKER_INTERVAL_MS: u64 = 10_000;

/// A room in a list (`GET /api/rooms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomSummary {
    /// The room.
    pub room: RoomId,
    /// Members now (recorders included).
    pub participants: usize,
    /// Tracks published now.
    pub publications: usize,
    /// The room's recording state.
    pub recording: RecordingState,
    /// Whether the server API made it (it then outlives its members for its empty timeout).
    pub managed: bool,
}

/// A room in full (`GET /api/rooms/{room}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomDetails {
    /// The room.
    pub room: RoomId,
    /// The room's last event sequence number.
    pub seq: u64,
    /// Its members, in joining order.
    pub participants: Vec<Participant>,
    /// Its published tracks.
    pub publications: Vec<Publication>,
    /// Its call properties (the recording state among them).
    pub properties: CallProperties,
    /// The options it was made with (empty for a room a member's `join` made).
    pub options: RoomOptions,
    /// Whether the server API made it.
    pub managed: bool,
}

/// What happened, in a webhook's body (`event` names the kind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerEvent {
    /// A room exists: its first member joined, or the server API made it.
    RoomStarted {
        /// The room.
        room: RoomId,
    },
    /// A room is gone: its last member left (or its empty timeout passed), or it was ended.
    RoomFinished {
        /// The room.
        room: RoomId,
    },
    /// Someone joined a room.
    ParticipantJoined {
        /// The room.
        room: RoomId,
        /// Who, as the room sees them.
        participant: Participant,
    },
    /// Someone left a room.
    ParticipantLeft {
        /// The room.
        room: RoomId,
        /// Who.
        participant: Participant,
        /// Why (`quit`, `kicked`, `network`, `over`, …).
        reason: Reason,
    },
    /// A member published a track.
    TrackPublished {
        /// The room.
        room: RoomId,
        /// The track.
        publication: Publication,
    },
    /// A track is no longer published.
    TrackUnpublished {
        /// The room.
        room: RoomId,
        /// The track.
        publication: Publication,
        /// Why.
        reason: Reason,
    },
    /// A recording began (its recorder receives the room's tracks).
    RecordingStarted {
        /// The room.
        room: RoomId,
        /// The recording.
        recording: RecordingId,
        /// The recorder writing it.
        recorder: UserId,
        /// Who started it.
        by: UserId,
    },
    /// A recording ended normally; its files are closed.
    RecordingStopped {
        /// The room.
        room: RoomId,
        /// The recording.
        recording: RecordingId,
        /// Why.
        reason: StopReason,
        /// The files.
        files: Vec<RecordedFile>,
    },
    /// A recording stopped abnormally.
    RecordingAborted {
        /// The room.
        room: RoomId,
        /// The recording.
        recording: RecordingId,
        /// Why.
        reason: AbortReason,
        /// Whether the call ended because of it.
        shut_down: bool,
    },
}

impl ServerEvent {
    /// The room the event is about.
    pub fn room(&self) -> &RoomId {
        match self {
            ServerEvent::RoomStarted { room }
            | ServerEvent::RoomFinished { room }
            | ServerEvent::ParticipantJoined { room, .. }
            | ServerEvent::ParticipantLeft { room, .. }
            | ServerEvent::TrackPublished { room, .. }
            | ServerEvent::TrackUnpublished { room, .. }
            | ServerEvent::RecordingStarted { room, .. }
            | ServerEvent::RecordingStopped { room, .. }
            | ServerEvent::RecordingAborted { room, .. } => room,
        }
    }

    /// The event's name, as `event` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::RoomStarted { .. } => "room_started",
            ServerEvent::RoomFinished { .. } => "room_finished",
            ServerEvent::ParticipantJoined { .. } => "participant_joined",
            ServerEvent::ParticipantLeft { .. } => "participant_left",
            ServerEvent::TrackPublished { .. } => "track_published",
            ServerEvent::TrackUnpublished { .. } => "track_unpublished",
            ServerEvent::RecordingStarted { .. } => "recording_started",
            ServerEvent::RecordingStopped { .. } => "recording_stopped",
            ServerEvent::RecordingAborted { .. } => "recording_aborted",
        }
    }
}

/// One webhook delivery's body: the event, its id (the same on every retry: a receiver drops
/// an id it has seen) and when the server saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Webhook {
    /// Unique per event: `{server run}-{number}`, numbers rising in the order of events.
    pub id: String,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: ServerEvent,
}

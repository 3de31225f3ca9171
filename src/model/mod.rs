//! The call's vocabulary: identifiers, participants, roles, call properties, reasons.
//!
//! These types travel on the wire (see `docs/protocol.md`) and inside [`CallEvent`](crate::CallEvent)s,
//! so all of them derive serde's traits: an application can forward any of them to a UI as JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::text::Text;

mod source;
mod statistics;
mod status;
pub use source::{StreamName, TrackSource};
pub use statistics::{
    CallStatistics, ConnectionStatistics, MemberLink, ParticipantStatistics, RoomStatistics,
    ServerTrackStatistics, TrackReceiver, TrackStatistics,
};
pub use status::{NetStatus, VolumeStatus};

/// Longest user or room id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest display name, in bytes.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// Largest in-call message content, in bytes of UTF-8.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Longest message content type string, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 128;
/// Largest invitation extra info, in bytes.
pub const MAX_INVITE_EXTRA_LEN: usize = 1024;
/// Most callees one invite request may name.
pub const MAX_INVITE_CALLEES: usize = 16;
/// Longest invitation timeout a client may ask for, in milliseconds (10 minutes).
pub const MAX_INVITE_TIMEOUT_MS: u64 = 600_000;
/// Largest participant custom state, in bytes.
pub const MAX_STATE_LEN: usize = 1024;
/// Longest custom call-property key, in bytes.
pub const MAX_PROPERTY_KEY_LEN: usize = 64;
/// Largest custom call-property value, in bytes.
pub const MAX_PROPERTY_VALUE_LEN: usize = 1024;
/// Most custom call-property keys a room holds.
pub const MAX_PROPERTY_KEYS: usize = 64;

/// Checks a user or room id: 1 to 64 bytes of `[A-Za-z0-9+_.-]`, not starting with `-`, `_` or `.`.
pub fn valid_id(id: &str) -> bool {
    let Some(first) = id.bytes().next() else {
        return false;
    };
    id.len() <= MAX_ID_LEN
        && !matches!(first, b'-' | b'_' | b'.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'_' | b'.' | b'-'))
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cloning one shares its bytes (see [`Text`]).
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Text);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Text::from(s))
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Text::from(s))
            }
        }
        impl From<Text> for $name {
            fn from(s: Text) -> Self {
                Self(s)
            }
        }
        impl From<$name> for Text {
            fn from(id: $name) -> Self {
                id.0
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == **other
            }
        }
    };
}

mod server_api;
pub use server_api::{
    DEFAULT_EMPTY_TIMEOUT_SECS, MAX_SPEAKER_INTERVAL_MS, MIN_SPEAKER_INTERVAL_MS, RoomDetails,
    RoomOptions, RoomSummary, ServerEvent, Webhook,
};

mod recording;
mod video;
pub use recording::{
    AbortReason, MAX_RECORDING_DURATION_MS, RecordedFile, RecordingId, RecordingJob,
    RecordingOptions, RecordingPolicy, RecordingState, StopReason,
};
pub use video::VideoSize;

string_id!(
    /// A user's id: who is logged in. At most 64 bytes of `[A-Za-z0-9+_.-]`.
    UserId
);
string_id!(
    /// A room's id (the seed SDK's "serial id"). Same rules as [`UserId`].
    RoomId
);

/// Identifies one request of a [`Call`](crate::Call); its outcome event carries the same id.
///
/// Ids are chosen by the client, start at 1 and grow by one per request on each `Call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationId(pub u64);

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}", self.0)
    }
}

/// Identifies one invitation; chosen by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InvitationId(pub u64);

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invitation#{}", self.0)
    }
}

/// An invitation to a call, as both its caller and its callee see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The invitation's id.
    pub id: InvitationId,
    /// The room the callee is invited to.
    pub room: RoomId,
    /// Who invites.
    pub caller: UserId,
    /// The caller's display name.
    pub caller_name: String,
    /// Who is invited.
    pub callee: UserId,
    /// The callee's display name (its user id while it is not connected).
    pub callee_name: String,
    /// Whether the caller asks for video.
    pub video: bool,
    /// Free-form information from the caller (at most 1 KiB).
    pub extra: String,
    /// How long the invitation stays open, in milliseconds from when it was made.
    pub timeout_ms: u64,
}

/// A callee an invite request could not reach, and why (`Offline`, `Busy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteFailure {
    /// The callee.
    pub user_id: UserId,
    /// Why no invitation was made.
    pub reason: Reason,
}

/// Why a callee turns an invitation down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// No, thanks (the caller sees reason `Rejected`).
    Declined,
    /// In another call (the caller sees reason `Busy`).
    Busy,
}

impl Rejection {
    /// The reason the caller is given.
    pub fn reason(self) -> Reason {
        match self {
            Rejection::Declined => Reason::Rejected,
            Rejection::Busy => Reason::Busy,
        }
    }
}

/// Which of a member's two peer connections a media frame is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaConnection {
    /// The one the member publishes on (the client offers).
    Publish,
    /// The one the member receives on (the server offers).
    Subscribe,
}

impl MediaConnection {
    /// The wire name: `publish` or `subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaConnection::Publish => "publish",
            MediaConnection::Subscribe => "subscribe",
        }
    }
}

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaKind {
    /// Audio (Opus).
    Audio,
    /// Video (VP8).
    Video,
}

/// A track a member publishes to its room.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Publication {
    /// `"{user_id}/{source}"`: unique in the room, and the track id subscribers receive it under.
    pub id: String,
    /// Who publishes it.
    pub participant: UserId,
    /// Microphone, camera or screen.
    pub source: TrackSource,
    /// Audio or video.
    pub kind: MediaKind,
    /// Whether the publisher has muted it (it sends nothing meanwhile).
    #[serde(default)]
    pub muted: bool,
}

impl Publication {
    /// The publication an id (`"{user_id}/{source}"`) names, if it names one.
    pub fn from_id(id: &str) -> Option<Self> {
        let (user, source) = id.rsplit_once('/')?;
        Some(Publication::new(
            UserId::from(user),
            TrackSource::from_track_id(source)?,
        ))
    }

    /// The publication of `source` by `participant`.
    pub fn new(participant: UserId, source: TrackSource) -> Self {
        Publication {
            id: format!("{participant}/{}", source.as_str()),
            participant,
            source,
            kind: source.kind(),
            muted: false,
        }
    }
}

/// A participant's role in a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// The seed SDK's "main guest": may kick, end the call, set roles, recording and custom properties.
    Host,
    /// An ordinary member.
    #[default]
    Guest,
    /// A recorder, not a person: it receives every track and writes them to files. It
    /// publishes nothing, is never made host, and its seat does not count towards the room's
    /// limit. Show it as "this call is being recorded", not as a tile.
    Recorder,
}

/// One member of a room, as every member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Who it is.
    pub user_id: UserId,
    /// The name to show.
    pub display_name: String,
    /// Host or guest.
    pub role: Role,
    /// Whether the participant says its microphone is on.
    pub audio: bool,
    /// Whether the participant says its camera is on.
    pub video: bool,
    /// Free-form state the participant publishes (at most 1 KiB).
    pub state: String,
    /// Whether the participant's connection to the server is up (the seed's net status).
    #[serde(default)]
    pub connection: ConnectionState,
    /// How loud its microphone is (the seed's volume status); absent on the wire when `none`.
    #[serde(default, skip_serializing_if = "VolumeStatus::is_none")]
    pub volume: VolumeStatus,
    /// How well its media gets through (the seed's net status), as the server measures it;
    /// `Disconnected` while its connection is lost. Absent on the wire when `very_good`.
    #[serde(default, skip_serializing_if = "NetStatus::is_very_good")]
    pub net: NetStatus,
    /// The extra cameras and screens it publishes now, in the order their media reached the
    /// server (absent on the wire when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<TrackSource>,
}

/// A member's connection to the server, as the others see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected.
    #[default]
    Connected,
    /// The member's connection was lost; its seat is kept for the server's grace period, after
    /// which it leaves with reason `Network` unless it comes back.
    Reconnecting,
}

/// Which fields of a [`Participant`] an update changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantChanges {
    /// `audio` changed.
    pub audio: bool,
    /// `video` changed.
    pub video: bool,
    /// `display_name` changed.
    pub display_name: bool,
    /// `role` changed.
    pub role: bool,
    /// `state` changed.
    pub state: bool,
    /// `connection` changed (lost, or back).
    #[serde(default)]
    pub connection: bool,
    /// `volume` changed (absent on the wire when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volume: bool,
    /// `net` changed (absent on the wire when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub net: bool,
    /// `streams` changed: an extra camera or screen was published or unpublished (absent on
    /// the wire when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub streams: bool,
}

impl ParticipantChanges {
    /// True when no field changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A member who is speaking now, with how loud (see [`MediaEvent::ActiveSpeakers`](crate::MediaEvent::ActiveSpeakers)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSpeaker {
    /// Who.
    pub user_id: UserId,
    /// The mean level of its speech over the last second, in −dBov as RFC 6464 counts it: 0
    /// is the loudest, 127 silence (speech is typically 20 to 40).
    pub level_dbov: u8,
}

/// Who shares their screen, if anyone (one sharer per room).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenShare {
    /// The sharing participant.
    pub user_id: UserId,
    /// The media stream carrying the screen (chosen by the sharer).
    pub stream_id: String,
}

/// The call's shared properties, the same for every member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallProperties {
    /// The current screen sharer.
    pub screen_share: Option<ScreenShare>,
    /// Recording state.
    pub recording: RecordingState,
    /// Application key/values (at most 64 keys, keys ≤ 64 bytes, values ≤ 1 KiB).
    pub custom: BTreeMap<String, String>,
}

/// Which call properties a change touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyChanges {
    /// The screen sharer changed.
    pub screen_share: bool,
    /// The recording state changed.
    pub recording: bool,
    /// Custom keys that were set or removed.
    pub custom: Vec<String>,
}

impl PropertyChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.screen_share && !self.recording && self.custom.is_empty()
    }
}

/// A change of call properties requested by a member. Fields left `None` stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyUpdate {
    /// `Some(Some(s))` starts sharing (the sender must be `s.user_id`, or the host);
    /// `Some(None)` stops it (the sharer or the host).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub screen_share: Option<Option<ScreenShare>>,
    /// Refused (`invalid_param`): the recording state follows the recorder; use
    /// [`Call::start_recording`](crate::Call::start_recording) and
    /// [`Call::stop_recording`](crate::Call::stop_recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<bool>,
    /// Keys to set (`Some`) or remove (`None`) (host only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, Option<String>>,
}

/// A change of the sender's own participant fields. Fields left `None` stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantUpdate {
    /// New microphone flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
    /// New camera flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New custom state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl PropertyUpdate {
    /// Starts sharing the screen as `user_id` with stream `stream_id`.
    pub fn share_screen(mut self, user_id: UserId, stream_id: impl Into<String>) -> Self {
        self.screen_share = Some(Some(ScreenShare {
            user_id,
            stream_id: stream_id.into(),
        }));
        self
    }

    /// Stops the screen share.
    pub fn stop_screen_share(mut self) -> Self {
        self.screen_share = Some(None);
        self
    }

    /// Sets [`PropertyUpdate::recording`] (refused by the server: use
    /// [`Call::start_recording`](crate::Call::start_recording)).
    pub fn recording(mut self, on: bool) -> Self {
        self.recording = Some(on);
        self
    }

    /// Sets custom property `key` to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), Some(value.into()));
        self
    }

    /// Removes custom property `key`.
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.custom.insert(key.into(), None);
        self
    }
}

impl ParticipantUpdate {
    /// Sets the microphone flag.
    pub fn audio(mut self, on: bool) -> Self {
        self.audio = Some(on);
        self
    }

    /// Sets the camera flag.
    pub fn video(mut self, on: bool) -> Self {
        self.video = Some(on);
        self
    }

    /// Sets the display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the custom state.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

/// Whom an in-call message was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageScope {
    /// To one member.
    OneToOne,
    /// To every other member of the room.
    Group,
}

/// Why someone left a room, why a join failed, or why a call closed.
///
/// Covers the reasons of the seed SDK; new ones may be added, so match with a `_` arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// No particular reason.
    None,
    /// The request needed a logged-in session.
    NotLoggedIn,
    /// A peer stopped answering in time.
    Timeout,
    /// The connection was lost.
    Network,
    /// Already in a room.
    AlreadyJoined,
    /// Removed by a host.
    Kicked,
    /// The user is not connected.
    Offline,
    /// Left on purpose (the user's own leave or close).
    Quit,
    /// The call was ended for everyone.
    Over,
    /// The room is full.
    Full,
    /// A password or token was refused.
    InvalidPassword,
    /// Something failed inside this process.
    InternalError,
    /// The server failed.
    ServerError,
    /// A parameter was invalid.
    InvalidParam,
    /// The server is shutting down.
    ServerShutdown,
    /// Anything else.
    Other,
    /// The callee is in another call.
    Busy,
    /// An invitation was not answered in time.
    NoResponse,
    /// The caller withdrew the invitation.
    Canceled,
    /// The callee declined the invitation.
    Rejected,
    /// Another device of the same user accepted the invitation.
    AcceptedElsewhere,
    /// Another device of the same user rejected the invitation.
    RejectedElsewhere,
    /// Another connection resumed this session (the user's own, after a network change).
    Replaced,
    /// The session's access token expired and was not refreshed in time.
    TokenExpired,
    /// The session's access token was revoked.
    TokenRevoked,
    /// The call ended because its required recording failed
    /// ([`RecordingPolicy::Required`]).
    RecordingFailed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{self:?}"));
        f.write_str(&s)
    }
}

/// serde helper so `Option<Option<T>>` tells "absent" from `null`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// How long a ban lasts: the `ban` of a `kick` (see [`Call::ban`](crate::Call::ban)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BanTerm {
    /// For this many milliseconds from the ban; absent: for as long as the room exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
}

impl BanTerm {
    /// Until the room ends (its last member leaves, or a host ends the call).
    pub fn room() -> Self {
        BanTerm { for_ms: None }
    }

    /// For this long (whether or not the room lives that long: a room made again under the
    /// same id keeps the ban).
    pub fn lasting(duration: std::time::Duration) -> Self {
        BanTerm {
            for_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// Longest ban a host may set: a year.
pub const MAX_BAN_MS: u64 = 365 * 24 * 3600 * 1000;

/// A user banned from a room (an entry of [`Call::list_bans`](crate::Call::list_bans)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ban {
    /// Who is banned.
    pub user_id: UserId,
    /// Until when, in milliseconds since the Unix epoch; absent: until the room ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// The host who banned them.
    pub by: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(valid_id("alice"));
        assert!(valid_id("a+b_c.d-e9"));
        assert!(valid_id(&"x".repeat(64)));
        assert!(!valid_id(&"x".repeat(65)));
        assert!(!valid_id(""));
        assert!(!valid_id("-a"));
        assert!(!valid_id("_a"));
        assert!(!valid_id(".a"));
        assert!(!valid_id("a b"));
        assert!(!valid_id("é"));
    }

    #[test]
    fn screen_share_update_tells_absent_from_null() {
        let absent: PropertyUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.screen_share, None);
        let stop: PropertyUpdate = serde_json::from_str(r#"{"screen_share":null}"#).unwrap();
        assert_eq!(stop.screen_share, Some(None));
        assert_eq!(
            serde_json::to_string(&stop).unwrap(),
            r#"{"screen_share":null}"#
        );
    }

    #[test]
    fn publication_ids_round_trip() {
        let p = Publication::new("alice".into(), TrackSource::Screen);
        assert_eq!(p.id, "alice/screen");
        assert_eq!(Publication::from_id(&p.id), Some(p));
        assert_eq!(Publication::from_id("alice/desk"), None);
        assert_eq!(Publication::from_id("alice"), None);
    }

    #[test]
    fn reason_displays_its_wire_name() {
        assert_eq!(Reason::AlreadyJoined.to_string(), "already_joined");
    }
}

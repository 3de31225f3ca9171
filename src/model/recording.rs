//! Recording: what a host asks for, the state every member sees, and how a recording ends.

use serde::{Deserialize, Serialize};

use std::fmt;

use super::{RoomId, Text, TrackSource, UserId};

string_id!(
    /// A recording's id, made by the server when a host starts one (`rec-…`).
    RecordingId
);

/// What happens to the call when its recording fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordingPolicy {
    /// A failed recording is reported to every member (`Aborted`, `shut_down: false`) and the
    /// call goes on.
    #[default]
    Optional,
    /// Compliance: the call may not go on unrecorded. If the recording fails, the server ends
    /// the call for everyone (`Aborted` with `shut_down: true`, then `Left` with
    /// [`Reason::RecordingFailed`](super::Reason::RecordingFailed)).
    Required,
}

/// Longest recording a host may ask for: 24 hours.
pub const MAX_RECORDING_DURATION_MS: u64 = 24 * 3600 * 1000;

/// What to record and for how long. `Default`: audio and video, [`RecordingPolicy::Optional`],
/// no limits beyond the server's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordingOptions {
    /// Record audio tracks.
    #[serde(default = "yes")]
    pub audio: bool,
    /// Record video tracks (cameras and screen shares).
    #[serde(default = "yes")]
    pub video: bool,
    /// What a failure does to the call.
    #[serde(default)]
    pub policy: RecordingPolicy,
    /// Stop (reason `limit_reached`) after this many milliseconds (at most 24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<u64>,
    /// Stop (reason `limit_reached`) once the files hold this many bytes in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for RecordingOptions {
    fn default() -> Self {
        RecordingOptions {
            audio: true,
            video: true,
            policy: RecordingPolicy::Optional,
            max_duration_ms: None,
            max_bytes: None,
        }
    }
}

impl RecordingOptions {
    /// Records audio (`true`, the default) or not.
    pub fn audio(mut self, on: bool) -> Self {
        self.audio = on;
        self
    }
    /// Records video (`true`, the default) or not.
    pub fn video(mut self, on: bool) -> Self {
        self.video = on;
        self
    }
    /// Sets the failure policy.
    pub fn policy(mut self, policy: RecordingPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Stops the recording after `duration`.
    pub fn max_duration(mut self, duration: std::time::Duration) -> Self {
        self.max_duration_ms = Some(duration.as_millis().min(u128::from(u64::MAX)) as u64);
        self
    }
    /// Stops the recording once its files hold `bytes`.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Checks the options: something to record, limits above zero and within 24 hours.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.audio && !self.video {
            return Err("a recording needs audio, video or both");
        }
        match self.max_duration_ms {
            Some(0) => return Err("max_duration_ms must be above 0"),
            Some(ms) if ms > MAX_RECORDING_DURATION_MS => {
                return Err("max_duration_ms is at most 24 hours");
            }
            _ => {}
        }
        if self.max_bytes == Some(0) {
            return Err("max_bytes must be above 0");
        }
        Ok(())
    }
}

/// Why a recording ended normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// A host stopped it.
    Requested,
    /// It reached its maximum duration or size.
    LimitReached,
    /// The call ended (a host ended it, or everyone left).
    RoomEnded,
}

/// Why a recording stopped abnormally (the seed's "delivery abort").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AbortReason {
    /// Writing the files failed (a full disk, a size limit, a storage error).
    StorageFailed,
    /// The recorder's connection to the server, or its process, was lost.
    RecorderLost,
    /// No media reached the recorder for too long while unmuted tracks were published.
    NoMedia,
    /// No recorder took the recording in time (none registered, or none answered).
    NoRecorder,
    /// The recorder failed for another reason (it could not join or receive media).
    RecorderFailed,
}

/// One file of a recording, as the recorder wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedFile {
    /// The file's name in the recording's directory.
    pub name: String,
    /// Whose media it holds.
    pub participant: UserId,
    /// Which of their tracks.
    pub sources: Vec<TrackSource>,
    /// Its size.
    pub bytes: u64,
    /// From its first frame to its last, in milliseconds.
    pub duration_ms: u64,
    /// When its first frame was received, in milliseconds from the start of the recording
    /// (to line up the files of participants who joined later).
    pub start_ms: u64,
}

/// The room's recording state (a call property): idle → starting → recording → stopping →
/// idle, or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordingState {
    /// Not recording.
    #[default]
    Idle,
    /// A host started a recording; a recorder is joining.
    Starting {
        /// The recording.
        recording: RecordingId,
        /// The host who started it.
        by: UserId,
    },
    /// Recording.
    Recording {
        /// The recording.
        recording: RecordingId,
        /// The host who started it.
        by: UserId,
        /// When recording began (milliseconds since the Unix epoch).
        since: u64,
        /// The recorder writing it (a member with the `recorder` role).
        recorder: UserId,
    },
    /// A host stopped it (or a limit was reached); the recorder is closing its files.
    Stopping {
        /// The recording.
        recording: RecordingId,
        /// The host who started it.
        by: UserId,
        /// The recorder writing it.
        recorder: UserId,
    },
    /// The last recording stopped abnormally; a host may start another.
    Failed {
        /// The recording.
        recording: RecordingId,
        /// Why.
        reason: AbortReason,
        /// The recorder that failed, if one had taken the recording.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recorder: Option<UserId>,
    },
}

impl RecordingState {
    /// The recording under way (starting, recording or stopping), if any.
    pub fn active(&self) -> Option<&RecordingId> {
        match self {
            RecordingState::Starting { recording, .. }
            | RecordingState::Recording { recording, .. }
            | RecordingState::Stopping { recording, .. } => Some(recording),
            _ => None,
        }
    }
}

/// A recording job, as the server hands it to a recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordingJob {
    /// The recording.
    pub recording: RecordingId,
    /// The room to record.
    pub room: RoomId,
    /// What to record.
    pub options: RecordingOptions,
}

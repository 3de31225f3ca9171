//! The frames a client sends ([`ClientFrame`], with the recorder's [`RecorderReport`]) and
//! their decoder, which tells bad JSON, unknown types and bad fields apart.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, FrameError, IceCandidate, MediaConnection, Refusal};
use crate::model::{
    AbortReason, BanTerm, InvitationId, OperationId, ParticipantUpdate, PropertyUpdate,
    RecordedFile, RecordingId, RecordingOptions, Rejection, Role, RoomId, StopReason, Text,
    TrackSource, UserId,
};

tagged_frames! {
    /// A frame a client sends.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    #[non_exhaustive]
    pub enum ClientFrame {
        /// First frame of a connection: log in with an access token.
        Hello {
            /// Must equal [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
            version: u32,
            /// A signed access token (see `docs/security.md`).
            token: String,
        },
        /// First frame of a connection that takes over a session whose connection was lost
        /// (instead of `hello`): the server replays what the client missed, then goes on.
        Resume {
            /// Must equal [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
            version: u32,
            /// A valid access token of the session's user.
            token: String,
            /// The session's `resume_key` from its `welcome`.
            resume_key: String,
            /// The highest personal frame number `n` the client has taken (0 for none).
            #[serde(default)]
            received: u64,
            /// The room the client is in, as far as it knows.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            room: Option<RoomId>,
            /// The last room event `seq` of that room the client has taken.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
        },
        /// Keepalive and acknowledgement: the server answers `pong` and forgets what the client
        /// says it has taken (it will not be replayed).
        Ping {
            /// The highest personal frame number `n` the client has taken.
            #[serde(default)]
            received: u64,
            /// The room the client is in.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            room: Option<RoomId>,
            /// The last room event `seq` it has taken.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
        },
        /// Join a room (created if absent; a server-made id if `room` is absent).
        Join {
            /// Request id.
            op: OperationId,
            /// The room to join.
            #[serde(default)]
            room: Option<RoomId>,
            /// Display name in this room (default: the one given at login).
            #[serde(default)]
            display_name: Option<String>,
            /// Initial microphone flag.
            #[serde(default)]
            audio: bool,
            /// Initial camera flag.
            #[serde(default)]
            video: bool,
            /// Initial custom state.
            #[serde(default)]
            state: String,
            /// Receive every track published in the room (default); `false`: only the tracks asked
            /// for with `subscribe`.
            #[serde(default = "yes")]
            auto_subscribe: bool,
        },
        /// Leave the current room.
        Leave {
            /// Request id.
            op: OperationId,
        },
        /// End the call for every member (host only).
        End {
            /// Request id.
            op: OperationId,
        },
        /// Remove a member (host only), and with `ban` keep them out: a banned user's joins,
        /// invitation acceptances and re-creations of the room are refused (`banned`). With a
        /// ban, the user need not be in the room.
        Kick {
            /// Request id.
            op: OperationId,
            /// Who to remove.
            user_id: UserId,
            /// Ban them too, for this long.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            ban: Option<BanTerm>,
        },
        /// Lift a ban (host with `moderate`).
        Unban {
            /// Request id.
            op: OperationId,
            /// Whose ban.
            user_id: UserId,
        },
        /// List the room's bans (host with `moderate`); answered by `bans`.
        ListBans {
            /// Request id.
            op: OperationId,
        },
        /// Go on with a new access token of the same user before the current one expires; the
        /// new token's expiry and rights hold from now on. Answered by `refreshed`.
        Refresh {
            /// Request id.
            op: OperationId,
            /// The new token.
            token: String,
        },
        /// Refuse tokens from now on (needs the `admin` grant): the one with id `jti`, or every
        /// token of `user_id` issued before `issued_before` (seconds since the Unix epoch).
        /// Sessions logged in with such a token end (`token_revoked`).
        Revoke {
            /// Request id.
            op: OperationId,
            /// A token id.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            jti: Option<String>,
            /// A user whose tokens to revoke (with `issued_before`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            user_id: Option<UserId>,
            /// Tokens of `user_id` issued before this are revoked.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            issued_before: Option<u64>,
        },
        /// Change a member's role (host only).
        SetRole {
            /// Request id.
            op: OperationId,
            /// Whose role.
            user_id: UserId,
            /// The new role.
            role: Role,
        },
        /// Change one's own participant fields.
        Update {
            /// Request id.
            op: OperationId,
            /// The fields to change.
            #[serde(flatten)]
            update: ParticipantUpdate,
        },
        /// Change call properties.
        SetProperties {
            /// Request id.
            op: OperationId,
            /// The properties to change.
            #[serde(flatten)]
            update: PropertyUpdate,
        },
        /// Send an in-call message.
        SendMessage {
            /// Request id.
            op: OperationId,
            /// One member, or everyone else when absent.
            #[serde(default)]
            to: Option<UserId>,
            /// The sender's own content type string (e.g. `text/plain`).
            content_type: Text,
            /// The content, at most 4 KiB of UTF-8.
            content: Text,
        },
        /// Invite users to the current room, or, outside a room, to a new room the sender joins.
        Invite {
            /// Request id.
            op: OperationId,
            /// Who to invite (1 to 16 distinct users).
            callees: Vec<UserId>,
            /// Whether the call is a video call.
            #[serde(default)]
            video: bool,
            /// Free-form information for the callees (at most 1 KiB).
            #[serde(default)]
            extra: String,
            /// How long the invitations stay open (default: the server's, 30 s unless configured).
            #[serde(default)]
            timeout_ms: Option<u64>,
        },
        /// Withdraw an invitation the sender made.
        CancelInvite {
            /// Request id.
            op: OperationId,
            /// The invitation.
            invitation: InvitationId,
        },
        /// Accept an invitation: join its room (leaving the current one, if any).
        AcceptInvite {
            /// Request id.
            op: OperationId,
            /// The invitation.
            invitation: InvitationId,
            /// Join with the camera flag on.
            #[serde(default)]
            video: bool,
        },
        /// An SDP offer for the sender's publishing peer connection (see docs/protocol.md, Media).
        PublishOffer {
            /// Request id.
            op: OperationId,
            /// The offer, with its ICE candidates.
            sdp: String,
            /// The source this offer publishes (one of the tracks it sends). Without it, every
            /// source the offer sends that is not published yet is.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            source: Option<TrackSource>,
        },
        /// Stop publishing a source.
        Unpublish {
            /// Request id.
            op: OperationId,
            /// The source.
            source: TrackSource,
        },
        /// Mute or unmute a published source: your own, or (with `user_id`, as a host with the
        /// `moderate` grant) another member's. A host mutes others but never unmutes them: only
        /// a track's publisher unmutes it. The server enforces a mute: a muted track's packets
        /// reach no receiver and no recording, whatever its publisher keeps sending.
        Mute {
            /// Request id.
            op: OperationId,
            /// The source.
            source: TrackSource,
            /// Muted or not.
            muted: bool,
            /// Whose track: absent (or your own id) for your own.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            user_id: Option<UserId>,
        },
        /// Receive a track (for members who joined without `auto_subscribe`, or after `unsubscribe`).
        Subscribe {
            /// Request id.
            op: OperationId,
            /// The publication id, `"{user_id}/{source}"`.
            publication: String,
        },
        /// Stop receiving a track.
        Unsubscribe {
            /// Request id.
            op: OperationId,
            /// The publication id.
            publication: String,
        },
        /// Receive a video track at (at most) this size: the server forwards the largest
        /// simulcast layer that fits, or the smallest when none does. Holds until the next
        /// request for the same track (a receiver that never asks gets the largest layer).
        RequestVideo {
            /// Request id.
            op: OperationId,
            /// The publication id.
            publication: String,
            /// Width in pixels (1 to 16,384).
            width: u32,
            /// Height in pixels (1 to 16,384).
            height: u32,
        },
        /// An ICE candidate of one of the client's peer connections (no answer is sent).
        IceCandidate {
            /// Which connection.
            connection: MediaConnection,
            /// The candidate.
            candidate: IceCandidate,
        },
        /// The client's side of one of its peer connections failed (ICE or DTLS down); no answer
        /// is sent. For `publish` the client follows with an ICE-restart `publish_offer`; for
        /// `subscribe` the server sends an ICE-restart `subscribe_offer`. Until the connection is
        /// back (at most the server's grace period) the member's publications stay.
        MediaInterrupted {
            /// Which connection.
            connection: MediaConnection,
        },
        /// The answer to the server's `subscribe_offer`.
        SubscribeAnswer {
            /// Request id.
            op: OperationId,
            /// The offer being answered.
            negotiation: u64,
            /// The answer, with its ICE candidates.
            sdp: String,
        },
        /// Start recording the room (host with the `record` grant). Answered by `done` once a
        /// recorder has the job; `recording_started` follows when it records.
        StartRecording {
            /// Request id.
            op: OperationId,
            /// What to record, the policy and the limits.
            #[serde(flatten)]
            options: RecordingOptions,
        },
        /// Stop the room's recording (host with the `record` grant); `recording_stopped`
        /// follows once the recorder has closed its files.
        StopRecording {
            /// Request id.
            op: OperationId,
        },
        /// A recorder (a session whose token has the `recorder` grant) offers to take
        /// recording jobs: the server sends it `record_job` frames from now on.
        RecorderReady {
            /// Request id.
            op: OperationId,
        },
        /// A recorder joins the room of one of its jobs, in the `recorder` role (answered by
        /// `joined`, like `join`). It receives every track of the room.
        RecorderJoin {
            /// Request id.
            op: OperationId,
            /// The job's recording.
            recording: RecordingId,
        },
        /// A recorder says how its job goes: recording, stopped (files closed), or failed.
        RecordingReport {
            /// The job's recording.
            recording: RecordingId,
            /// What happened.
            report: RecorderReport,
        },
        /// Turn an invitation down.
        RejectInvite {
            /// Request id.
            op: OperationId,
            /// The invitation.
            invitation: InvitationId,
            /// `declined` or `busy`.
            reason: Rejection,
        },
    }
}

fn yes() -> bool {
    true
}

/// What a recorder reports about its job (`recording_report`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecorderReport {
    /// It is in the room and writing.
    Recording,
    /// It closed its files (asked to, or a limit was reached).
    Stopped {
        /// Why.
        reason: StopReason,
        /// The files written.
        files: Vec<RecordedFile>,
    },
    /// It cannot go on.
    Failed {
        /// Why.
        reason: AbortReason,
        /// Details for logs.
        #[serde(default)]
        message: String,
    },
}

/// Decodes a client text frame, telling bad JSON, unknown types and bad fields apart and keeping
/// the request id when one can be read.
#[cfg(any(test, feature = "internals"))]
pub fn decode_client(text: &str) -> Result<ClientFrame, FrameError> {
    decode_client_within(text, super::MAX_FRAME_LEN)
}

/// [`decode_client`] with another size limit (a server's configured frame size); a frame over
/// `max_len` is refused before it is parsed.
pub fn decode_client_within(text: &str, max_len: usize) -> Result<ClientFrame, FrameError> {
    let err = |op, code, message: String| FrameError {
        op,
        refusal: Refusal { code, message },
    };
    if text.len() > max_len {
        return Err(err(
            None,
            ErrorCode::FrameTooLarge,
            format!("{} bytes; the limit is {max_len}", text.len()),
        ));
    }
    // A well-formed frame decodes in one pass; anything else is looked at again, closely, to
    // say what is wrong with it and keep its request id. (The one pass skips unknown fields
    // without serde_json's depth limit, so frames nested near the limit take the close look,
    // which applies it.)
    if nesting_below(text, 100)
        && let Ok(frame) = serde_json::from_str::<ClientFrame>(text)
    {
        return Ok(frame);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(None, ErrorCode::BadJson, e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(err(
            None,
            ErrorCode::InvalidFrame,
            "a frame must be a JSON object".into(),
        ));
    };
    let op = obj.get("op").and_then(|v| v.as_u64()).map(OperationId);
    let ty = match obj.get("type") {
        Some(serde_json::Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(err(
                op,
                ErrorCode::InvalidFrame,
                "`type` must be a string".into(),
            ));
        }
        None => return Err(err(op, ErrorCode::InvalidFrame, "missing `type`".into())),
    };
    if !ClientFrame::type_names().iter().any(|t| t == ty) {
        let shown: String = ty.chars().take(64).collect();
        return Err(err(
            op,
            ErrorCode::UnknownType,
            format!("unknown frame type `{shown}`"),
        ));
    }
    serde_json::from_value(value).map_err(|e| err(op, ErrorCode::InvalidFrame, e.to_string()))
}

/// Whether JSON `text` nests arrays and objects less than `limit` deep (strings are skipped).
pub(super) fn nesting_below(text: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth >= limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

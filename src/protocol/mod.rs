//! The wire protocol: JSON text frames over one WebSocket per logged-in user.
//!
//! `docs/protocol.md` is the public description of every frame here; change both together.
//! Every frame is a JSON object with a `"type"` field naming it. Requests carry a client-chosen
//! `op` id that the answer repeats. Room events carry the room's sequence number `seq`.

use serde::{Deserialize, Serialize};

mod error;
#[macro_use]
pub(crate) mod tagged;

pub(crate) use error::refuse;
pub use error::{ErrorCode, FrameError, Refusal};

use crate::model::{
    AbortReason, Ban, BanTerm, CallProperties, Invitation, InvitationId, InviteFailure,
    MessageScope, OperationId, Participant, ParticipantChanges, ParticipantUpdate, PropertyChanges,
    PropertyUpdate, Publication, Reason, RecordedFile, RecordingId, RecordingJob, RecordingOptions,
    Rejection, Role, RoomId, StopReason, Text, TrackSource, UserId,
};

/// `track_unpublished` without a reason (a server before reasons): unpublished on purpose.
fn unpublished_on_purpose() -> Reason {
    Reason::Quit
}

/// The protocol version this build speaks; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame the server interprets, in bytes; larger ones get a `frame_too_large` error.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

pub use crate::model::MediaConnection;

/// An ICE candidate sent as soon as it is found (trickle ICE); the fields of the browser API's
/// `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute (RFC 8839).
    pub candidate: String,
    /// The media section's `mid`.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
    /// The ICE username fragment.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// The state a resumed session is in when the server could not replay everything the client
/// missed (it kept less than the client was missing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resync {
    /// Frames the client missed that could not be replayed (lost).
    pub missed: u64,
    /// The highest personal frame number sent so far; the next one is `n + 1`.
    pub n: u64,
    /// The room the session is in now, as a `joined` frame would describe it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomState>,
    /// Open invitations to the user.
    #[serde(default)]
    pub invitations: Vec<Invitation>,
    /// Open invitations the session made.
    #[serde(default)]
    pub sent_invitations: Vec<Invitation>,
}

/// A room as it is at `seq` (the body of a resync).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    /// The room.
    pub room: RoomId,
    /// The room's sequence number this state reflects.
    pub seq: u64,
    /// Every member, in join order.
    pub participants: Vec<Participant>,
    /// The call properties.
    pub properties: CallProperties,
    /// The tracks members publish.
    #[serde(default)]
    pub publications: Vec<Publication>,
}

tagged_frames! {
    /// A frame a client sends.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    #[non_exhaustive]
    pub enum ClientFrame {
        /// First frame of a connection: log in with an access token.
        Hello {
            /// Must equal [`PROTOCOL_VERSION`].
            version: u32,
            /// A signed access token (see `docs/security.md`).
            token: String,
        },
        /// First frame of a connection that takes over a session whose connection was lost
        /// (instead of `hello`): the server replays what the client missed, then goes on.
        Resume {
            /// Must equal [`PROTOCOL_VERSION`].
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

fn ended_by_host() -> Reason {
    Reason::Over
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

tagged_frames! {
    /// A frame the server sends.
    #[derive(Clone, Debug, PartialEq, Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    #[non_exhaustive]
    pub enum ServerFrame {
        /// Answer to a valid `hello`.
        Welcome {
            /// The server's protocol version.
            version: u32,
            /// The logged-in user.
            user_id: UserId,
            /// The session's id on the server (for logs).
            session: u64,
            /// The key that lets a later connection `resume` this session (unguessable; valid
            /// only with a token of the session's user).
            #[serde(default)]
            resume_key: String,
            /// When the session's token expires (seconds since the Unix epoch): the session
            /// ends then (`goodbye` with `token_expired`) unless it is `refresh`ed.
            #[serde(default)]
            expires_at: u64,
        },
        /// Answer to `refresh`: the session now expires at `expires_at`.
        Refreshed {
            /// The request id.
            op: OperationId,
            /// When the new token expires (seconds since the Unix epoch).
            expires_at: u64,
        },
        /// Answer to `list_bans`.
        Bans {
            /// The request id.
            op: OperationId,
            /// The room.
            room: RoomId,
            /// The bans in force, by user id.
            bans: Vec<Ban>,
        },
        /// Answer to a valid `resume`: the next `replayed` frames are what the lost connection
        /// did not deliver, in their first order; live frames follow.
        Resumed {
            /// The session's id on the server.
            session: u64,
            /// How many frames follow as the replay.
            replayed: u64,
            /// Present when the server no longer held everything the client missed: the state
            /// as it is now, instead of the replay.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            resync: Option<Box<Resync>>,
        },
        /// Answer to `ping`.
        Pong {},
        /// Success answer to `join`, with the room as it is at `seq`.
        Joined {
            /// The request id.
            op: OperationId,
            /// The joined room.
            room: RoomId,
            /// The room's sequence number this snapshot reflects; later events count on from it.
            seq: u64,
            /// Every member, the joiner included, in join order.
            participants: Vec<Participant>,
            /// The call properties.
            properties: CallProperties,
            /// The tracks members publish.
            #[serde(default)]
            publications: Vec<Publication>,
        },
        /// Success answer to any other request.
        Done {
            /// The request id.
            op: OperationId,
            /// The room sequence number the request used, when it made a room event the sender does
            /// not otherwise receive (a group message).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
        },
        /// A refused request, or a frame the server could not take.
        Error {
            /// The request id, when the frame had a readable one.
            #[serde(default)]
            op: Option<OperationId>,
            /// What went wrong.
            code: ErrorCode,
            /// Details for humans.
            message: String,
        },
        /// A member joined.
        ParticipantJoined {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The new member.
            participant: Participant,
        },
        /// A member left (if it is you, you are out of the room).
        ParticipantLeft {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The member as it was.
            participant: Participant,
            /// Why.
            reason: Reason,
        },
        /// A member's fields changed.
        ParticipantUpdated {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The member as it is now.
            participant: Participant,
            /// Which fields changed.
            changes: ParticipantChanges,
        },
        /// Call properties changed.
        PropertiesChanged {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The properties as they are now.
            properties: CallProperties,
            /// What changed.
            changes: PropertyChanges,
            /// Who changed them.
            by: UserId,
        },
        /// An in-call message.
        Message {
            /// The room.
            room: RoomId,
            /// Room sequence number for group messages; absent for one-to-one messages.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
            /// The sender.
            from: UserId,
            /// One-to-one or group.
            scope: MessageScope,
            /// The sender's content type string.
            content_type: Text,
            /// The content.
            content: Text,
        },
        /// The call was ended for everyone; every member is out of the room.
        CallEnded {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The host who ended it (or, for `recording_failed`, the recording's host).
            by: UserId,
            /// Why: `over` (a host ended it) or `recording_failed` (its required recording
            /// failed).
            #[serde(default = "ended_by_host")]
            reason: Reason,
        },
        /// Answer to `invite`: who was invited, and who could not be. An invite sent from outside a
        /// room that reached someone is preceded by a `joined` frame with the same `op`.
        Invited {
            /// The request id.
            op: OperationId,
            /// The room the invitations are for (absent when no one could be invited from outside a
            /// room, so no room was made).
            #[serde(default)]
            room: Option<RoomId>,
            /// The invitations made, one per reachable callee.
            invitations: Vec<Invitation>,
            /// The callees not invited, with the reason (`offline`, `busy`).
            failed: Vec<InviteFailure>,
        },
        /// Someone invites you (sent to every connection of the callee).
        InviteReceived {
            /// The invitation.
            invitation: Invitation,
        },
        /// An invitation ended before you answered it (or was answered on another device), or an
        /// invitation you made ended because you left the call.
        InviteCanceled {
            /// The invitation.
            invitation: Invitation,
            /// `canceled`, `no_response`, `accepted_elsewhere`, `rejected_elsewhere`, `quit`,
            /// `network`, `kicked`, `over`.
            reason: Reason,
        },
        /// The callee accepted your invitation.
        InviteAccepted {
            /// The invitation.
            invitation: Invitation,
        },
        /// The callee turned your invitation down, or did not answer in time.
        InviteRejected {
            /// The invitation.
            invitation: Invitation,
            /// `rejected`, `busy` or `no_response`.
            reason: Reason,
        },
        /// The server's answer to `publish_offer`.
        PublishAnswer {
            /// The request id.
            op: OperationId,
            /// The answer, with the server's ICE candidates.
            sdp: String,
        },
        /// The server offers the tracks this connection subscribes to (a new offer whenever they
        /// change); answer with `subscribe_answer`.
        SubscribeOffer {
            /// Numbers the offers of this connection, from 1.
            negotiation: u64,
            /// The offer, with the server's ICE candidates.
            sdp: String,
        },
        /// A media failure no request waits for: a peer connection failed, the server could not
        /// make an offer, or a track cannot be forwarded.
        MediaFailed {
            /// Which connection.
            connection: MediaConnection,
            /// The publication it is about, if one.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            publication: Option<String>,
            /// Details for humans.
            message: String,
        },
        /// An ICE candidate of the server's side of one of this member's peer connections.
        IceCandidate {
            /// Which connection.
            connection: MediaConnection,
            /// The candidate.
            candidate: IceCandidate,
        },
        /// The server's side of one of this member's peer connections failed. For `publish`
        /// the member should send an ICE-restart `publish_offer`; for `subscribe` the server
        /// sends an ICE-restart `subscribe_offer` itself. If the connection is not back within
        /// `grace_ms`, the server closes its side (`media_lost`).
        MediaInterrupted {
            /// Which connection.
            connection: MediaConnection,
            /// How long the server waits for the connection to come back, in milliseconds.
            grace_ms: u64,
        },
        /// One of this member's peer connections failed and was not restored in time: the
        /// server closed its side. For `publish` the member's publications ended
        /// (`track_unpublished` with reason `network`) and a new `publish_offer` starts over on
        /// a new connection; for `subscribe` what it received ended, and the next
        /// `subscribe_offer` is for a new connection.
        MediaLost {
            /// Which connection.
            connection: MediaConnection,
            /// Details for humans.
            message: String,
        },
        /// A member started publishing a track.
        TrackPublished {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track.
            publication: Publication,
        },
        /// A track was muted or unmuted (`publication.muted` says which): by its publisher, or
        /// muted by a host or the application's backend (`by`).
        TrackMuted {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track as it is now.
            publication: Publication,
            /// Who muted it, when not its publisher: a host's user id, or the backend's (the
            /// user id of its `admin` token).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            by: Option<UserId>,
        },
        /// A member stopped publishing a track (or left).
        TrackUnpublished {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track.
            publication: Publication,
            /// Why: `quit` (unpublished), the member's reason for leaving, or `network` (its
            /// publishing connection failed and was not restored in time).
            #[serde(default = "unpublished_on_purpose")]
            reason: Reason,
        },
        /// To a recorder that said `recorder_ready`: record this room (join it with
        /// `recorder_join`).
        RecordJob {
            /// The job.
            job: RecordingJob,
        },
        /// To a recorder: stop recording (close the files, report `stopped`, leave the room).
        RecordStop {
            /// The job's recording.
            recording: RecordingId,
            /// Why.
            reason: StopReason,
        },
        /// The room's recording began: the recorder receives the room's tracks and writes them.
        RecordingStarted {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The recording.
            recording: RecordingId,
            /// The recorder writing it (a member with the `recorder` role).
            recorder: UserId,
            /// The host who started it.
            by: UserId,
        },
        /// The room's recording ended normally; its files are closed.
        RecordingStopped {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The recording.
            recording: RecordingId,
            /// Why it ended.
            reason: StopReason,
            /// The files written.
            files: Vec<RecordedFile>,
        },
        /// The room's recording stopped abnormally. With `shut_down`, the server ends the call
        /// (the recording was required): `call_ended` with reason `recording_failed` follows.
        RecordingAborted {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The recording.
            recording: RecordingId,
            /// The recorder that failed, if one had taken the job.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            recorder: Option<UserId>,
            /// Why.
            reason: AbortReason,
            /// Whether the server ends the call because of it.
            shut_down: bool,
        },
        /// The server is closing this connection.
        Goodbye {
            /// Why.
            reason: Reason,
            /// Whether the client should connect again (and `resume`): true when the server is
            /// draining for a restart, false when the session is over.
            #[serde(default)]
            reconnect: bool,
        },
    }
}

impl ServerFrame {
    /// The room and `seq` of a room event (a frame every member of the room receives, numbered
    /// by the room); `None` for the others.
    pub fn room_event(&self) -> Option<(&RoomId, u64)> {
        match self {
            ServerFrame::ParticipantJoined { room, seq, .. }
            | ServerFrame::ParticipantLeft { room, seq, .. }
            | ServerFrame::ParticipantUpdated { room, seq, .. }
            | ServerFrame::PropertiesChanged { room, seq, .. }
            | ServerFrame::CallEnded { room, seq, .. }
            | ServerFrame::TrackPublished { room, seq, .. }
            | ServerFrame::TrackMuted { room, seq, .. }
            | ServerFrame::TrackUnpublished { room, seq, .. }
            | ServerFrame::RecordingStarted { room, seq, .. }
            | ServerFrame::RecordingStopped { room, seq, .. }
            | ServerFrame::RecordingAborted { room, seq, .. }
            | ServerFrame::Message {
                room,
                seq: Some(seq),
                ..
            } => Some((room, *seq)),
            _ => None,
        }
    }

    /// Whether the frame is a personal one, numbered `n` per session and replayed on resume
    /// (every frame but room events and the connection's own `welcome`, `resumed`, `pong` and
    /// `goodbye`).
    pub fn is_personal(&self) -> bool {
        !matches!(
            self,
            ServerFrame::Welcome { .. }
                | ServerFrame::Resumed { .. }
                | ServerFrame::Pong {}
                | ServerFrame::Goodbye { .. }
        ) && self.room_event().is_none()
    }
}

/// Writes personal frame number `n` into an encoded frame, as its last field.
pub fn with_number(mut text: String, n: u64) -> String {
    use std::fmt::Write as _;
    if text.ends_with('}') {
        text.pop();
        let sep = if text.ends_with('{') { "" } else { "," };
        let _ = write!(text, "{sep}\"n\":{n}}}");
    }
    text
}

/// Reads the personal frame number of an encoded server frame: its last field `"n"`, as
/// [`with_number`] writes it (a string or a nested object cannot end the frame with a digit
/// before the closing brace, so the suffix is unambiguous).
pub fn frame_number(text: &str) -> Option<u64> {
    let body = text.strip_suffix('}')?;
    let digits = body.len() - body.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (head, number) = body.split_at(body.len() - digits);
    if head.ends_with(",\"n\":") || head.ends_with("{\"n\":") {
        number.parse().ok()
    } else {
        None
    }
}

/// Decodes a client text frame, telling bad JSON, unknown types and bad fields apart and keeping
/// the request id when one can be read.
#[cfg(any(test, feature = "internals"))]
pub fn decode_client(text: &str) -> Result<ClientFrame, FrameError> {
    decode_client_within(text, MAX_FRAME_LEN)
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
fn nesting_below(text: &str, limit: usize) -> bool {
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

/// Encodes a frame as JSON text.
pub fn encode<T: Serialize>(frame: &T) -> String {
    // Our frames are plain data with string keys: serialization cannot fail.
    serde_json::to_string(frame).expect("protocol frames always serialize")
}

#[cfg(test)]
mod tests;

//! The frames the server sends ([`ServerFrame`], with a resync's [`Resync`] and
//! [`RoomState`]), which of them are room events and which personal, and the personal frame
//! number `n` written into an encoded frame.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, IceCandidate, MediaConnection};
use crate::model::{
    AbortReason, Ban, CallProperties, Invitation, InviteFailure, MessageScope, OperationId,
    Participant, ParticipantChanges, PropertyChanges, Publication, Reason, RecordedFile,
    RecordingId, RecordingJob, RoomId, StopReason, Text, TrackSource, UserId,
};

/// `track_unpublished` without a reason (a server before reasons): unpublished on purpose.
fn unpublished_on_purpose() -> Reason {
    Reason::Quit
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

fn ended_by_host() -> Reason {
    Reason::Over
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
        /// Which simulcast streams of this member's published video somebody receives
        /// (dynacast): send those, pause the others until a later `publish_layers` names them.
        /// Sent when the set changes; until the first one, send every stream.
        PublishLayers {
            /// The video source.
            source: TrackSource,
            /// The streams (`a=rid` ids) to send, smallest first; never empty.
            rids: Vec<String>,
        },
        /// The room's active speakers changed (members, or their order): who speaks now, the
        /// loudest first (empty: nobody). Sent at most every half second (the server's
        /// speaker interval), and at once when a speaker mutes, unpublishes or leaves. Not
        /// kept for a resume: after reconnecting, count nobody as speaking until the next one.
        Speakers {
            /// The room.
            room: RoomId,
            /// Who speaks, the loudest first.
            speakers: Vec<crate::model::ActiveSpeaker>,
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
                | ServerFrame::Speakers { .. }
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

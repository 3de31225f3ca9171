//! The wire protocol: JSON text frames over one WebSocket per logged-in user.
//!
//! `docs/protocol.md` is the public description of every frame here; change both together.
//! Every frame is a JSON object with a `"type"` field naming it. Requests carry a client-chosen
//! `op` id that the answer repeats. Room events carry the room's sequence number `seq`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[macro_use]
pub(crate) mod tagged;

use crate::model::{
    CallProperties, Invitation, InvitationId, InviteFailure, MessageScope, OperationId,
    Participant, ParticipantChanges, ParticipantUpdate, PropertyChanges, PropertyUpdate,
    Publication, Reason, Rejection, Role, RoomId, Text, TrackSource, UserId,
};

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
        /// Remove a member (host only).
        Kick {
            /// Request id.
            op: OperationId,
            /// Who to remove.
            user_id: UserId,
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
        /// Mute or unmute a published source.
        Mute {
            /// Request id.
            op: OperationId,
            /// The source.
            source: TrackSource,
            /// Muted or not.
            muted: bool,
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
        /// The answer to the server's `subscribe_offer`.
        SubscribeAnswer {
            /// Request id.
            op: OperationId,
            /// The offer being answered.
            negotiation: u64,
            /// The answer, with its ICE candidates.
            sdp: String,
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

/// The `type` names of [`ClientFrame`], to tell an unknown type from a malformed known one.
const CLIENT_TYPES: &[&str] = &[
    "hello",
    "join",
    "leave",
    "end",
    "kick",
    "set_role",
    "update",
    "set_properties",
    "send_message",
    "invite",
    "cancel_invite",
    "accept_invite",
    "reject_invite",
    "publish_offer",
    "unpublish",
    "mute",
    "subscribe",
    "unsubscribe",
    "subscribe_answer",
    "ice_candidate",
];

impl ClientFrame {
    /// The request id, for frames that carry one.
    pub fn op(&self) -> Option<OperationId> {
        match self {
            ClientFrame::Hello { .. } | ClientFrame::IceCandidate { .. } => None,
            ClientFrame::Join { op, .. }
            | ClientFrame::Leave { op }
            | ClientFrame::End { op }
            | ClientFrame::Kick { op, .. }
            | ClientFrame::SetRole { op, .. }
            | ClientFrame::Update { op, .. }
            | ClientFrame::SetProperties { op, .. }
            | ClientFrame::SendMessage { op, .. }
            | ClientFrame::Invite { op, .. }
            | ClientFrame::CancelInvite { op, .. }
            | ClientFrame::AcceptInvite { op, .. }
            | ClientFrame::RejectInvite { op, .. }
            | ClientFrame::PublishOffer { op, .. }
            | ClientFrame::Unpublish { op, .. }
            | ClientFrame::Mute { op, .. }
            | ClientFrame::Subscribe { op, .. }
            | ClientFrame::Unsubscribe { op, .. }
            | ClientFrame::SubscribeAnswer { op, .. } => Some(*op),
        }
    }
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
            /// This connection's id on the server (for logs).
            session: u64,
        },
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
            /// The host who ended it.
            by: UserId,
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
        /// A member started publishing a track.
        TrackPublished {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track.
            publication: Publication,
        },
        /// A member muted or unmuted a track (`publication.muted` says which).
        TrackMuted {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track as it is now.
            publication: Publication,
        },
        /// A member stopped publishing a track (or left).
        TrackUnpublished {
            /// The room.
            room: RoomId,
            /// Room sequence number.
            seq: u64,
            /// The track.
            publication: Publication,
        },
        /// The server is closing this connection.
        Goodbye {
            /// Why.
            reason: Reason,
        },
    }
}

/// What went wrong with a request or frame; the `code` of an `error` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not JSON.
    #[error("the frame is not valid JSON")]
    BadJson,
    /// The frame's `type` is not one this server knows.
    #[error("unknown frame type")]
    UnknownType,
    /// A known frame with missing or mistyped fields.
    #[error("the frame's fields are missing or of the wrong type")]
    InvalidFrame,
    /// A text frame over the size limit.
    #[error("the frame is larger than the server accepts")]
    FrameTooLarge,
    /// A binary WebSocket frame (the protocol is text only).
    #[error("binary frames are not part of the protocol")]
    BinaryFrame,
    /// `hello` named a protocol version this server does not speak.
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    /// A request before `hello`.
    #[error("log in with hello first")]
    NotLoggedIn,
    /// A second `hello` on a logged-in connection.
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// A room request while not in a room.
    #[error("not in a room")]
    NotInRoom,
    /// `join` while already in a room.
    #[error("already in a room")]
    AlreadyJoined,
    /// The sender's role does not allow the request.
    #[error("the sender's role does not allow this")]
    PermissionDenied,
    /// Message content over 4 KiB.
    #[error("message content is larger than 4 KiB")]
    MessageTooLarge,
    /// The named user is not a member of the room.
    #[error("no such participant in the room")]
    NoSuchParticipant,
    /// A parameter breaks a rule (id syntax, size limit, …); the message says which.
    #[error("invalid parameter")]
    InvalidParam,
    /// Someone else already shares their screen.
    #[error("someone else is sharing their screen")]
    ScreenShareBusy,
    /// The user is already a member of that room on another connection.
    #[error("the user is already in this room on another connection")]
    DuplicateUser,
    /// The invitation does not exist (any more): answered, canceled or expired.
    #[error("no such invitation (answered, canceled or expired)")]
    NoSuchInvitation,
    /// The invitation is someone else's to answer or cancel.
    #[error("the invitation is not yours to answer or cancel")]
    NotInvited,
    /// The invited user is already a member of the room.
    #[error("the user is already in the room")]
    AlreadyInRoom,
    /// The user already has an open invitation to this room.
    #[error("the user already has an open invitation to this room")]
    AlreadyInvited,
    /// The client sends faster than it reads; the server closes the connection.
    #[error("the client does not keep up with its events")]
    SlowConsumer,
    /// A server fault.
    #[error("internal server error")]
    Internal,
    /// The access token is not a well-formed HS256 JWT with valid claims.
    #[error("malformed access token")]
    InvalidToken,
    /// The access token's signature does not match (wrong secret, or tampered claims).
    #[error("the access token's signature does not match")]
    BadSignature,
    /// The access token has expired.
    #[error("the access token has expired")]
    TokenExpired,
    /// The access token is not valid yet.
    #[error("the access token is not valid yet")]
    TokenNotYetValid,
    /// The access token's user id breaks the id rules.
    #[error("the access token's user id breaks the id rules")]
    InvalidUserId,
    /// The access token does not allow this room.
    #[error("the access token does not allow this room")]
    WrongRoom,
    /// The access token lacks the grant this request needs.
    #[error("the access token lacks the grant for this")]
    MissingGrant,
    /// Too many requests on this connection; slow down and retry.
    #[error("too many requests; slow down")]
    RateLimited,
    /// The room has as many members as the server allows.
    #[error("the room is full")]
    RoomFull,
    /// The server has as many rooms as it allows.
    #[error("the server has as many rooms as it allows")]
    TooManyRooms,
    /// The user has as many connections as the server allows.
    #[error("too many connections for this user")]
    TooManyConnections,
    /// The media request failed (bad SDP, negotiation error); the message says why.
    #[error("the media negotiation failed")]
    MediaFailed,
    /// The track is not published.
    #[error("no such track")]
    NoSuchTrack,
    /// A publishing offer while the previous one is still being answered.
    #[error("a media negotiation is in progress")]
    NegotiationBusy,
    /// A publishing offer with more media lines than the server takes.
    #[error("the offer has too many media lines")]
    TooManyTracks,
    /// A sending media line whose track id (`a=msid`) is not a source name, or of the wrong kind.
    #[error("the offer sends a track that is not a known source")]
    UnknownSource,
    /// A sending media line without the codec jrtc forwards (VP8 for video, Opus for audio).
    #[error("the offer's codecs are not supported")]
    UnsupportedCodec,
    /// A `subscribe_answer` to an offer that is not waiting for one (stale or unknown number).
    #[error("no such offer is waiting for an answer")]
    NoSuchOffer,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    #[error("unknown error code")]
    Unknown,
}

/// A refused request: the code and a human-readable detail. The one shape every refusal has
/// (the token check, the decoder, the server core); it becomes an `error` frame carrying the
/// request's op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// Details for humans.
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and detail.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Refuses with this code and detail.
pub(crate) fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(code, message))
}

/// A frame the server could not take, ready to be answered with an `error` frame.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct FrameError {
    /// The request id, if the frame had a readable one.
    pub op: Option<OperationId>,
    /// The error code.
    pub code: ErrorCode,
    /// Details.
    pub message: String,
}

impl FrameError {
    /// The `error` frame answering this.
    pub fn into_frame(self) -> ServerFrame {
        ServerFrame::Error {
            op: self.op,
            code: self.code,
            message: self.message,
        }
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
    let err = |op, code, message: String| FrameError { op, code, message };
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
    if !CLIENT_TYPES.contains(&ty) {
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
mod tests {
    use super::*;

    #[test]
    fn decode_tells_errors_apart() {
        assert_eq!(decode_client("{").unwrap_err().code, ErrorCode::BadJson);
        assert_eq!(
            decode_client("[1]").unwrap_err().code,
            ErrorCode::InvalidFrame
        );
        let e = decode_client(r#"{"type":"fly","op":7}"#).unwrap_err();
        assert_eq!(
            (e.code, e.op),
            (ErrorCode::UnknownType, Some(OperationId(7)))
        );
        let e = decode_client(r#"{"type":"kick","op":8}"#).unwrap_err();
        assert_eq!(
            (e.code, e.op),
            (ErrorCode::InvalidFrame, Some(OperationId(8)))
        );
        let big = format!(
            r#"{{"type":"leave","op":1,"pad":"{}"}}"#,
            "x".repeat(MAX_FRAME_LEN)
        );
        assert_eq!(
            decode_client(&big).unwrap_err().code,
            ErrorCode::FrameTooLarge
        );
    }

    #[test]
    fn frames_round_trip() {
        let f =
            decode_client(r#"{"type":"set_properties","op":3,"custom":{"topic":"q3","old":null}}"#)
                .unwrap();
        let ClientFrame::SetProperties { op, update } = &f else {
            panic!("{f:?}")
        };
        assert_eq!(*op, OperationId(3));
        assert_eq!(update.custom.get("old"), Some(&None));
        assert_eq!(decode_client(&encode(&f)).unwrap(), f);
        let e = ServerFrame::Error {
            op: None,
            code: ErrorCode::BadJson,
            message: "x".into(),
        };
        assert_eq!(serde_json::from_str::<ServerFrame>(&encode(&e)).unwrap(), e);
    }

    #[test]
    fn unknown_error_codes_decode() {
        let f: ServerFrame =
            serde_json::from_str(r#"{"type":"error","op":null,"code":"new_thing","message":""}"#)
                .unwrap();
        assert!(matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn the_tag_may_come_anywhere_and_only_once() {
        let first = decode_client(r#"{"type":"kick","op":5,"user_id":"bob"}"#).unwrap();
        let last = decode_client(r#"{"op":5,"user_id":"bob","type":"kick"}"#).unwrap();
        let middle: ClientFrame =
            serde_json::from_str(r#"{"op":5,"type":"kick","user_id":"bob","extra":[1,{"a":2}]}"#)
                .unwrap();
        assert_eq!(first, last);
        assert_eq!(first, middle);
        // Unknown fields are skipped either way; a flattened field still works with the tag later.
        let update: ClientFrame =
            serde_json::from_str(r#"{"op":2,"display_name":"Al","new":true,"type":"update"}"#)
                .unwrap();
        assert!(
            matches!(&update, ClientFrame::Update { update, .. } if update.display_name.as_deref() == Some("Al")),
            "{update:?}"
        );
        for text in [
            r#"{"type":"leave","op":1,"type":"end"}"#,
            r#"{"op":1,"type":"leave","type":"end"}"#,
        ] {
            let err = serde_json::from_str::<ClientFrame>(text).unwrap_err();
            assert!(err.to_string().contains("duplicate field `type`"), "{err}");
            // The server's decoder then reads it as JSON does: the last value counts.
            assert_eq!(
                decode_client(text).unwrap(),
                ClientFrame::End { op: OperationId(1) }
            );
        }
        for (text, says) in [
            (r#"{"op":1}"#, "missing field `type`"),
            (r#"{"type":"fly","op":1}"#, "unknown variant `fly`"),
            (r#"{"op":1,"type":"fly"}"#, "unknown variant `fly`"),
            (r#"{"type":"kick","op":1}"#, "missing field `user_id`"),
            (r#"{"type":7}"#, ""),
            (r#"[1]"#, "invalid type"),
        ] {
            let err = serde_json::from_str::<ClientFrame>(text).unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn every_server_frame_decodes_as_it_was_encoded() {
        let participant = Participant {
            user_id: "bob".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            audio: true,
            video: false,
            state: "{}".into(),
        };
        let frames = [
            ServerFrame::Welcome {
                version: 1,
                user_id: "bob".into(),
                session: 9,
            },
            ServerFrame::Joined {
                op: OperationId(1),
                room: "r".into(),
                seq: 3,
                participants: vec![participant.clone()],
                properties: CallProperties::default(),
                publications: vec![Publication::new("bob".into(), TrackSource::Camera)],
            },
            ServerFrame::Done {
                op: OperationId(2),
                seq: None,
            },
            ServerFrame::ParticipantJoined {
                room: "r".into(),
                seq: 4,
                participant,
            },
            ServerFrame::Message {
                room: "r".into(),
                seq: Some(5),
                from: "bob".into(),
                scope: MessageScope::Group,
                content_type: "text/plain".into(),
                content: "a \"quoted\" line\nand é".into(),
            },
            ServerFrame::Goodbye {
                reason: Reason::Timeout,
            },
        ];
        for frame in frames {
            let text = encode(&frame);
            assert!(text.starts_with(r#"{"type":"#), "{text}");
            assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
            // Through a `Value` (another decoder, key order not kept) it reads the same.
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::from_value::<ServerFrame>(value).unwrap(), frame);
        }
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert!(nesting_below(r#"{"a":[[1]]}"#, 4));
        assert!(!nesting_below(r#"{"a":[[[1]]]}"#, 4));
        assert!(nesting_below(r#"{"a":"[[[[[[\"[[[["}"#, 2));
        let deep = format!(
            r#"{{"type":"leave","op":1,"x":{}{}}}"#,
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(decode_client(&deep).unwrap_err().code, ErrorCode::BadJson);
    }
}

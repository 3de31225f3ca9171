//! How the server says no: the error codes, and the one refusal shape.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ServerFrame;
use crate::model::OperationId;

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
    /// `resume` named a session this server does not know (it restarted, or the session's
    /// grace period ran out): log in with `hello` and join again.
    #[error("no such session to resume")]
    UnknownSession,
    /// A request repeats an operation id the server has already answered and the client has
    /// acknowledged; it is not applied again.
    #[error("this operation was already answered")]
    DuplicateRequest,
    /// The request was sent on a session the server lost (it restarted); whether it took
    /// effect is unknown. Reported by the client library, never sent by the server.
    #[error("the session was lost before the request was answered")]
    SessionLost,
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
    /// The user is banned from this room (a host kicked it with a ban that still runs).
    #[error("banned from this room")]
    Banned,
    /// The room does not exist, and the access token does not allow creating rooms.
    #[error("no such room, and the access token does not allow creating one")]
    NoSuchRoom,
    /// The access token was revoked (by its id, or all of its user's tokens issued before a
    /// time).
    #[error("the access token was revoked")]
    TokenRevoked,
    /// The access token is valid for longer than this server allows (from its `iat`, or from
    /// now, to its `exp`).
    #[error("the access token is valid for longer than the server allows")]
    TokenTooLongLived,
    /// A `refresh` token names another user than the session's.
    #[error("the token is for another user")]
    WrongUser,
    /// `unban` named a user who is not banned from the room.
    #[error("the user is not banned from this room")]
    NotBanned,
    /// The room, the host (or the server) holds as many bans as it allows.
    #[error("too many bans")]
    TooManyBans,
    /// The server holds as many revocations as it allows.
    #[error("too many revocations")]
    TooManyRevocations,
    /// `start_recording` while a recording is starting, running or stopping.
    #[error("the room is already recording")]
    AlreadyRecording,
    /// `stop_recording` while nothing is recorded.
    #[error("the room is not recording")]
    NotRecording,
    /// `start_recording` on a server with no recorder to take the job.
    #[error("no recorder is available")]
    NoRecorder,
    /// A recorder's report or join names a recording that is not its own (or is over).
    #[error("no such recording")]
    NoSuchRecording,
    /// The server API was asked to make a room that exists.
    #[error("the room exists")]
    RoomExists,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    #[error("unknown error code")]
    Unknown,
}

impl ErrorCode {
    /// Every code a server sends (not [`SessionLost`](Self::SessionLost), which a client makes
    /// up, nor [`Unknown`](Self::Unknown)).
    pub const SENT: [ErrorCode; 55] = {
        use ErrorCode::*;
        [
            BadJson,
            UnknownType,
            InvalidFrame,
            FrameTooLarge,
            BinaryFrame,
            UnsupportedVersion,
            NotLoggedIn,
            AlreadyLoggedIn,
            NotInRoom,
            AlreadyJoined,
            PermissionDenied,
            MessageTooLarge,
            NoSuchParticipant,
            InvalidParam,
            ScreenShareBusy,
            DuplicateUser,
            NoSuchInvitation,
            NotInvited,
            AlreadyInRoom,
            AlreadyInvited,
            SlowConsumer,
            Internal,
            InvalidToken,
            BadSignature,
            TokenExpired,
            TokenNotYetValid,
            InvalidUserId,
            WrongRoom,
            MissingGrant,
            RateLimited,
            RoomFull,
            TooManyRooms,
            TooManyConnections,
            MediaFailed,
            NoSuchTrack,
            UnknownSession,
            DuplicateRequest,
            NegotiationBusy,
            TooManyTracks,
            UnknownSource,
            UnsupportedCodec,
            NoSuchOffer,
            Banned,
            NoSuchRoom,
            TokenRevoked,
            TokenTooLongLived,
            WrongUser,
            NotBanned,
            TooManyBans,
            TooManyRevocations,
            AlreadyRecording,
            NotRecording,
            NoRecorder,
            NoSuchRecording,
            RoomExists,
        ]
    };

    /// The code as the wire spells it (`room_full`).
    pub fn wire_name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => name,
            _ => "unknown".to_owned(),
        }
    }
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

impl Refusal {
    /// The `error` frame answering request `op` with this refusal.
    pub fn into_frame(self, op: Option<OperationId>) -> ServerFrame {
        ServerFrame::Error {
            op,
            code: self.code,
            message: self.message,
        }
    }
}

/// A frame the server could not take: the refusal, and the request id if the frame had a
/// readable one.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}: {}", refusal.code, refusal.message)]
pub struct FrameError {
    /// The request id, if the frame had a readable one.
    pub op: Option<OperationId>,
    /// Why it was refused.
    pub refusal: Refusal,
}

impl FrameError {
    /// The `error` frame answering this.
    pub fn into_frame(self) -> ServerFrame {
        self.refusal.into_frame(self.op)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// `SENT` lists every code but the two a server never sends: a code added to the enum and
    /// not to the list fails here.
    #[test]
    fn every_code_a_server_sends_is_listed() {
        let source = include_str!("error.rs");
        let body = &source[source.find("pub enum ErrorCode {").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let variants = body
            .lines()
            .filter(|line| {
                let line = line.trim();
                line.ends_with(',') && line[..1].chars().all(|c| c.is_ascii_uppercase())
            })
            .count();
        assert_eq!(variants, ErrorCode::SENT.len() + 2);
        let names: std::collections::HashSet<String> =
            ErrorCode::SENT.iter().map(|c| c.wire_name()).collect();
        assert_eq!(names.len(), ErrorCode::SENT.len());
        assert!(!names.contains("unknown") && !names.contains("session_lost"));
    }
}

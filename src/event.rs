//! What a [`Call`](crate::Call) tells its subscribers: [`CallEvent`] and the per-kind enums that
//! typed sub-streams yield. `docs/events.md` maps each callback of the seed SDK to a variant here.
//! Their one-line `Display` (for logs) is in `event/display.rs`.

mod display;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::{
    AbortReason, Ban, CallProperties, Invitation, InviteFailure, MediaConnection, MessageScope,
    OperationId, Participant, ParticipantChanges, PropertyChanges, Publication, Reason,
    RecordedFile, RecordingId, RecordingJob, RoomId, StopReason, Text, TrackSource, UserId,
};
use crate::protocol::ErrorCode;

/// Why the server refused a request: the outcome of a failed operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("{code}: {message}")]
pub struct OpError {
    /// What went wrong.
    pub code: ErrorCode,
    /// Details for humans.
    pub message: String,
}

/// The room as it was when you joined it, or as it is now (see [`Call::room`](crate::Call::room)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The room's id.
    pub room: RoomId,
    /// The room sequence number this snapshot reflects; the next room event carries `seq + 1`.
    pub seq: u64,
    /// You.
    pub me: UserId,
    /// Every member, you included, in join order.
    pub participants: Vec<Participant>,
    /// The call properties.
    pub properties: CallProperties,
    /// The tracks members publish, in publishing order.
    #[serde(default)]
    pub publications: Vec<Publication>,
}

impl RoomSnapshot {
    /// The member with this user id.
    pub fn participant(&self, user: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user_id == user)
    }
}

/// Which request an operation was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// [`Call::join`](crate::Call::join).
    Join,
    /// [`Call::leave`](crate::Call::leave).
    Leave,
    /// [`Call::end`](crate::Call::end).
    End,
    /// [`Call::kick`](crate::Call::kick).
    Kick,
    /// [`Call::set_role`](crate::Call::set_role).
    SetRole,
    /// [`Call::update`](crate::Call::update).
    Update,
    /// [`Call::set_properties`](crate::Call::set_properties).
    SetProperties,
    /// [`Call::send_message`](crate::Call::send_message).
    SendMessage,
    /// [`Call::invite`](crate::Call::invite).
    Invite,
    /// [`Call::cancel_invite`](crate::Call::cancel_invite).
    CancelInvite,
    /// [`Call::accept_invite`](crate::Call::accept_invite).
    AcceptInvite,
    /// [`Call::reject_invite`](crate::Call::reject_invite).
    RejectInvite,
    /// [`Call::publish`](crate::Call::publish) (its media negotiation).
    Publish,
    /// [`Call::unpublish`](crate::Call::unpublish).
    Unpublish,
    /// [`Call::set_muted`](crate::Call::set_muted) or [`Call::mute_member`](crate::Call::mute_member).
    Mute,
    /// [`Call::subscribe_track`](crate::Call::subscribe_track).
    SubscribeTrack,
    /// [`Call::unsubscribe_track`](crate::Call::unsubscribe_track).
    UnsubscribeTrack,
    /// [`Call::request_video`](crate::Call::request_video).
    RequestVideo,
    /// An answer to the server's subscription offer, sent by the call itself.
    Negotiate,
    /// The call's own join of its room again, after the server lost its session
    /// ([`CallEvent::Rejoined`]).
    Rejoin,
    /// [`Call::ban`](crate::Call::ban).
    Ban,
    /// [`Call::unban`](crate::Call::unban).
    Unban,
    /// [`Call::list_bans`](crate::Call::list_bans).
    ListBans,
    /// [`Call::refresh_token`](crate::Call::refresh_token) (or the call's own refresh).
    RefreshToken,
    /// [`Call::revoke`](crate::Call::revoke).
    Revoke,
    /// [`Call::start_recording`](crate::Call::start_recording).
    StartRecording,
    /// [`Call::stop_recording`](crate::Call::stop_recording).
    StopRecording,
    /// A recorder's offer to take recording jobs (see [`crate::record::Recorder`]).
    RecorderReady,
}

/// Everything a [`Call`](crate::Call) reports, in the server's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallEvent {
    /// You are in a room: the outcome of [`Call::join`](crate::Call::join) (or why not), or the
    /// room an accepted invitation or an invite sent from outside a room put you in (then `op`
    /// is that operation's id, and its own outcome event follows).
    Joined {
        /// The operation's id.
        op: OperationId,
        /// The room as it is at the moment you joined, or the refusal.
        result: Result<RoomSnapshot, OpError>,
    },
    /// You are out of the room: you left (`op` is your leave), were kicked, the call was ended,
    /// or the connection went away.
    Left {
        /// The room you were in.
        room: RoomId,
        /// Why: `Quit`, `Kicked`, `Over`, `Network`, `ServerShutdown`, …
        reason: Reason,
        /// The leave operation, when this is the outcome of one.
        op: Option<OperationId>,
    },
    /// Another member joined, left or changed.
    Participant(ParticipantEvent),
    /// Call properties changed.
    Property(PropertyEvent),
    /// A message arrived, or the outcome of one you sent.
    Message(MessageEvent),
    /// Invitations: received, answered, canceled, and the outcomes of your invitation requests.
    Invite(InviteEvent),
    /// Tracks published and unpublished in the room, and remote tracks arriving at this call.
    Media(MediaEvent),
    /// The room's recording started, stopped, or stopped abnormally.
    Recording(RecordingEvent),
    /// Outcome of any other operation (end, kick, set role, update, set properties, and a failed
    /// leave).
    Completed {
        /// The operation's id.
        op: OperationId,
        /// Which operation it was.
        kind: OperationKind,
        /// Success, or why not.
        result: Result<(), OpError>,
    },
    /// The server reported an error that answers no request of this call (a protocol fault).
    ServerError(OpError),
    /// This subscriber fell behind and `missed` events were dropped for it alone. Call
    /// [`Call::room`](crate::Call::room) to resynchronise.
    Lagged {
        /// How many events this subscriber missed.
        missed: u64,
    },
    /// The connection to the server was lost and the call is connecting again (attempt
    /// `attempt`, from 1). Requests made meanwhile are queued and sent once it is back.
    Reconnecting {
        /// Which attempt this is.
        attempt: u32,
        /// What ended the last connection: `Network` (an error or a close without goodbye),
        /// `Timeout` (silence), `ServerShutdown` (a server that said it would be back).
        reason: Reason,
    },
    /// The call is connected again and its session resumed: the `replayed` frames the lost
    /// connection did not deliver follow as ordinary events, in their first order, with none
    /// missing and none twice; then live events go on. Requests still unanswered at the cut
    /// were sent again and take effect once.
    Reconnected {
        /// How many frames the server replayed.
        replayed: u64,
    },
    /// The call is connected again, but the server no longer held everything it missed:
    /// `missed` frames could not be replayed. `snapshot` is the room as it is now (`None`: the
    /// call is in no room any more); room events go on from its `seq`.
    Resynced {
        /// The room now.
        snapshot: Option<RoomSnapshot>,
        /// Frames lost.
        missed: u64,
    },
    /// The server no longer knew the call's session (it restarted): the call logged in again
    /// and joined its room again by itself, republishing its tracks. `snapshot` is the room
    /// now; what happened while the server was away is not known, and requests that were
    /// unanswered then failed with [`ErrorCode::SessionLost`].
    /// Remote tracks of before end (their `next_packet` gives `None`); the room's tracks arrive
    /// again as [`MediaEvent::Subscribed`]. Local tracks keep their handles: what the
    /// application writes to them goes out on the new connection. The room itself is as the
    /// restarted server has it: properties set before the restart are gone (the server keeps no
    /// state across restarts yet). If the join again is refused, [`CallEvent::Left`] follows
    /// instead, with reason `Network`.
    Rejoined {
        /// The room now.
        snapshot: RoomSnapshot,
    },
    /// The outcome of [`Call::list_bans`](crate::Call::list_bans): the room's bans in force.
    Bans {
        /// The operation's id.
        op: OperationId,
        /// The bans, by user id, or the refusal.
        result: Result<Vec<Ban>, OpError>,
    },
    /// The call is over: the last event of every stream.
    Closed {
        /// `Quit` when closed by the application, `Network` when the connection was lost,
        /// `ServerShutdown` when the server went away in order.
        reason: Reason,
    },
}

/// A member joined, left, or changed. Yielded by [`EventStream::participants`](crate::EventStream::participants).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParticipantEvent {
    /// A member joined after you.
    Joined {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The new member.
        participant: Participant,
    },
    /// A member left.
    Left {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The member as it was.
        participant: Participant,
        /// `Quit`, `Kicked`, `Network`, …
        reason: Reason,
    },
    /// A member's fields changed (you included).
    Updated {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The member as it is now.
        participant: Participant,
        /// Which fields changed.
        changes: ParticipantChanges,
    },
}

/// Call properties changed. Yielded by [`EventStream::properties`](crate::EventStream::properties).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PropertyEvent {
    /// New property values.
    Changed {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// All properties as they are now.
        properties: CallProperties,
        /// What changed.
        changes: PropertyChanges,
        /// Who changed them.
        by: UserId,
    },
}

/// An in-call message received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// The room.
    pub room: RoomId,
    /// Room sequence number (group messages only).
    pub seq: Option<u64>,
    /// The sender.
    pub from: UserId,
    /// One-to-one or group.
    pub scope: MessageScope,
    /// The sender's content type string.
    pub content_type: Text,
    /// The content (shared by every subscriber's copy of the event).
    pub content: Text,
}

/// Messages in and send outcomes out. Yielded by [`EventStream::messages`](crate::EventStream::messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageEvent {
    /// A message for you.
    Received(ReceivedMessage),
    /// Outcome of [`Call::send_message`](crate::Call::send_message).
    Sent {
        /// The send's operation id.
        op: OperationId,
        /// A group message's room sequence number (the room event the sender does not receive
        /// back, so its own view stays gap-free); `None` for a one-to-one message or a refusal.
        seq: Option<u64>,
        /// Delivered to the server's room, or why not.
        result: Result<(), OpError>,
    },
}

/// What an invite request did: the invitations made and the callees it could not reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteReport {
    /// The room the invitations are for. `None` only when an invite sent from outside a room
    /// reached no one (then no room was made).
    pub room: Option<RoomId>,
    /// One invitation per reachable callee.
    pub invitations: Vec<Invitation>,
    /// Callees not invited, with why (`Offline`, `Busy`).
    pub failed: Vec<InviteFailure>,
}

/// Invitation events. Yielded by [`EventStream::invites`](crate::EventStream::invites).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InviteEvent {
    /// Outcome of [`Call::invite`](crate::Call::invite).
    Sent {
        /// The invite's operation id.
        op: OperationId,
        /// Who was invited and who could not be, or why the request was refused.
        result: Result<InviteReport, OpError>,
    },
    /// Outcome of [`Call::cancel_invite`](crate::Call::cancel_invite).
    CancelResult {
        /// The operation id.
        op: OperationId,
        /// Success, or why not.
        result: Result<(), OpError>,
    },
    /// Outcome of [`Call::accept_invite`](crate::Call::accept_invite) (after the
    /// [`CallEvent::Joined`] for the invitation's room).
    AcceptResult {
        /// The operation id.
        op: OperationId,
        /// Success, or why not.
        result: Result<(), OpError>,
    },
    /// Outcome of [`Call::reject_invite`](crate::Call::reject_invite).
    RejectResult {
        /// The operation id.
        op: OperationId,
        /// Success, or why not.
        result: Result<(), OpError>,
    },
    /// Someone invites you (every connected device of yours receives it).
    Received(Invitation),
    /// An invitation ended without your answer: the caller canceled it (`Canceled`), it went
    /// unanswered (`NoResponse`), the caller left the call (`Quit`, `Network`, `Kicked`, `Over`),
    /// or another device of yours answered it (`AcceptedElsewhere`, `RejectedElsewhere`). Also
    /// sent to a caller whose invitations ended because it left the call.
    Canceled {
        /// The invitation.
        invitation: Invitation,
        /// Why it ended.
        reason: Reason,
    },
    /// The callee accepted your invitation (it is joining the room).
    Accepted {
        /// The invitation.
        invitation: Invitation,
    },
    /// The callee turned your invitation down (`Rejected`, `Busy`), or did not answer in time
    /// (`NoResponse`).
    Rejected {
        /// The invitation.
        invitation: Invitation,
        /// Why.
        reason: Reason,
    },
}

/// The room's recording (the seed's "delivery" callbacks). Yielded by
/// [`EventStream::recording`](crate::EventStream::recording). The recording state itself is a
/// call property ([`CallProperties::recording`]); these events say what happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordingEvent {
    /// Recording began: the recorder receives the room's tracks and writes them.
    Started {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The recording.
        recording: RecordingId,
        /// The recorder (a member with the `recorder` role).
        recorder: UserId,
        /// The host who started it.
        by: UserId,
    },
    /// The recording ended normally and its files are closed.
    Stopped {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The recording.
        recording: RecordingId,
        /// Why: a host stopped it, a limit was reached, or the call ended.
        reason: StopReason,
        /// The files written.
        files: Vec<RecordedFile>,
    },
    /// The seed's `onDeliveryAbort`: the recording stopped abnormally. What was written
    /// before stays playable. With `shut_down`, the server ends the call because of it:
    /// [`CallEvent::Left`] with [`Reason::RecordingFailed`] follows.
    Aborted {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The recording.
        recording: RecordingId,
        /// Whether the server ends the call because of it (the recording was required).
        shut_down: bool,
        /// The recorder that failed (the seed's delivery user), if one had taken the job.
        recorder: Option<UserId>,
        /// Why.
        reason: AbortReason,
    },
    /// To a recorder's session only: the server hands it a job.
    Job(RecordingJob),
    /// To a recorder's session only: stop recording `recording`.
    StopAsked {
        /// The recording.
        recording: RecordingId,
        /// Why.
        reason: StopReason,
    },
}

/// Media in the room. Yielded by [`EventStream::media`](crate::EventStream::media).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaEvent {
    /// A member (you included) started publishing a track.
    Published {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The track.
        publication: Publication,
    },
    /// A track was muted: by its publisher, or by a host or the application's backend (`by`).
    /// The server forwards nothing of a muted track, to anyone, until its publisher unmutes
    /// it. When the track is this call's own and someone else muted it, the call has stopped
    /// sending it too ([`LocalTrack::is_muted`](crate::LocalTrack::is_muted)); unmute it with
    /// [`Call::set_muted`](crate::Call::set_muted).
    Muted {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The track.
        publication: Publication,
        /// Who muted it, when not its publisher (a host's user id, or the backend's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
    },
    /// A member unmuted a track.
    Unmuted {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The track.
        publication: Publication,
    },
    /// A member stopped publishing a track, or left.
    Unpublished {
        /// The room.
        room: RoomId,
        /// Room sequence number.
        seq: u64,
        /// The track.
        publication: Publication,
        /// Why: [`Reason::Quit`] (unpublished on purpose), the member's reason for leaving, or
        /// [`Reason::Network`] (its publishing connection failed and was not restored within
        /// the server's grace period).
        reason: Reason,
    },
    /// Another member's track now reaches this call: read its packets from
    /// [`Call::remote_track`](crate::Call::remote_track).
    Subscribed {
        /// The track.
        publication: Publication,
    },
    /// A remote track stopped reaching this call (unpublished, or its publisher left).
    Unsubscribed {
        /// The track.
        publication: Publication,
    },
    /// One of this call's peer connections failed (its path is gone: a network change, a
    /// firewall): media on it stopped, and the call is restarting ICE to get it back. Your
    /// published tracks stay yours meanwhile; the server keeps your publications for its
    /// grace period. Then [`MediaEvent::Restored`], or [`MediaEvent::Failed`] if it gave up.
    Interrupted {
        /// Which of the call's two connections.
        connection: MediaConnection,
    },
    /// A connection that was [`Interrupted`](MediaEvent::Interrupted) is connected again:
    /// media flows on the same tracks.
    Restored {
        /// Which of the call's two connections.
        connection: MediaConnection,
    },
    /// Dynacast: of this call's track of `source`, sent with simulcast, somebody receives
    /// only the `layers` smallest layers now; what is written to the others is dropped
    /// ([`LocalTrack::is_layer_sent`](crate::LocalTrack::is_layer_sent)), so an encoder may
    /// skip them until a later `LayersWanted` asks for them again.
    LayersWanted {
        /// The video source.
        source: TrackSource,
        /// How many layers, from the smallest, somebody receives (at least 1).
        layers: usize,
    },
    /// Who speaks in the room now, the loudest first (empty: nobody), measured by the server
    /// from the level each microphone's packets carry (no audio is decoded). Comes when the
    /// speakers or their order change, at most every half second, and at once when a speaker
    /// mutes or leaves; after a reconnection nobody counts as speaking until the next one.
    ActiveSpeakers {
        /// The room.
        room: RoomId,
        /// Who speaks, the loudest first.
        speakers: Vec<crate::model::ActiveSpeaker>,
    },
    /// Media failed where no request of yours waits for the answer: one of this call's peer
    /// connections failed and could not be restored (a lost publishing connection ends your
    /// publications and their [`LocalTrack`](crate::LocalTrack)s: publish again), the server
    /// could not offer what you receive, or a track of yours cannot be forwarded.
    Failed {
        /// Which of the call's two connections.
        connection: MediaConnection,
        /// The publication it is about, if one.
        publication: Option<String>,
        /// What happened, for humans.
        message: String,
    },
}

/// What a successful operation produced; see [`Call::outcome`](crate::Call::outcome).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// A join, or an accepted invitation: the room snapshot.
    Joined(RoomSnapshot),
    /// An invite: who was invited and who could not be.
    Invited(InviteReport),
    /// A ban list.
    Bans(Vec<Ban>),
    /// Any other operation.
    Done,
}

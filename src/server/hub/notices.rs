//! What the application's backend hears (webhooks): the room events that matter to it, made
//! from the frames the room sends its members, so the two never disagree.

use crate::model::ServerEvent;
use crate::protocol::ServerFrame;

/// The backend's event for a room frame, if it wants one.
pub(super) fn event_of(frame: &ServerFrame) -> Option<ServerEvent> {
    Some(match frame {
        ServerFrame::ParticipantJoined {
            room, participant, ..
        } => ServerEvent::ParticipantJoined {
            room: room.clone(),
            participant: participant.clone(),
        },
        ServerFrame::ParticipantLeft {
            room,
            participant,
            reason,
            ..
        } => ServerEvent::ParticipantLeft {
            room: room.clone(),
            participant: participant.clone(),
            reason: *reason,
        },
        ServerFrame::TrackPublished {
            room, publication, ..
        } => ServerEvent::TrackPublished {
            room: room.clone(),
            publication: publication.clone(),
        },
        ServerFrame::TrackUnpublished {
            room,
            publication,
            reason,
            ..
        } => ServerEvent::TrackUnpublished {
            room: room.clone(),
            publication: publication.clone(),
            reason: *reason,
        },
        ServerFrame::RecordingStarted {
            room,
            recording,
            recorder,
            by,
            ..
        } => ServerEvent::RecordingStarted {
            room: room.clone(),
            recording: recording.clone(),
            recorder: recorder.clone(),
            by: by.clone(),
        },
        ServerFrame::RecordingStopped {
            room,
            recording,
            reason,
            files,
            ..
        } => ServerEvent::RecordingStopped {
            room: room.clone(),
            recording: recording.clone(),
            reason: *reason,
            files: files.clone(),
        },
        ServerFrame::RecordingAborted {
            room,
            recording,
            reason,
            shut_down,
            ..
        } => ServerEvent::RecordingAborted {
            room: room.clone(),
            recording: recording.clone(),
            reason: *reason,
            shut_down: *shut_down,
        },
        _ => return None,
    })
}

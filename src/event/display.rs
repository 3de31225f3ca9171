//! [`CallEvent`]'s one-line summary, for logs and demos.

use super::{
    CallEvent, InviteEvent, MediaEvent, MessageEvent, OpError, ParticipantEvent, PropertyEvent,
    RecordingEvent,
};
use crate::model::{Participant, RoomId};

/// A one-line human-readable summary, for logs and demos (use `{:?}` or serde for everything).
impl std::fmt::Display for CallEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids = |ps: &[Participant]| {
            ps.iter()
                .map(|p| p.user_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            CallEvent::Joined { op, result: Ok(r) } => write!(
                f,
                "{op}: joined `{}` at #{} with [{}]",
                r.room,
                r.seq,
                ids(&r.participants)
            ),
            CallEvent::Joined { op, result: Err(e) } => write!(f, "{op}: join failed: {e}"),
            CallEvent::Left { room, reason, op } => match op {
                Some(op) => write!(f, "{op}: left `{room}` ({reason})"),
                None => write!(f, "left `{room}` ({reason})"),
            },
            CallEvent::Participant(ParticipantEvent::Joined {
                seq, participant, ..
            }) => {
                write!(f, "#{seq} {} joined", participant.user_id)
            }
            CallEvent::Participant(ParticipantEvent::Left {
                seq,
                participant,
                reason,
                ..
            }) => write!(f, "#{seq} {} left ({reason})", participant.user_id),
            CallEvent::Participant(ParticipantEvent::Updated {
                seq,
                participant,
                changes,
                ..
            }) => write!(f, "#{seq} {} updated {changes:?}", participant.user_id),
            CallEvent::Property(PropertyEvent::Changed {
                seq,
                properties,
                changes,
                by,
                ..
            }) => write!(
                f,
                "#{seq} {by} changed properties {changes:?} → {properties:?}"
            ),
            CallEvent::Message(MessageEvent::Received(m)) => {
                if let Some(seq) = m.seq {
                    write!(f, "#{seq} ")?;
                }
                write!(
                    f,
                    "{:?} message from {} ({}): {}",
                    m.scope, m.from, m.content_type, m.content
                )
            }
            CallEvent::Message(MessageEvent::Sent { op, seq, result }) => match seq {
                Some(seq) => write!(f, "#{seq} {op}: message sent: {}", ok_or(result)),
                None => write!(f, "{op}: message sent: {}", ok_or(result)),
            },
            CallEvent::Completed { op, kind, result } => {
                write!(f, "{op}: {kind:?} {}", ok_or(result))
            }
            CallEvent::Invite(InviteEvent::Sent { op, result: Ok(r) }) => write!(
                f,
                "{op}: invited [{}] to {:?}, not reached {:?}",
                r.invitations
                    .iter()
                    .map(|i| i.callee.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.room.as_ref().map(RoomId::as_str),
                r.failed
            ),
            CallEvent::Invite(InviteEvent::Sent { op, result: Err(e) }) => {
                write!(f, "{op}: invite refused: {e}")
            }
            CallEvent::Invite(
                InviteEvent::CancelResult { op, result }
                | InviteEvent::AcceptResult { op, result }
                | InviteEvent::RejectResult { op, result },
            ) => write!(f, "{op}: invitation answered: {}", ok_or(result)),
            CallEvent::Invite(InviteEvent::Received(i)) => write!(
                f,
                "{} ({}) invites me to `{}` (video: {}, extra: {:?})",
                i.caller_name, i.caller, i.room, i.video, i.extra
            ),
            CallEvent::Invite(InviteEvent::Canceled { invitation, reason }) => {
                write!(
                    f,
                    "{} from {} ended ({reason})",
                    invitation.id, invitation.caller
                )
            }
            CallEvent::Invite(InviteEvent::Accepted { invitation }) => {
                write!(f, "{} accepted {}", invitation.callee, invitation.id)
            }
            CallEvent::Invite(InviteEvent::Rejected { invitation, reason }) => {
                write!(
                    f,
                    "{} turned {} down ({reason})",
                    invitation.callee, invitation.id
                )
            }
            CallEvent::Recording(RecordingEvent::Started {
                seq,
                recording,
                recorder,
                ..
            }) => write!(f, "#{seq} recording {recording} started by {recorder}"),
            CallEvent::Recording(RecordingEvent::Stopped {
                seq,
                recording,
                reason,
                files,
                ..
            }) => write!(
                f,
                "#{seq} recording {recording} stopped ({reason:?}, {} files)",
                files.len()
            ),
            CallEvent::Recording(RecordingEvent::Aborted {
                seq,
                recording,
                reason,
                shut_down,
                ..
            }) => write!(
                f,
                "#{seq} recording {recording} aborted ({reason:?}{})",
                if *shut_down { ", the call ends" } else { "" }
            ),
            CallEvent::Recording(RecordingEvent::Job(job)) => {
                write!(f, "recording job {} in `{}`", job.recording, job.room)
            }
            CallEvent::Recording(RecordingEvent::StopAsked { recording, reason }) => {
                write!(f, "stop recording {recording} ({reason:?})")
            }
            CallEvent::Media(MediaEvent::Published {
                seq, publication, ..
            }) => {
                write!(f, "#{seq} {} published", publication.id)
            }
            CallEvent::Media(MediaEvent::Muted {
                seq,
                publication,
                by: Some(by),
                ..
            }) => write!(f, "#{seq} {} muted by {by}", publication.id),
            CallEvent::Media(MediaEvent::Muted {
                seq, publication, ..
            }) => write!(f, "#{seq} {} muted", publication.id),
            CallEvent::Media(MediaEvent::Unmuted {
                seq, publication, ..
            }) => write!(f, "#{seq} {} unmuted", publication.id),
            CallEvent::Media(MediaEvent::Unpublished {
                seq, publication, ..
            }) => {
                write!(f, "#{seq} {} unpublished", publication.id)
            }
            CallEvent::Media(MediaEvent::Interrupted { connection }) => {
                write!(f, "{} connection interrupted", connection.as_str())
            }
            CallEvent::Media(MediaEvent::Restored { connection }) => {
                write!(f, "{} connection restored", connection.as_str())
            }
            CallEvent::Media(MediaEvent::Subscribed { publication }) => {
                write!(f, "receiving {}", publication.id)
            }
            CallEvent::Media(MediaEvent::Unsubscribed { publication }) => {
                write!(f, "no longer receiving {}", publication.id)
            }
            CallEvent::Media(MediaEvent::LayersWanted { source, layers }) => {
                write!(f, "{} layers of {} wanted", layers, source.as_str())
            }
            CallEvent::Media(MediaEvent::ActiveSpeakers { room, speakers }) => {
                if speakers.is_empty() {
                    return write!(f, "nobody speaks in {room}");
                }
                write!(f, "speaking in {room}:")?;
                for s in speakers {
                    write!(f, " {} (-{} dBov)", s.user_id, s.level_dbov)?;
                }
                Ok(())
            }
            CallEvent::Media(MediaEvent::Failed {
                connection,
                publication,
                message,
            }) => match publication {
                Some(id) => write!(f, "media failed ({}, {id}): {message}", connection.as_str()),
                None => write!(f, "media failed ({}): {message}", connection.as_str()),
            },
            CallEvent::ServerError(e) => write!(f, "server error: {e}"),
            CallEvent::Lagged { missed } => write!(f, "missed {missed} events"),
            CallEvent::Reconnecting { attempt, reason } => {
                write!(f, "reconnecting (attempt {attempt}, {reason})")
            }
            CallEvent::Reconnected { replayed } => {
                write!(f, "reconnected ({replayed} frames replayed)")
            }
            CallEvent::Resynced { snapshot, missed } => match snapshot {
                Some(s) => write!(f, "resynced in {} at #{} ({missed} lost)", s.room, s.seq),
                None => write!(f, "resynced out of any room ({missed} lost)"),
            },
            CallEvent::Rejoined { snapshot } => {
                write!(f, "rejoined {} at #{}", snapshot.room, snapshot.seq)
            }
            CallEvent::Bans {
                op,
                result: Ok(bans),
            } => {
                let users: Vec<&str> = bans.iter().map(|b| b.user_id.as_str()).collect();
                write!(f, "{op}: bans [{}]", users.join(", "))
            }
            CallEvent::Bans { op, result: Err(e) } => write!(f, "{op}: listing bans failed: {e}"),
            CallEvent::Closed { reason } => write!(f, "closed ({reason})"),
        }
    }
}

fn ok_or(result: &Result<(), OpError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => format!("refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OperationId, Reason};

    #[test]
    fn events_read_as_one_line() {
        let left = CallEvent::Left {
            room: "r".into(),
            reason: Reason::Kicked,
            op: None,
        };
        assert_eq!(left.to_string(), "left `r` (kicked)");
        let sent = CallEvent::Message(MessageEvent::Sent {
            op: OperationId(4),
            seq: None,
            result: Err(OpError {
                code: crate::protocol::ErrorCode::MessageTooLarge,
                message: "5000 bytes".into(),
            }),
        });
        assert_eq!(
            sent.to_string(),
            "op#4: message sent: refused: message content is larger than 4 KiB: 5000 bytes"
        );
        assert_eq!(
            CallEvent::Lagged { missed: 3 }.to_string(),
            "missed 3 events"
        );
    }
}

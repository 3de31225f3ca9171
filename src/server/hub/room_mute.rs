//! Muting a room's tracks, sans-IO: by their publisher, by a host, or by the application's
//! backend. The core enforces a mute: it tells the media shell to forward nothing of a muted
//! track (to present legs and to legs added later, recordings included), whatever the
//! publisher's client keeps sending; the room hears who muted it.

use crate::model::{Role, TrackSource, UserId};
use crate::protocol::{ErrorCode, ServerFrame};

use super::io::{Emit, MediaAction, Refusal, SessionId, refuse};
use super::negotiation::command;
use super::room::Room;
use super::room_media::request_keyframe;

impl Room {
    /// `conn` mutes or unmutes its `source`; the audio or video flag follows, and so does the
    /// forwarding: a muted track's packets reach nobody (see [`Room::set_muted`]).
    pub(crate) fn mute(
        &mut self,
        conn: SessionId,
        source: TrackSource,
        muted: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.set_muted(conn, source, muted, None, out)
    }

    /// Host `conn` mutes `target`'s `source` (a host mutes others, never unmutes them: only a
    /// track's publisher does). Muting one's own track this way is a plain mute.
    pub(crate) fn mute_member(
        &mut self,
        conn: SessionId,
        target: &UserId,
        source: TrackSource,
        muted: bool,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let i = self.index_of_user(target)?;
        let target_conn = self.members[i].conn;
        if target_conn == conn {
            return self.mute(conn, source, muted, out);
        }
        self.require_host(conn, "mute others")?;
        if self.members[i].participant.role == Role::Recorder {
            return refuse(ErrorCode::InvalidParam, "the recorder publishes nothing");
        }
        if !muted {
            return refuse(
                ErrorCode::PermissionDenied,
                format!(
                    "only `{target}` unmutes their {}: ask them to",
                    source.as_str()
                ),
            );
        }
        let by = self.member(conn).participant.user_id.clone();
        self.set_muted(target_conn, source, true, Some(by), out)
    }

    /// `conn`'s track of `source` is muted or unmuted, by its publisher (`by` is `None`) or by
    /// someone else (a host, the backend). The media shell stops (or resumes) forwarding it to
    /// every leg, present and future, whatever the publisher keeps sending: a mute is enforced
    /// here, not trusted to the publisher's client. A video track unmuted starts again from a
    /// key frame.
    pub(crate) fn set_muted(
        &mut self,
        conn: SessionId,
        source: TrackSource,
        muted: bool,
        by: Option<UserId>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let at = self.own_publication(conn, source)?;
        if self.publications[at].1.muted == muted {
            return Ok(());
        }
        self.publications[at].1.muted = muted;
        let publisher = self.member(conn).key.clone();
        out.push(command(&publisher, MediaAction::Forward { source, muted }));
        if !muted {
            request_keyframe(&publisher, &self.publications[at].1, out);
        }
        if let Some(i) = self.index_of_conn(conn) {
            // A muted microphone or camera is off in the participant's flags; a muted extra
            // stream stays among its streams (published, muted).
            if !source.is_extra() {
                self.set_flag(i, source, !muted, out);
            }
            if muted && source == TrackSource::Microphone {
                let user = self.members[i].participant.user_id.clone();
                self.speaker_silenced(&user, out);
            }
        }
        let seq = self.next_seq();
        let frame = ServerFrame::TrackMuted {
            room: self.id.clone(),
            seq,
            publication: self.publications[at].1.clone(),
            by,
        };
        self.broadcast(self.conns(), frame, out);
        Ok(())
    }
}

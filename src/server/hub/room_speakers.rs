//! A room's active speakers and its members' volume status, sans-IO: the room feeds its
//! `Speakers` (`speakers.rs`, which decides) with each microphone's measured level and with the
//! moments a microphone falls silent (muted, unpublished, its member gone), and tells every
//! member the list when it is due. The list is current state, not history: it is sent to the
//! members connected now and not kept for a resume. A member's volume status is a field of the
//! participant: a change is a participant update like any other (numbered, replayed).

use crate::model::{ParticipantChanges, TrackSource, UserId};
use crate::protocol::ServerFrame;

use super::io::{Emit, MediaAction, MediaId, Millis};
use super::room::Room;
use super::speakers::{Heard, Speaker};

impl Room {
    /// Membership `media`'s track of `source` measured `level_dbov` over the window that ended
    /// at `now`. Only a published, unmuted microphone counts.
    pub(crate) fn audio_measured(
        &mut self,
        media: MediaId,
        source: TrackSource,
        level_dbov: u8,
        now: Millis,
        out: &mut Vec<Emit>,
    ) {
        if source != TrackSource::Microphone {
            return;
        }
        let Some(i) = self.members.iter().position(|m| m.key.media == media) else {
            return;
        };
        let member = &self.members[i];
        let live = self
            .publications
            .iter()
            .any(|(conn, p)| *conn == member.conn && p.source == source && !p.muted);
        if !live {
            return;
        }
        let user = member.participant.user_id.clone();
        let heard = self.speakers.measured(&user, now, level_dbov);
        self.tell(&user, heard, out);
    }

    /// `user`'s microphone fell silent (muted, unpublished, or its member left): if it was a
    /// speaker, the room hears so at once.
    pub(super) fn speaker_silenced(&mut self, user: &UserId, out: &mut Vec<Emit>) {
        let heard = self.speakers.silenced(user);
        self.tell(user, heard, out);
    }

    /// Tells the room what `heard` changed: `user`'s volume status (if it is still a member),
    /// then the speakers.
    fn tell(&mut self, user: &UserId, heard: Heard, out: &mut Vec<Emit>) {
        if let Some(volume) = heard.volume
            && let Some(i) = self
                .members
                .iter()
                .position(|m| &m.participant.user_id == user)
        {
            self.members[i].participant.volume = volume;
            let changes = ParticipantChanges {
                volume: true,
                ..Default::default()
            };
            self.emit_updated(i, changes, out);
        }
        if let Some(speakers) = heard.speakers {
            self.tell_speakers(speakers, out);
        }
    }

    fn tell_speakers(&mut self, speakers: Vec<Speaker>, out: &mut Vec<Emit>) {
        self.favour_camera_of(speakers.first(), out);
        for to in self.conns() {
            out.push(Emit::Send {
                to,
                frame: ServerFrame::Speakers {
                    room: self.id.clone(),
                    speakers: speakers.clone(),
                },
            });
        }
    }

    /// The loudest speaker's camera (if it publishes one) goes first in every receiver's
    /// bandwidth allocation: told to each member that receives anything, when it changes.
    fn favour_camera_of(&mut self, speaker: Option<&Speaker>, out: &mut Vec<Emit>) {
        let camera = speaker.and_then(|s| {
            self.publications
                .iter()
                .find(|(_, p)| p.participant == s.user_id && p.source == TrackSource::Camera)
                .map(|(_, p)| p.id.clone())
        });
        if camera == self.favoured_camera {
            return;
        }
        self.favoured_camera = camera.clone();
        for member in &self.members {
            if self
                .subscriptions
                .iter()
                .any(|(conn, _)| *conn == member.conn)
            {
                out.push(super::negotiation::command(
                    &member.key,
                    MediaAction::FavourCamera {
                        publication: camera.clone(),
                    },
                ));
            }
        }
    }
}

//! A room's active speakers, sans-IO: the room feeds its `Speakers` (`speakers.rs`, which
//! decides) with each microphone's measured level and with the moments a microphone falls
//! silent (muted, unpublished, its member gone), and tells every member the list when it is
//! due. The list is current state, not history: it is sent to the members connected now and
//! not kept for a resume.

use crate::model::{TrackSource, UserId};
use crate::protocol::ServerFrame;

use super::io::{MediaId, Millis, Output};
use super::room::Room;
use super::speakers::Speaker;

impl Room {
    /// Membership `media`'s track of `source` measured `level_dbov` over the window that ended
    /// at `now`. Only a published, unmuted microphone counts.
    pub(crate) fn audio_measured(
        &mut self,
        media: MediaId,
        source: TrackSource,
        level_dbov: u8,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        if source != TrackSource::Microphone {
            return;
        }
        let Some(member) = self.members.iter().find(|m| m.key.media == media) else {
            return;
        };
        let live = self
            .publications
            .iter()
            .any(|(conn, p)| *conn == member.conn && p.source == source && !p.muted);
        if !live {
            return;
        }
        let user = member.participant.user_id.clone();
        if let Some(speakers) = self.speakers.measured(&user, now, level_dbov) {
            self.tell_speakers(speakers, out);
        }
    }

    /// `user`'s microphone fell silent (muted, unpublished, or its member left): if it was a
    /// speaker, the room hears so at once.
    pub(super) fn speaker_silenced(&mut self, user: &UserId, out: &mut Vec<Output>) {
        if let Some(speakers) = self.speakers.silenced(user) {
            self.tell_speakers(speakers, out);
        }
    }

    fn tell_speakers(&self, speakers: Vec<Speaker>, out: &mut Vec<Output>) {
        for to in self.conns() {
            out.push(Output::Send {
                to,
                frame: ServerFrame::Speakers {
                    room: self.id.clone(),
                    speakers: speakers.clone(),
                },
            });
        }
    }
}

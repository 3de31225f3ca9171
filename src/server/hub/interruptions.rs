//! Peer connections that fail and come back, sans-IO. A failed connection (the media shell
//! saw it, or the member said so) is *interrupted*, not over: what it carries is kept for the
//! grace period while ICE is restarted ([`Room::media_interrupted`](super::room::Room)). The
//! hub keeps one deadline per interruption and, when it passes with the connection still
//! down, ends what the connection carried ([`Room::media_expired`](super::room::Room)).

use crate::model::RoomId;
use crate::protocol::MediaConnection;

use super::Hub;
use super::io::{Emit, MediaId, Millis, Refusal};

/// Interruptions by the end of their grace period.
pub(super) type Deadlines = std::collections::BTreeSet<(Millis, RoomId, MediaId, MediaConnection)>;

impl Hub {
    /// Membership `media` of `room` lost `connection`: it is interrupted until the grace period
    /// ends (a connection interrupted already keeps its first deadline).
    pub(super) fn interrupt_media(
        &mut self,
        room: &RoomId,
        media: MediaId,
        connection: MediaConnection,
        out: &mut Vec<Emit>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let grace = self.config.grace_ms;
        let until = self.now + grace;
        if r.media_interrupted(media, connection, until, grace, out) {
            self.media_deadlines
                .insert((until, room.clone(), media, connection));
        }
        r.flush_offers(out);
    }

    /// The member on `conn` says its side of `connection` failed.
    pub(super) fn media_interrupted_by(
        &mut self,
        conn: super::io::SessionId,
        connection: MediaConnection,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, None)?;
        let media = match self.rooms.get(&room) {
            Some(r) => r.media_id_of(conn)?,
            None => return Ok(()),
        };
        self.interrupt_media(&room, media, connection, out);
        Ok(())
    }

    /// Ends the interruptions whose grace period is over.
    pub(super) fn expire_media(&mut self, out: &mut Vec<Emit>) {
        while let Some((at, ..)) = self.media_deadlines.first() {
            if *at > self.now {
                break;
            }
            let Some((until, room, media, connection)) = self.media_deadlines.pop_first() else {
                break;
            };
            if let Some(r) = self.rooms.get_mut(&room) {
                r.media_expired(media, connection, until, out);
                r.flush_offers(out);
            }
        }
    }

    /// The end of the next grace period of an interrupted connection.
    pub(super) fn next_media_deadline(&self) -> Option<Millis> {
        self.media_deadlines.first().map(|(at, ..)| *at)
    }
}

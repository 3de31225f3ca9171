//! A room's members' net status, sans-IO: the room feeds each member's `NetQuality`
//! (`net_status.rs`, which decides) with the SFU's samples of its media, and tells every member
//! a change as a participant update (numbered, replayed after a resume like any other). A
//! member's signaling connection lost or back is `Room::set_connection`'s.

use crate::model::{NetStatus, ParticipantChanges};

use super::io::{MediaId, Millis, Output};
use super::net_status::LinkSample;
use super::room::Room;

impl Room {
    /// Membership `media`'s media measured `sample` over the period that ended at `now`.
    pub(crate) fn link_measured(
        &mut self,
        media: MediaId,
        sample: &LinkSample,
        now: Millis,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.members.iter().position(|m| m.key.media == media) else {
            return;
        };
        let conn = self.members[i].conn;
        // Silence means something only from a member that should be sending.
        let live = self
            .publications
            .iter()
            .any(|(c, p)| *c == conn && !p.muted);
        if let Some(net) = self.members[i].net.measured(now, sample, live) {
            self.set_net(i, net, out);
        }
    }

    fn set_net(&mut self, i: usize, net: NetStatus, out: &mut Vec<Output>) {
        self.members[i].participant.net = net;
        let changes = ParticipantChanges {
            net: true,
            ..Default::default()
        };
        self.emit_updated(i, changes, out);
    }
}

//! A room's members' net status, sans-IO: the room feeds each member's `NetQuality`
//! (`net_status.rs`, which decides) with the SFU's samples of its media, and tells every member
//! a change as a participant update (numbered, replayed after a resume like any other). A
//! member's signaling connection lost or back is `Room::set_connection`'s.

use crate::model::{
    MemberLink, NetStatus, ParticipantChanges, RoomStatistics, ServerTrackStatistics, UserId,
};

use super::io::{Emit, MediaId, Millis};
use super::net_status::LinkSample;
use super::room::Room;

impl Room {
    /// Membership `media`'s media measured `sample` over the period that ended at `now`.
    pub(crate) fn link_measured(
        &mut self,
        media: MediaId,
        sample: &LinkSample,
        now: Millis,
        out: &mut Vec<Emit>,
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

    fn set_net(&mut self, i: usize, net: NetStatus, out: &mut Vec<Emit>) {
        self.members[i].participant.net = net;
        let changes = ParticipantChanges {
            net: true,
            ..Default::default()
        };
        self.emit_updated(i, changes, out);
    }

    /// What the core knows of the room's media for the server API: each member's latest
    /// sample and each publication (the shell adds what the SFU counts of each track), with
    /// each member's media id (how the SFU names it).
    pub(crate) fn statistics(&self) -> (RoomStatistics, Vec<(MediaId, UserId)>) {
        let percent =
            |loss: super::net_status::Loss| loss.permille().map(|permille| permille as f64 / 10.0);
        let participants = self
            .members
            .iter()
            .map(|m| {
                let sample = m.net.latest();
                MemberLink {
                    user_id: m.participant.user_id.clone(),
                    net: m.participant.net,
                    volume: m.participant.volume,
                    uplink_loss_percent: sample.and_then(|s| percent(s.up)),
                    downlink_loss_percent: sample.and_then(|s| percent(s.down)),
                    jitter_ms: sample.and_then(|s| s.jitter_ms),
                    rtt_ms: sample.and_then(|s| s.rtt_ms),
                    bandwidth_estimate_bps: sample.and_then(|s| s.estimate_bps),
                    wanted_bps: sample.map_or(0, |s| s.wanted_bps),
                }
            })
            .collect();
        let tracks = self
            .publications
            .iter()
            .map(|(_, p)| ServerTrackStatistics {
                publication: p.id.clone(),
                participant: p.participant.clone(),
                source: p.source,
                muted: p.muted,
                packets: 0,
                packets_lost: 0,
                layer_bitrates_bps: Vec::new(),
                receivers: Vec::new(),
            })
            .collect();
        let media = self
            .members
            .iter()
            .map(|m| (m.key.media, m.participant.user_id.clone()))
            .collect();
        (
            RoomStatistics {
                room: self.id.clone(),
                participants,
                tracks,
            },
            media,
        )
    }
}

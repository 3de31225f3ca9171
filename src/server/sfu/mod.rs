//! The SFU: the media shell. It owns the peer connections and the tasks that move packets, and
//! carries out the core's [`MediaCommand`]s; what it does and sees goes back to the core as
//! [`MediaReport`]s (answers, offers, arrived tracks, candidates, failures). It decides nothing
//! and writes no frame to a client: the core does both.
//!
//! One actor task per membership owns that member's two peer connections (it publishes on one,
//! receives on the other) and takes its commands one at a time. RTP is forwarded without
//! decoding by a reader task per published track, which writes each packet to every
//! subscriber's leg (see [`forward`]). A subscriber's key-frame requests (PLI, FIR) are relayed
//! to the publisher.

mod actor;
pub(crate) mod allocator;
pub(crate) mod audio_level;
mod extensions;
mod forward;
mod gap_log;
pub(crate) mod layers;
mod link_meter;
mod packet_count;
pub(crate) mod port;
mod rates;
mod sdp_fixes;
pub(crate) mod vp8;
pub(crate) use forward::ForwardCounters;
pub(crate) mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::hub::io::{MediaAction, MediaCommand, MediaId, MediaReport};
use crate::media::{PeerEvent, PeerSettings};
use crate::model::{RoomId, TrackSource};
use crate::protocol::MediaConnection;
use actor::Actor;
use forward::{Forward, lock};
use workers::MediaWorkers;

/// The SFU: one actor per membership with media, and the published tracks.
pub(crate) struct Sfu {
    shared: Arc<Shared>,
    actors: Mutex<HashMap<MediaId, mpsc::UnboundedSender<Work>>>,
}

/// What the actors share.
struct Shared {
    settings: PeerSettings,
    workers: MediaWorkers,
    /// Where the core's reports go.
    reports: mpsc::UnboundedSender<MediaReport>,
    /// Published tracks, by the publisher's membership and the source. A membership belongs to
    /// one room, so no lookup can find another room's track (and each track knows its room).
    forwards: Mutex<HashMap<(MediaId, TrackSource), Forward>>,
    /// Tracks the core muted, by the publisher's membership and the source: kept whether or
    /// not a track of that source is being forwarded now, so a track that arrives later
    /// starts muted.
    muted: Mutex<std::collections::HashSet<(MediaId, TrackSource)>>,
    /// What forwarding did (the metrics read them).
    counters: Arc<forward::ForwardCounters>,
}

enum Work {
    Action(MediaAction),
    /// Something one of the actor's peer connections saw.
    Peer(MediaConnection, PeerEvent),
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("actors", &lock(&self.actors).len())
            .finish_non_exhaustive()
    }
}

impl Sfu {
    /// An SFU whose reports go to `reports`.
    pub(crate) fn new(
        settings: PeerSettings,
        workers: MediaWorkers,
        reports: mpsc::UnboundedSender<MediaReport>,
    ) -> Self {
        Sfu {
            shared: Arc::new(Shared {
                settings,
                workers,
                reports,
                forwards: Mutex::new(HashMap::new()),
                muted: Mutex::default(),
                counters: Default::default(),
            }),
            actors: Mutex::new(HashMap::new()),
        }
    }

    /// What forwarding did since the start.
    pub(crate) fn counters(&self) -> &forward::ForwardCounters {
        &self.shared.counters
    }

    /// Hands a command to its membership's actor (started on first use). Never blocks.
    pub(crate) fn dispatch(&self, command: MediaCommand) {
        let MediaCommand { to, action } = command;
        let mut actors = lock(&self.actors);
        let teardown = action == MediaAction::Teardown;
        let tx = match actors.get(&to.media) {
            Some(tx) => tx,
            None if teardown => return,
            None => {
                // The actor runs on its room's worker, with the rest of the room's media: a
                // packet then crosses no thread on its way through the SFU.
                let (tx, rx) = mpsc::unbounded_channel();
                let actor = Actor::new(to.clone(), self.shared.clone(), tx.clone());
                self.shared.workers.for_room(&to.room).spawn(actor.run(rx));
                actors.entry(to.media).or_insert(tx)
            }
        };
        let _ = tx.send(Work::Action(action));
        if teardown {
            actors.remove(&to.media);
        }
    }

    /// Fills in what the SFU counts of each of `statistics`' tracks (its members' media ids in
    /// `media`): packets in and lost, each layer's rate, each receiver's layer and packets.
    pub(crate) fn fill_statistics(
        &self,
        statistics: &mut crate::model::RoomStatistics,
        media: &[(MediaId, crate::model::UserId)],
    ) {
        let media_of = |user: &crate::model::UserId| media.iter().find(|(_, u)| u == user);
        let now = std::time::Instant::now();
        for track in &mut statistics.tracks {
            let Some((from, _)) = media_of(&track.participant) else {
                continue;
            };
            let Some(forward) = self.shared.forward(&statistics.room, *from, track.source) else {
                continue;
            };
            let (expected, received) = forward.packets();
            track.packets = received;
            track.packets_lost = expected.saturating_sub(received);
            let layers = if forward.simulcast() {
                forward.layers()
            } else {
                1
            };
            track.layer_bitrates_bps = forward.rates(now)[..layers].to_vec();
            track.receivers = forward
                .legs_view()
                .into_iter()
                .filter_map(|(to, layer, packets)| {
                    let user = media.iter().find(|(m, _)| *m == to)?.1.clone();
                    Some(crate::model::TrackReceiver {
                        user_id: user,
                        layer,
                        packets,
                    })
                })
                .collect();
        }
    }

    /// Memberships whose media the SFU handles now (for tests and the load tool).
    pub(crate) fn actor_count(&self) -> usize {
        lock(&self.actors).len()
    }

    /// Tasks alive on the media workers (actors, peer-connection drivers, readers, relays).
    pub(crate) fn task_count(&self) -> usize {
        self.shared.workers.alive_tasks()
    }
}

impl Shared {
    fn forward(&self, room: &RoomId, from: MediaId, source: TrackSource) -> Option<Forward> {
        lock(&self.forwards)
            .get(&(from, source))
            .filter(|f| &f.room == room)
            .cloned()
    }
}

//! The checks after every step: views equal the server's, sequence numbers gap-free, one
//! outcome per request, invitations agreed on by every side, the SFU model equal to the core.

use std::collections::BTreeSet;

use super::super::sim_actions::DEVICES;
use super::{Device, World, uid};
use crate::model::Role;

impl World {
    pub(crate) fn check(&self) {
        self.sfu.check(!self.stall && self.queued.is_empty());
        self.backend.check(&self.hub);
        assert_eq!(self.hub.banned_members(), 0, "a banned user is in the room");
        let open = self.hub.open_invitations();
        for (dev, device) in self.devices.iter().enumerate() {
            let Some(Device {
                conn,
                core,
                received,
                ends,
                up: true,
                ..
            }) = device
            else {
                // A cut device's view is out of date until it resumes.
                continue;
            };
            let session = core.session();
            assert_eq!(session.seq_faults(), 0, "device {dev} saw a sequence gap");
            assert_eq!(
                session.duplicates(),
                0,
                "device {dev} was sent a frame twice"
            );
            // With media commands waiting in the shell, media requests wait too.
            let settled = !self.stall && self.queued.is_empty();
            assert!(
                !settled || session.pending().count() == 0,
                "device {dev} has a request without an answer"
            );
            match (self.hub.room_of(*conn), session.room()) {
                (None, None) => {}
                (Some(id), Some(view)) => {
                    let room = self.hub.room(&id).expect("a member's room exists");
                    assert_eq!(view.room, id);
                    assert_eq!(view.seq, room.seq(), "device {dev}'s sequence number");
                    assert_eq!(
                        view.participants,
                        room.participants(),
                        "device {dev}'s roster"
                    );
                    assert_eq!(
                        &view.properties,
                        room.properties(),
                        "device {dev}'s properties"
                    );
                    assert_eq!(
                        view.publications,
                        room.publication_list(),
                        "device {dev}'s publications"
                    );
                    room.check_subscriptions();
                    // What the room shows as muted is what the media shell withholds.
                    for (media, publication) in room.publications_by_media() {
                        assert!(
                            !settled
                                || self.sfu.is_muted(media, publication.source)
                                    == publication.muted,
                            "{}: muted {} in the room, but not so in the media shell",
                            publication.id,
                            publication.muted
                        );
                    }
                    let (media, legs) = room.legs_of(crate::server::hub::SessionId(*conn));
                    assert!(
                        !settled || self.sfu.legs_of(media) == legs,
                        "device {dev}: the media shell's legs are the core's"
                    );
                    assert!(
                        room.participants().iter().any(|p| p.role == Role::Host),
                        "a room keeps a host"
                    );
                }
                (server, client) => panic!(
                    "device {dev}: server says {server:?}, client says {:?}",
                    client.map(|c| &c.room)
                ),
            }
            // Open invitations: the device's lists are exactly the server's.
            let user = uid(DEVICES[dev]);
            let to_me: BTreeSet<_> = open
                .iter()
                .filter(|(i, _)| i.callee == user)
                .map(|(i, _)| i.id)
                .collect();
            let by_me: BTreeSet<_> = open
                .iter()
                .filter(|(_, c)| c == conn)
                .map(|(i, _)| i.id)
                .collect();
            assert_eq!(
                session
                    .received_invitations()
                    .map(|i| i.id)
                    .collect::<BTreeSet<_>>(),
                to_me,
                "device {dev}: invitations to it"
            );
            assert_eq!(
                session
                    .sent_invitations()
                    .map(|i| i.id)
                    .collect::<BTreeSet<_>>(),
                by_me,
                "device {dev}: invitations by it"
            );
            // Each invitation reaches a device once and ends for it at most once.
            for (id, n) in received {
                assert_eq!(*n, 1, "device {dev} received {id} {n} times");
                let n_ends = ends.get(id).map_or(0, Vec::len);
                if to_me.contains(id) {
                    assert_eq!(n_ends, 0, "device {dev}: {id} is open but ended");
                } else {
                    assert_eq!(n_ends, 1, "device {dev}: {id} ended {n_ends} times");
                }
            }
        }
        // A caller still connected heard exactly once how each of its invitations ended.
        for (id, caller) in &self.made {
            if open.iter().any(|(i, _)| i.id == *id) {
                assert!(
                    !self.ended.contains_key(id),
                    "{id} is open but was seen to end"
                );
                continue;
            }
            if let Some(device) = self
                .devices
                .iter()
                .flatten()
                .find(|d| d.conn == *caller && d.up)
            {
                let n = device.ends.get(id).map_or(0, Vec::len);
                assert_eq!(n, 1, "the caller heard {n} ends of {id}");
            }
        }
        let cut: BTreeSet<u64> = self
            .devices
            .iter()
            .flatten()
            .filter(|d| !d.up)
            .map(|d| d.life)
            .collect();
        // With media commands waiting in the shell, a publish waits for its answer.
        let settled = !self.stall && self.queued.is_empty();
        for key in &self.sent {
            if cut.contains(&key.0) || !settled {
                assert!(self.outcomes.get(key).is_none_or(|n| *n <= 1));
                continue;
            }
            assert_eq!(
                self.outcomes.get(key),
                Some(&1),
                "exactly one outcome for {key:?}"
            );
        }
    }
}

//! A simulated world for testing the sans-IO cores together: devices each running a real
//! client core ([`ClientCore`], the one a `Call` runs), talking to a [`Hub`] through a simulated
//! network (frames in order, cuts the server may not notice, new connections when a client asks),
//! with no sockets and a hand-moved clock. A cut connection is noticed by the device's core as a
//! `Call` notices it (pings that get no answer, then the idle timeout) and brought back when it
//! says: it resumes, or logs in again, rejoins and publishes its tracks again. Each device's peer
//! connections are a small model: offers and answers are made at once, the server's offers wait
//! for an `Answer` action. The server may restart (a new hub: every session unknown, every
//! device logs in again and rejoins).
//! Sequences of actions come from the property test (`proptests.rs`) or from fuzzer bytes
//! ([`Action::decode`]). After every step, [`World::check`] asserts:
//! - every member's view equals the server's room; sequence numbers are gap-free;
//! - every request got exactly one outcome;
//! - every device's open invitations are exactly the server's;
//! - every invitation ends at most once per device, and all sides agree on how it ended;
//! - nothing comes out of a client core after its `Closed`;
//! - after a rejoin, a client publishes again exactly the tracks it had published.

//!
//! The world is here; `sim/network.rs` moves frames and connections, `sim/driver.rs` turns
//! actions into requests, `sim/checks.rs` holds the checks.

mod checks;
mod driver;
mod network;

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::sim_media::FakeSfu;
use crate::call::core::{ClientCore, Now, OfferJob, Start};
use crate::model::{InvitationId, OperationId, Reason, TrackSource, UserId};
use crate::protocol::ClientFrame;
use crate::server::hub::io::MediaCommand;
use crate::server::hub::{ConnId, Hub, HubConfig, Millis, testing};

pub(crate) use super::sim_actions::Action;
use super::sim_actions::DEVICES;

fn uid(i: usize) -> UserId {
    UserId::from(format!("u{i}"))
}

/// How an invitation ended, as one side saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Accepted,
    /// Declined or busy (`None`: another device of the callee declined; which way is not said).
    Declined(Option<Reason>),
    Expired,
    /// Ended from the caller's side: canceled, or the caller left the call.
    Withdrawn(Reason),
}

impl End {
    fn agrees(self, other: End) -> bool {
        match (self, other) {
            (End::Declined(a), End::Declined(b)) => a.is_none() || b.is_none() || a == b,
            (a, b) => a == b,
        }
    }
}

/// One logged-in device: its session (on the server: `conn`) and its connection now
/// (`transport`), its client core, its peer connections' model, and what it saw.
struct Device {
    conn: ConnId,
    transport: ConnId,
    /// Whether its connection carries frames; a cut one (`up: false`) loses every frame sent
    /// either way, and the server may not have noticed yet.
    up: bool,
    /// Numbers this client (ops count from 1 in each).
    life: u64,
    core: ClientCore,
    /// The sources its publishing connection sends.
    sending: BTreeSet<TrackSource>,
    /// The offers under way, by op: what each adds.
    offering: HashMap<OperationId, OfferJob>,
    /// The sources whose publish finished, and those it must publish again after a rejoin.
    published: BTreeSet<TrackSource>,
    republish: Option<BTreeSet<TrackSource>>,
    /// The server's offers it has not answered yet, and the receiving connection each is for
    /// (`Answer` takes one, in any order).
    offers: Vec<(u64, String, u64)>,
    received: HashMap<InvitationId, usize>,
    ends: HashMap<InvitationId, Vec<End>>,
    /// The invitation each of its cancel / accept / reject requests was about.
    answering: HashMap<OperationId, InvitationId>,
    /// The reason each of its reject requests gave.
    rejecting: HashMap<OperationId, Reason>,
    /// Its core said `Closed`.
    closed: bool,
    /// It is taking a new session's `welcome`: the old session's invitations end with it and
    /// are not followed (what it knew of invitations starts over).
    relogging: bool,
}

/// The hub, the devices and what they saw.
pub(crate) struct World {
    hub: Hub,
    /// The hub's configuration (a restarted server gets the same).
    config: HubConfig,
    sfu: FakeSfu,
    /// The media shell is slow: commands wait in `queued` until released.
    stall: bool,
    queued: Vec<MediaCommand>,
    now: Millis,
    devices: Vec<Option<Device>>,
    next_conn: ConnId,
    /// Outcomes seen per (client session, op), and every request made.
    outcomes: HashMap<(u64, u64), usize>,
    sent: Vec<(u64, u64)>,
    next_life: u64,
    /// Every invitation made: its caller's connection.
    made: HashMap<InvitationId, ConnId>,
    /// How each ended invitation ended, as first seen.
    ended: HashMap<InvitationId, End>,
    /// The application's backend: what the webhooks told it.
    backend: super::sim_backend::Backend,
    /// The instant the clients' cores count time from (the world's time 0).
    epoch: std::time::Instant,
    /// Frames on their way to devices (by connection), and from them to the server: each
    /// delivered in the order it was sent.
    /// (A frame to a device is marked when it is a `welcome`: a new session.)
    to_clients: VecDeque<(ConnId, String, bool)>,
    to_server: VecDeque<(ConnId, ClientFrame)>,
}

impl World {
    pub(crate) fn new(auto_reject_busy: bool, hold_offline_invitations: bool) -> Self {
        let config = HubConfig {
            auto_reject_busy,
            hold_offline_invitations,
            ..testing::config()
        };
        let mut w = World {
            hub: Hub::new(config.clone()),
            config,
            sfu: FakeSfu::default(),
            stall: false,
            queued: Vec::new(),
            now: 0,
            devices: (0..DEVICES.len()).map(|_| None).collect(),
            next_conn: 0,
            outcomes: HashMap::new(),
            sent: Vec::new(),
            next_life: 0,
            made: HashMap::new(),
            ended: HashMap::new(),
            backend: Default::default(),
            epoch: std::time::Instant::now(),
            to_clients: VecDeque::new(),
            to_server: VecDeque::new(),
        };
        for dev in 0..DEVICES.len() {
            w.connect(dev);
        }
        w
    }
}

/// A client core for user `user`, logged in at `now` with session key `resume_key`, with a
/// `Call`'s default options.
fn client_core(user: UserId, resume_key: String, seed: u64, now: Now) -> ClientCore {
    let token = match crate::server::hub::testing::hello(user.as_str()) {
        ClientFrame::Hello { token, .. } => token,
        _ => unreachable!("hello() makes a hello"),
    };
    let start = Start {
        seed,
        ..Start::new(
            user,
            resume_key,
            token,
            &crate::call::CallOptions::default(),
        )
    };
    ClientCore::new(start, now)
}

impl World {
    /// The world's time as the clients' cores count it.
    fn client_now(&self) -> Now {
        Now {
            at: self.epoch + std::time::Duration::from_millis(self.now),
            unix: self.now / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_server_restart_every_device_is_back_in_its_room_publishing_what_it_published() {
        let mut world = World::new(false, false);
        world.apply(Action::Join { dev: 0, room: 0 });
        world.apply(Action::Join { dev: 2, room: 0 });
        world.apply(Action::Publish {
            dev: 0,
            source: TrackSource::Camera,
        });
        world.check();
        world.apply(Action::Restart);
        world.check();
        for dev in [0, 2] {
            let d = world.devices[dev].as_ref().expect("still there");
            assert!(d.up, "device {dev} reconnected");
            let room = world.hub.room_of(d.conn).expect("in its room again");
            assert_eq!(room.as_str(), super::super::sim_actions::ROOMS[0]);
        }
        let d0 = world.devices[0].as_ref().unwrap();
        assert_eq!(d0.sending, BTreeSet::from([TrackSource::Camera]));
        assert!(d0.republish.is_none(), "the republish was made");
    }
}

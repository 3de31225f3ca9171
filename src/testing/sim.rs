//! A simulated world for testing the sans-IO core: devices with a client [`Session`] and a
//! client connection policy ([`LinkCore`]) each, sending requests to a [`Hub`] and fed its
//! output, with no sockets and a hand-moved clock. A cut connection is noticed by the device's
//! policy as a `Call` notices it (pings that get no answer, then the idle timeout) and brought
//! back when the policy says, resuming or rejoining at the world's time.
//! Sequences of actions come from the property test (`proptests.rs`) or from fuzzer bytes
//! ([`Action::decode`]). After every step, [`World::check`] asserts:
//! - every member's view equals the server's room; sequence numbers are gap-free;
//! - every request got exactly one outcome;
//! - every device's open invitations are exactly the server's;
//! - every invitation ends at most once per device, and all sides agree on how it ended.

//!
//! The world is here; `sim/network.rs` moves frames and connections, `sim/driver.rs` turns
//! actions into requests, `sim/checks.rs` holds the checks.

mod checks;
mod driver;
mod network;

use std::collections::{BTreeSet, HashMap};

use super::sim_media::FakeSfu;
use crate::call::policy::link::{LinkCore, LinkTiming};
use crate::call::session::Session;
use crate::model::{InvitationId, OperationId, Reason, TrackSource, UserId};
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
/// (`transport`), its client session, and what it saw of invitations.
struct Device {
    conn: ConnId,
    transport: ConnId,
    /// Whether its connection carries frames; a cut one (`up: false`) loses every frame sent
    /// either way, and the server may not have noticed yet.
    up: bool,
    resume_key: String,
    /// Numbers this client session (ops count from 1 in each).
    life: u64,
    session: Session,
    /// The sources its publishing connection sends, and the room they were offered in.
    sending: BTreeSet<TrackSource>,
    sending_room: Option<crate::model::RoomId>,
    /// The server's offers it has not answered yet (`Answer` takes one, in any order).
    offers: Vec<(u64, String)>,
    received: HashMap<InvitationId, usize>,
    ends: HashMap<InvitationId, Vec<End>>,
    /// The invitation each of its cancel / accept / reject requests was about.
    answering: HashMap<OperationId, InvitationId>,
    /// The reason each of its reject requests gave.
    rejecting: HashMap<OperationId, Reason>,
    /// Its connection policy, as a `Call`'s driver follows it: a cut it does not hear about
    /// becomes a lost connection after the idle timeout, and the policy brings it back.
    link: LinkCore,
}

/// The hub, the devices and what they saw.
pub(crate) struct World {
    hub: Hub,
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
    /// The instant the clients' policies count time from (the world's time 0).
    epoch: std::time::Instant,
}

impl World {
    pub(crate) fn new(auto_reject_busy: bool, hold_offline_invitations: bool) -> Self {
        let config = HubConfig {
            auto_reject_busy,
            hold_offline_invitations,
            ..testing::config()
        };
        let mut w = World {
            hub: Hub::new(config),
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
        };
        for dev in 0..DEVICES.len() {
            w.connect(dev);
        }
        w
    }
}

/// The timing of the devices' connection policy: a `Call`'s defaults.
fn link_timing() -> LinkTiming {
    let options = crate::call::CallOptions::default();
    LinkTiming {
        policy: options.reconnect,
        keepalive: options.keepalive,
        idle_timeout: options.idle_timeout,
        connect_timeout: options.connect_timeout,
    }
}

impl World {
    /// The world's time as the clients' policies count it.
    fn instant(&self) -> std::time::Instant {
        self.epoch + std::time::Duration::from_millis(self.now)
    }

    /// A policy for a device whose connection is up now.
    fn new_link(&self, dev: usize) -> LinkCore {
        LinkCore::new(link_timing(), self.instant(), dev as u64 + 1)
    }
}

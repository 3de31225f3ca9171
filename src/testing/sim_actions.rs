//! The simulator's actions: what a device (or time, or the network) can do in one step, and
//! how the fuzzer's bytes name one.

use crate::model::TrackSource;

/// The user of each device: users 0 and 1 have two devices each.
pub(crate) const DEVICES: [usize; 7] = [0, 0, 1, 1, 2, 3, 4];
pub(crate) const USERS: usize = 5;
pub(crate) const ROOMS: [&str; 2] = ["a", "b"];

/// One step of a simulation.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Join {
        dev: usize,
        room: usize,
    },
    Leave {
        dev: usize,
    },
    End {
        dev: usize,
    },
    /// A kick, with a ban: 0 none, 1 for the room's life, 2 for ten seconds.
    Kick {
        dev: usize,
        target: usize,
        ban: u8,
    },
    SetRole {
        dev: usize,
        target: usize,
        host: bool,
    },
    Update {
        dev: usize,
        audio: bool,
        state: u8,
    },
    SetCustom {
        dev: usize,
        key: u8,
        value: Option<u8>,
    },
    Share {
        dev: usize,
        target: usize,
        start: bool,
    },
    Record {
        dev: usize,
        on: bool,
    },
    Message {
        dev: usize,
        to: Option<usize>,
    },
    Invite {
        dev: usize,
        callees: Vec<usize>,
        timeout_s: Option<u8>,
    },
    /// Answer (or cancel) the `pick`-th open invitation this device knows of.
    Accept {
        dev: usize,
        pick: usize,
    },
    Reject {
        dev: usize,
        pick: usize,
        busy: bool,
    },
    Cancel {
        dev: usize,
        pick: usize,
    },
    /// Answer an invitation by id, whoever it is for (wrong moves included).
    AcceptAny {
        dev: usize,
        id: u64,
    },
    /// Time passes.
    Wait {
        seconds: u8,
    },
    /// The device's connection drops.
    Disconnect {
        dev: usize,
    },
    /// The device logs in (again).
    Connect {
        dev: usize,
    },
    /// The device's connection is cut without either side noticing: frames either way are lost.
    Cut {
        dev: usize,
    },
    /// The server notices a cut connection (the grace period starts).
    Notice {
        dev: usize,
    },
    /// A cut device connects again and resumes its session (or rejoins, when it is gone).
    Resume {
        dev: usize,
    },
    /// The device offers to publish this source (its offer sends every source it published
    /// in this room); the media model answers, and the track arrives.
    Publish {
        dev: usize,
        source: TrackSource,
    },
    /// The device answers one of the server's offers it holds (the `pick`-th: not
    /// necessarily the newest), or loses it.
    Answer {
        dev: usize,
        pick: usize,
        lose: bool,
    },
    /// One of the device's peer connections fails, and comes back at once (`back`: an ICE
    /// restart that worked) or not (a `Wait` past the grace period ends what it carried).
    PeerFail {
        dev: usize,
        publishing: bool,
        back: bool,
    },
    /// The media shell becomes slow (its commands wait), or catches up with all of them.
    Stall {
        on: bool,
    },
    /// The slow media shell carries out one waiting command (requests and reports then cross).
    Release {
        pick: usize,
    },
    /// The server restarts: rooms, sessions, invitations and media are gone, every connection
    /// closes, and each device reconnects (its session is unknown: it logs in again and
    /// rejoins).
    Restart,
    /// The device stops publishing.
    Unpublish {
        dev: usize,
        source: TrackSource,
    },
    /// The device mutes or unmutes its own track, or (`user`) another member's, as a host.
    Mute {
        dev: usize,
        source: TrackSource,
        muted: bool,
        user: Option<usize>,
    },
    /// The application's backend makes a server API request about `room` (`kind` picks which:
    /// make it, end it, remove `user`, ban them, a message, properties, mute).
    Backend {
        room: usize,
        kind: u8,
        user: usize,
    },
    /// The device subscribes to (or unsubscribes from) another user's track.
    Receive {
        dev: usize,
        user: usize,
        source: TrackSource,
        on: bool,
    },
}

pub(crate) const SOURCES: [TrackSource; 3] = [
    TrackSource::Microphone,
    TrackSource::Camera,
    TrackSource::Screen,
];

impl Action {
    /// Reads one action from fuzzer bytes; `None` when the bytes run out.
    pub(crate) fn decode(bytes: &mut &[u8]) -> Option<Action> {
        let mut next = || -> Option<usize> {
            let (first, rest) = bytes.split_first()?;
            *bytes = rest;
            Some(usize::from(*first))
        };
        let kind = next()?;
        let dev = next()? % DEVICES.len();
        let a = next()?;
        let b = next()?;
        let user = a % USERS;
        Some(match kind % 30 {
            0 => Action::Join {
                dev,
                room: a % ROOMS.len(),
            },
            1 => Action::Leave { dev },
            2 => Action::End { dev },
            3 => Action::Kick {
                dev,
                target: user,
                ban: (b % 3) as u8,
            },
            4 => Action::SetRole {
                dev,
                target: user,
                host: b % 2 == 0,
            },
            5 => Action::Update {
                dev,
                audio: a % 2 == 0,
                state: (b % 3) as u8,
            },
            6 => Action::SetCustom {
                dev,
                key: (a % 3) as u8,
                value: (b % 4 < 3).then_some((b % 3) as u8),
            },
            7 => Action::Share {
                dev,
                target: user,
                start: b % 2 == 0,
            },
            8 => Action::Record {
                dev,
                on: a % 2 == 0,
            },
            9 => Action::Message {
                dev,
                to: (b % 2 == 0).then_some(user),
            },
            10 => Action::Invite {
                dev,
                callees: if b % 3 == 0 {
                    vec![user, (user + 1) % USERS]
                } else {
                    vec![user]
                },
                timeout_s: (b % 2 == 0).then_some((b % 60) as u8 + 1),
            },
            11 => Action::Accept { dev, pick: a },
            12 => Action::Reject {
                dev,
                pick: a,
                busy: b % 2 == 0,
            },
            13 => Action::Cancel { dev, pick: a },
            14 => Action::AcceptAny {
                dev,
                id: (a % 12) as u64,
            },
            15 => Action::Wait {
                seconds: (a % 45) as u8,
            },
            16 => Action::Disconnect { dev },
            17 => Action::Connect { dev },
            18 => Action::Publish {
                dev,
                source: SOURCES[a % 3],
            },
            19 => Action::Unpublish {
                dev,
                source: SOURCES[a % 3],
            },
            20 => Action::Mute {
                dev,
                source: SOURCES[a % 3],
                muted: b % 2 == 0,
                user: (b % 3 == 0).then_some(user),
            },
            21 => Action::Receive {
                dev,
                user,
                source: SOURCES[b % 3],
                on: b % 2 == 0,
            },
            22 => Action::Answer {
                dev,
                pick: a,
                lose: b % 4 == 0,
            },
            23 => Action::PeerFail {
                dev,
                publishing: a % 2 == 0,
                back: b % 2 == 0,
            },
            24 if b % 8 == 7 => Action::Restart,
            24 => Action::Stall { on: a % 2 == 0 },
            25 => Action::Cut { dev },
            26 => Action::Notice { dev },
            27 => Action::Resume { dev },
            28 => Action::Backend {
                room: a % ROOMS.len(),
                kind: (b % 8) as u8,
                user,
            },
            _ => Action::Release { pick: a },
        })
    }
}

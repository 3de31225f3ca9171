//! Property-based test of the sans-IO core: random sequences of joins, leaves, kicks, roles,
//! updates, property changes, messages, invitations (invite, cancel, accept, reject, expiry),
//! devices going offline and coming back, run in the simulated world of `sim.rs`, which checks
//! its invariants after every step.

use proptest::prelude::*;

use super::sim::World;
use super::sim_actions::{Action, DEVICES, ROOMS, USERS};
use crate::model::TrackSource;

fn source() -> impl Strategy<Value = TrackSource> {
    prop_oneof![
        Just(TrackSource::Microphone),
        Just(TrackSource::Camera),
        Just(TrackSource::Screen),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let d = 0..DEVICES.len();
    let u = 0..USERS;
    prop_oneof![
        4 => (d.clone(), 0..ROOMS.len()).prop_map(|(dev, room)| Action::Join { dev, room }),
        1 => d.clone().prop_map(|dev| Action::Leave { dev }),
        1 => d.clone().prop_map(|dev| Action::End { dev }),
        1 => (d.clone(), u.clone(), 0..3u8)
            .prop_map(|(dev, target, ban)| Action::Kick { dev, target, ban }),
        1 => (d.clone(), u.clone(), any::<bool>()).prop_map(|(dev, target, host)| Action::SetRole { dev, target, host }),
        1 => (d.clone(), any::<bool>(), 0..3u8).prop_map(|(dev, audio, state)| Action::Update { dev, audio, state }),
        1 => (d.clone(), 0..3u8, proptest::option::of(0..3u8)).prop_map(|(dev, key, value)| Action::SetCustom { dev, key, value }),
        1 => (d.clone(), u.clone(), any::<bool>()).prop_map(|(dev, target, start)| Action::Share { dev, target, start }),
        1 => (d.clone(), any::<bool>()).prop_map(|(dev, on)| Action::Record { dev, on }),
        1 => (d.clone(), proptest::option::of(u.clone())).prop_map(|(dev, to)| Action::Message { dev, to }),
        2 => (0..ROOMS.len(), 0..8u8, u.clone()).prop_map(|(room, kind, user)| Action::Backend { room, kind, user }),
        4 => (d.clone(), proptest::collection::vec(u.clone(), 1..3), proptest::option::of(1..60u8))
            .prop_map(|(dev, callees, timeout_s)| Action::Invite { dev, callees, timeout_s }),
        3 => (d.clone(), 0..3usize).prop_map(|(dev, pick)| Action::Accept { dev, pick }),
        2 => (d.clone(), 0..3usize, any::<bool>()).prop_map(|(dev, pick, busy)| Action::Reject { dev, pick, busy }),
        2 => (d.clone(), 0..3usize).prop_map(|(dev, pick)| Action::Cancel { dev, pick }),
        1 => (d.clone(), 1..12u64).prop_map(|(dev, id)| Action::AcceptAny { dev, id }),
        2 => (0..45u8).prop_map(|seconds| Action::Wait { seconds }),
        1 => d.clone().prop_map(|dev| Action::Disconnect { dev }),
        2 => d.clone().prop_map(|dev| Action::Connect { dev }),
        2 => d.clone().prop_map(|dev| Action::Cut { dev }),
        1 => d.clone().prop_map(|dev| Action::Notice { dev }),
        3 => d.clone().prop_map(|dev| Action::Resume { dev }),
        3 => (d.clone(), source()).prop_map(|(dev, source)| Action::Publish { dev, source }),
        1 => (d.clone(), source()).prop_map(|(dev, source)| Action::Unpublish { dev, source }),
        1 => (d.clone(), source(), any::<bool>()).prop_map(|(dev, source, muted)| Action::Mute { dev, source, muted, user: None }),
        1 => (d.clone(), u.clone(), source(), any::<bool>()).prop_map(|(dev, user, source, muted)| Action::Mute { dev, source, muted, user: Some(user) }),
        2 => (d.clone(), u, source(), any::<bool>()).prop_map(|(dev, user, source, on)| Action::Receive { dev, user, source, on }),
        4 => (d.clone(), 0..3usize, proptest::bool::weighted(0.2)).prop_map(|(dev, pick, lose)| Action::Answer { dev, pick, lose }),
        1 => (d, any::<bool>(), any::<bool>())
            .prop_map(|(dev, publishing, back)| Action::PeerFail { dev, publishing, back }),
        1 => any::<bool>().prop_map(|on| Action::Stall { on }),
        4 => (0..8usize).prop_map(|pick| Action::Release { pick }),
        1 => Just(Action::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_view_matches_the_server(
        auto_reject_busy in any::<bool>(),
        hold_offline in any::<bool>(),
        actions in proptest::collection::vec(action(), 1..150),
    ) {
        let mut world = World::new(auto_reject_busy, hold_offline);
        for action in actions {
            world.apply(action);
            world.check();
        }
    }
}

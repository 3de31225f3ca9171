//! The speaker state machine (`server/hub/speakers.rs`) under random measurements: four
//! members, levels anywhere from loud to silent, windows 200 ms apart (sometimes late), and
//! silencings (mutes, leaves) at random. Checked on what it tells: a list goes out only when it
//! differs from the last one told, never sooner than the interval after it unless a member was
//! silenced; each list is in order (loudest first), without repeats, and names only members
//! with at least two windows at the threshold or louder in the last second and not silenced
//! since; a member's volume status changes at most once a second between silencings, and a
//! silencing sets it to none.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::model::{UserId, VolumeStatus};
use crate::server::hub::speakers::{
    SPEECH_MS, SpeakerConfig, Speakers, VOLUME_EVERY_MS, WINDOW_MS,
};

#[derive(Clone, Debug)]
enum Step {
    /// Member `who` measured `level` over a window ending `late` ms after the usual time.
    Measured { who: usize, level: u8, late: u64 },
    /// Member `who` muted, unpublished or left.
    Silenced { who: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..4usize, prop_oneof![0..40u8, 40..128u8], prop_oneof![3 => Just(0u64), 1 => 0..400u64])
            .prop_map(|(who, level, late)| Step::Measured { who, level, late }),
        1 => (0..4usize).prop_map(|who| Step::Silenced { who }),
    ]
}

fn run(interval_ms: u64, steps: &[Step]) {
    let config = SpeakerConfig {
        threshold_dbov: 35,
        interval_ms,
    };
    let mut speakers = Speakers::new(config);
    let users: Vec<UserId> = ["a", "b", "c", "d"].map(UserId::from).to_vec();
    let mut now = 0u64;
    // Each member's windows since it was last silenced; the last list told and when.
    let mut windows: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 4];
    let mut told: Option<(u64, Vec<UserId>)> = None;
    let mut volume_at: BTreeMap<usize, u64> = BTreeMap::new();
    for s in steps {
        let (heard, who, silenced) = match *s {
            Step::Measured { who, level, late } => {
                now += WINDOW_MS / 4 + late;
                windows[who].push((now, level.min(127)));
                (speakers.measured(&users[who], now, level), who, false)
            }
            Step::Silenced { who } => {
                windows[who].clear();
                (speakers.silenced(&users[who]), who, true)
            }
        };
        if let Some(list) = heard.speakers {
            let ids: Vec<UserId> = list.iter().map(|s| s.user_id.clone()).collect();
            if let Some((at, last)) = &told {
                assert_ne!(&ids, last, "a list told again unchanged");
                assert!(silenced || now - at >= interval_ms, "told too soon");
            }
            let unique: BTreeSet<&UserId> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "a speaker twice");
            assert!(
                list.windows(2).all(|w| w[0].level_dbov <= w[1].level_dbov),
                "not loudest first: {list:?}"
            );
            for speaker in &list {
                let i = users.iter().position(|u| *u == speaker.user_id).unwrap();
                let loud = windows[i]
                    .iter()
                    .filter(|(at, level)| now - at < SPEECH_MS && *level <= 35)
                    .count();
                assert!(
                    loud >= 2,
                    "{} speaks with {loud} loud windows",
                    speaker.user_id
                );
            }
            told = Some((now, ids));
        }
        if silenced {
            // A mute or a leave starts the member over (its unmuted microphone is new).
            assert!(heard.volume.is_none_or(|v| v == VolumeStatus::None));
            volume_at.remove(&who);
        } else if heard.volume.is_some() {
            if let Some(at) = volume_at.get(&who) {
                assert!(now - at >= VOLUME_EVERY_MS, "the volume flickered");
            }
            volume_at.insert(who, now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn speakers_are_told_in_order_when_they_change_and_never_too_often(
        interval_ms in prop_oneof![Just(0u64), Just(500u64), 100..2_000u64],
        steps in prop::collection::vec(step(), 1..400),
    ) {
        run(interval_ms, &steps);
    }
}

//! The net status state machine (`server/hub/net_status.rs`) under random samples: loss
//! anywhere from none to a third, silences, mutes, late samples, and the member's signaling
//! lost and back at random. Checked on what it tells: a change not to or from `Disconnected`
//! comes at least two seconds after the one before; `Disconnected` comes only with lost
//! signaling or after two silent samples in a row from a live publisher heard before;
//! nothing changes while signaling is lost except its coming back; and after any history, the
//! same sample over and over ends at that sample's own level and stays there.

use proptest::prelude::*;

use crate::model::NetStatus;
use crate::server::hub::net_status::{LinkSample, Loss, NET_EVERY_MS, NetQuality, SILENT_AFTER};

#[derive(Clone, Debug)]
enum Step {
    /// A sample `late` ms after the usual second, `permille` of 100 packets lost (`silent`:
    /// nothing arrived), with a live publication or not.
    Sample {
        permille: u64,
        silent: bool,
        live: bool,
        late: u64,
    },
    /// The signaling connection is lost (`true`) or back.
    Signaling(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => (0..=330u64, prop::bool::weighted(0.1), prop::bool::weighted(0.9), prop_oneof![3 => Just(0u64), 1 => 0..1_500u64])
            .prop_map(|(permille, silent, live, late)| Step::Sample { permille, silent, live, late }),
        1 => any::<bool>().prop_map(Step::Signaling),
    ]
}

fn sample(permille: u64, silent: bool) -> LinkSample {
    let lost = if silent { 0 } else { permille / 10 };
    LinkSample {
        up: Loss {
            expected: if silent { 0 } else { 100 },
            lost,
        },
        arrived: Some(if silent { 0 } else { 100 - lost }),
        ..LinkSample::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn net_status_keeps_its_rules(steps in prop::collection::vec(step(), 1..120), settle in 0..=330u64) {
        let mut q = NetQuality::default();
        let mut shown = NetStatus::VeryGood;
        let mut now = 0u64;
        let mut changed_at: Option<u64> = None;
        let mut lost = false;
        let mut heard = false;
        let mut silent_run = 0usize;
        for s in &steps {
            match *s {
                Step::Sample { permille, silent, live, late } => {
                    now += 1_000 + late;
                    let told = q.measured(now, &sample(permille, silent), live);
                    if lost {
                        prop_assert_eq!(told, None, "a change while signaling is lost");
                        continue;
                    }
                    let silence = silent && live && heard;
                    heard |= !silent;
                    silent_run = if silence { silent_run + 1 } else { 0 };
                    if let Some(to) = told {
                        prop_assert_ne!(to, shown);
                        if to == NetStatus::Disconnected {
                            prop_assert!(silent_run >= SILENT_AFTER, "disconnected after {} silent samples", silent_run);
                        } else if shown != NetStatus::Disconnected {
                            let since = changed_at.map(|at| now - at);
                            prop_assert!(since.is_none_or(|ms| ms >= NET_EVERY_MS), "changed again after {:?} ms", since);
                        }
                        shown = to;
                        changed_at = Some(now);
                    }
                }
                Step::Signaling(is_lost) => {
                    now += 10;
                    let told = q.signaling(is_lost, now);
                    if is_lost == lost {
                        prop_assert_eq!(told, None);
                        continue;
                    }
                    lost = is_lost;
                    heard = false;
                    silent_run = 0;
                    let expected = if lost { NetStatus::Disconnected } else { NetStatus::VeryGood };
                    prop_assert_eq!(told.unwrap_or(shown), expected);
                    shown = expected;
                    changed_at = Some(now);
                }
            }
        }
        // Whatever came before: the same sample again and again ends at its level and stays.
        q.signaling(false, now);
        let steady = sample(settle, false);
        let level = steady.level();
        for i in 0..12 {
            now += 1_000;
            if q.measured(now, &steady, true).is_some() {
                prop_assert!(i < 8, "still changing after {} samples", i);
            }
        }
        prop_assert_eq!(q.shown(), level);
    }
}

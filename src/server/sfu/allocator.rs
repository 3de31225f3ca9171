//! Sharing one receiver's bandwidth among the videos it receives, sans-IO: the receiving
//! connection's estimate (send-side GCC over transport-wide feedback), what each video's layers
//! cost now (measured by the forwarder), and the most each leg may get (the layer the core
//! chose for its request) go in; how far up each leg may go comes out. The SFU runs it every
//! half second per receiver and caps each leg's layer selector with the result.
//!
//! - Audio is never touched: its rate comes off the estimate first, with videos sent without
//!   simulcast (there is nothing to choose for them; the SFU does not pass them in).
//! - Every video gets its smallest layer being sent before any gets more, screen shares before
//!   cameras; a video whose smallest layer does not fit is paused (it resumes at a key frame
//!   when it fits again), but for the first one: it keeps its smallest layer whatever the
//!   estimate, as its packets carry the feedback the estimate recovers from (measured: with
//!   every video paused on a 300 kbit/s link, the estimate sat at its 100 kbit/s floor for
//!   13 s).
//! - The rest is spent by priority (screen shares, then cameras), one layer at a time, up to
//!   each leg's wanted layer.
//! - Hysteresis: stepping down uses 90 % of the estimate, stepping up only what fits in 75 % of
//!   it, and a leg moved down for bandwidth does not step up again for [`HOLD_AFTER_DOWN_MS`]
//!   (at most one layer per round). A drop is answered in the next round.
//! - Stepping up is a probe: while a leg sends less than the link carries, the estimate grows
//!   past the link's capacity (nothing contradicts it), so a step up may not hold. One undone
//!   within [`FAILED_STEP_UP_MS`] doubles the leg's hold (up to [`MAX_HOLD_MS`]); one that
//!   holds sets it back. On a link that stays low, the leg tries again at 6, 12, 24, 48 s….

use std::collections::BTreeMap;

use super::layers::Layer;

/// Share of the estimate the videos may use: at least this much headroom below it.
const USE_PERCENT: u64 = 90;
/// Share of the estimate below which a leg may step up (the band between this and
/// [`USE_PERCENT`] keeps a leg from flapping).
const STEP_UP_PERCENT: u64 = 75;
/// How long a leg stays down after a step down for bandwidth, at first.
pub(crate) const HOLD_AFTER_DOWN_MS: u64 = 6_000;
/// The longest hold: a leg whose steps up keep failing tries again this often.
pub(crate) const MAX_HOLD_MS: u64 = 60_000;
/// A step down this soon after a step up means the step up failed (the estimate had grown past
/// what the link carries while the leg sent less than it): the next hold is twice as long.
pub(crate) const FAILED_STEP_UP_MS: u64 = 10_000;

/// Which videos are served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// A screen share: text must stay readable.
    Screen,
    /// A camera.
    Camera,
}

/// What one video leg asks of the receiver's bandwidth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Demand {
    /// The publication.
    pub(crate) id: String,
    pub(crate) priority: Priority,
    /// The most it may get (the core's choice for the receiver's request).
    pub(crate) wanted: Layer,
    /// Each layer's rate now, in bits per second (0: not being sent).
    pub(crate) rates: Vec<u64>,
}

/// How far up a leg may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Up to this layer (and never above the wanted one).
    UpTo(Layer),
    /// Nothing: not even the smallest layer fits.
    Paused,
}

#[derive(Clone, Copy, Debug)]
struct LegState {
    budget: Budget,
    /// When the leg was last moved down for bandwidth.
    down_at_ms: Option<u64>,
    /// When it last stepped up.
    up_at_ms: Option<u64>,
    /// How long it stays down after a step down now.
    hold_ms: u64,
    /// Its budget is below what it wants: bandwidth holds it down.
    capped: bool,
}

/// One receiver's allocation.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    legs: BTreeMap<String, LegState>,
}

impl Allocator {
    /// Allocates `estimate_bps` (`None`: no estimate yet, nothing is capped) among `demands`
    /// at `now_ms`, after `audio_bps` for audio (and anything else not allocated). Returns the
    /// legs whose budget changed.
    pub(crate) fn allocate(
        &mut self,
        now_ms: u64,
        estimate_bps: Option<u64>,
        audio_bps: u64,
        demands: &[Demand],
    ) -> Vec<(String, Budget)> {
        self.legs
            .retain(|id, _| demands.iter().any(|d| &d.id == id));
        let mut order: Vec<&Demand> = demands.iter().collect();
        order.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        let plan = match estimate_bps {
            None => order
                .iter()
                .map(|d| Budget::UpTo(d.wanted))
                .collect::<Vec<_>>(),
            Some(estimate) => self.plan(now_ms, estimate, audio_bps, &order),
        };
        let mut changed = Vec::new();
        for (demand, budget) in order.iter().zip(plan) {
            match self.legs.get_mut(&demand.id) {
                Some(state) if state.budget == budget => continue,
                Some(state) => {
                    // Only steps the bandwidth made count: a leg moved by its receiver's
                    // request (its wanted layer) is neither held nor probing.
                    let capped = below(budget, Budget::UpTo(demand.wanted));
                    let was_capped = std::mem::replace(&mut state.capped, capped);
                    if !capped && !was_capped {
                    } else if below(budget, state.budget) {
                        // A step up that the link did not carry: wait twice as long next time.
                        let failed = state
                            .up_at_ms
                            .is_some_and(|up| now_ms.saturating_sub(up) < FAILED_STEP_UP_MS);
                        state.hold_ms = if failed {
                            (state.hold_ms * 2).min(MAX_HOLD_MS)
                        } else {
                            HOLD_AFTER_DOWN_MS
                        };
                        state.down_at_ms = Some(now_ms);
                    } else {
                        state.up_at_ms = Some(now_ms);
                    }
                    state.budget = budget;
                }
                None => {
                    let state = LegState {
                        budget,
                        down_at_ms: None,
                        up_at_ms: None,
                        hold_ms: HOLD_AFTER_DOWN_MS,
                        capped: below(budget, Budget::UpTo(demand.wanted)),
                    };
                    self.legs.insert(demand.id.clone(), state);
                }
            }
            changed.push((demand.id.clone(), budget));
        }
        changed
    }

    fn plan(&self, now_ms: u64, estimate: u64, audio: u64, order: &[&Demand]) -> Vec<Budget> {
        let usable = (estimate * USE_PERCENT / 100).saturating_sub(audio);
        let step_up_limit = (estimate * STEP_UP_PERCENT / 100).saturating_sub(audio);
        // Each leg's layers being sent, up to its wanted one, smallest first.
        let sent: Vec<Vec<Layer>> = order
            .iter()
            .map(|d| {
                (0..=d.wanted)
                    .filter(|l| d.rates.get(usize::from(*l)).is_some_and(|r| *r > 0))
                    .collect()
            })
            .collect();
        // Where each leg is now: its budget's layer among those sent (a new leg: its smallest).
        let mut at: Vec<Option<usize>> = vec![None; order.len()];
        let mut used = 0u64;
        // Everyone's smallest layer first. The first video (by priority) keeps its smallest
        // layer whatever the estimate says: its packets carry the feedback the estimate
        // recovers from (with nothing sent, it would stay at its floor).
        let mut first = true;
        for (i, d) in order.iter().enumerate() {
            let Some(&smallest) = sent[i].first() else {
                continue;
            };
            let cost = d.rates[usize::from(smallest)];
            if std::mem::take(&mut first) || used + cost <= usable {
                used += cost;
                at[i] = Some(0);
            }
        }
        // Then up, by priority, one layer at a time per pass, as far as the leg went before
        // (or higher, when it may step up and it fits below the step-up line).
        let mut moved = true;
        while moved {
            moved = false;
            for (i, d) in order.iter().enumerate() {
                let Some(k) = at[i] else { continue };
                let Some(&next) = sent[i].get(k + 1) else {
                    continue;
                };
                let cost =
                    d.rates[usize::from(next)].saturating_sub(d.rates[usize::from(sent[i][k])]);
                let previous = self.legs.get(&d.id).map(|s| s.budget);
                // Where it was, or anywhere up to its wanted layer when bandwidth did not hold
                // it down: the 90 % line applies, no hold, no one-layer steps.
                let within_before = matches!(previous, Some(Budget::UpTo(l)) if next <= l)
                    || self.legs.get(&d.id).is_some_and(|s| !s.capped);
                let allowed = if within_before {
                    used + cost <= usable
                } else {
                    let held = self.legs.get(&d.id).is_some_and(|s| {
                        s.down_at_ms
                            .is_some_and(|at| now_ms.saturating_sub(at) < s.hold_ms)
                    });
                    let stepped_this_round = previous.is_some_and(|p| match p {
                        Budget::UpTo(l) => sent[i][k] > l,
                        Budget::Paused => true,
                    });
                    !held && !stepped_this_round && used + cost <= step_up_limit
                };
                if allowed {
                    used += cost;
                    at[i] = Some(k + 1);
                    moved = true;
                }
            }
        }
        order
            .iter()
            .enumerate()
            .map(|(i, d)| match at[i] {
                Some(k) => Budget::UpTo(sent[i][k]),
                // Nothing sent to measure: nothing to spend.
                None if sent[i].is_empty() => Budget::UpTo(d.wanted),
                None => Budget::Paused,
            })
            .collect()
    }
}

/// Whether `a` gives less than `b`.
fn below(a: Budget, b: Budget) -> bool {
    match (a, b) {
        (Budget::Paused, Budget::UpTo(_)) => true,
        (Budget::UpTo(x), Budget::UpTo(y)) => x < y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KBPS: u64 = 1_000;

    fn camera(id: &str, wanted: Layer) -> Demand {
        Demand {
            id: id.into(),
            priority: Priority::Camera,
            wanted,
            rates: vec![150 * KBPS, 500 * KBPS, 1_500 * KBPS],
        }
    }

    /// The changes, by publication id.
    fn budgets(mut changes: Vec<(String, Budget)>) -> Vec<(String, Budget)> {
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        changes
    }

    #[test]
    fn without_an_estimate_nothing_is_capped() {
        let mut a = Allocator::default();
        assert_eq!(
            a.allocate(0, None, 0, &[camera("a/camera", 2)]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        assert_eq!(a.allocate(500, None, 0, &[camera("a/camera", 2)]), []);
    }

    #[test]
    fn a_drop_steps_down_at_once_and_up_only_after_the_hold_with_room_to_spare() {
        let mut a = Allocator::default();
        let legs = [camera("a/camera", 2)];
        // 2.5 Mbit/s: the full layer.
        assert_eq!(
            a.allocate(0, Some(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // 300 kbit/s: the smallest layer, in the same round.
        assert_eq!(
            a.allocate(500, Some(300 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        // Back to 2.5 Mbit/s: held for the hold time, then one layer per round.
        assert_eq!(a.allocate(1_000, Some(2_500 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(6_499, Some(2_500 * KBPS), 0, &legs), []);
        assert_eq!(
            a.allocate(6_500, Some(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(1))]
        );
        assert_eq!(
            a.allocate(7_000, Some(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // Between the step-up line and the use line: it stays where it is, either way.
        // (1.5 Mbit/s fits in 90 % of 1.7 but not in 75 %.)
        assert_eq!(a.allocate(7_500, Some(1_700 * KBPS), 0, &legs), []);
    }

    #[test]
    fn failed_steps_up_are_tried_less_and_less_often() {
        let mut a = Allocator::default();
        let legs = [camera("a/camera", 1)];
        let up = [("a/camera".to_owned(), Budget::UpTo(1))];
        let down = [("a/camera".to_owned(), Budget::UpTo(0))];
        assert_eq!(a.allocate(0, Some(1_000 * KBPS), 0, &legs), up);
        assert_eq!(a.allocate(500, Some(300 * KBPS), 0, &legs), down);
        // The estimate grows past the link while the leg sends little: up after 6 s…
        assert_eq!(a.allocate(6_500, Some(1_000 * KBPS), 0, &legs), up);
        // …which the link does not carry: down again, and now held 12 s.
        assert_eq!(a.allocate(8_000, Some(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(19_999, Some(1_000 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(20_000, Some(1_000 * KBPS), 0, &legs), up);
        assert_eq!(a.allocate(21_000, Some(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(44_999, Some(1_000 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(45_000, Some(1_000 * KBPS), 0, &legs), up);
        // A step up that holds: the next drop is held 6 s again.
        assert_eq!(a.allocate(60_000, Some(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(66_000, Some(1_000 * KBPS), 0, &legs), up);
    }

    #[test]
    fn a_receivers_own_requests_are_not_bandwidth_steps() {
        let mut a = Allocator::default();
        assert_eq!(
            a.allocate(0, Some(10_000 * KBPS), 0, &[camera("a/camera", 2)]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // The receiver asks for a thumbnail, then the full size again: no hold.
        assert_eq!(
            a.allocate(500, Some(10_000 * KBPS), 0, &[camera("a/camera", 0)]),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        assert_eq!(
            a.allocate(1_000, Some(10_000 * KBPS), 0, &[camera("a/camera", 2)]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
    }

    #[test]
    fn the_estimate_goes_to_audio_first_then_everyones_smallest_then_screens() {
        let mut a = Allocator::default();
        let screen = Demand {
            id: "b/screen".into(),
            priority: Priority::Screen,
            wanted: 2,
            rates: vec![200 * KBPS, 600 * KBPS, 1_200 * KBPS],
        };
        let legs = [camera("a/camera", 2), screen.clone(), camera("c/camera", 1)];
        // 1.4 Mbit/s, 100 kbit/s of audio: smallest layers (500 kbit/s) first, then the screen
        // share up a layer (+400), within 75 % of the estimate less audio (950); a camera's
        // next layer (+350) would not fit.
        let got = budgets(a.allocate(0, Some(1_400 * KBPS), 100 * KBPS, &legs));
        assert_eq!(
            got,
            [
                ("a/camera".to_owned(), Budget::UpTo(0)),
                ("b/screen".to_owned(), Budget::UpTo(1)),
                ("c/camera".to_owned(), Budget::UpTo(0)),
            ]
        );
        // 400 kbit/s: the cameras' smallest layers do not fit after the screen's: they are
        // paused; audio still comes off first.
        let got = budgets(a.allocate(500, Some(400 * KBPS), 100 * KBPS, &legs));
        assert_eq!(
            got,
            [
                ("a/camera".to_owned(), Budget::Paused),
                ("b/screen".to_owned(), Budget::UpTo(0)),
                ("c/camera".to_owned(), Budget::Paused),
            ]
        );
    }

    #[test]
    fn the_first_video_keeps_its_smallest_layer_whatever_the_estimate() {
        let mut a = Allocator::default();
        let legs = [camera("a/camera", 2), camera("b/camera", 2)];
        let got = budgets(a.allocate(0, Some(100 * KBPS), 40 * KBPS, &legs));
        assert_eq!(
            got,
            [
                ("a/camera".to_owned(), Budget::UpTo(0)),
                ("b/camera".to_owned(), Budget::Paused),
            ]
        );
    }

    #[test]
    fn layers_not_sent_are_skipped_and_a_leg_never_goes_above_its_wanted_layer() {
        let mut a = Allocator::default();
        let mut leg = camera("a/camera", 2);
        leg.rates[1] = 0;
        assert_eq!(
            a.allocate(0, Some(1_000 * KBPS), 0, &[leg.clone()]),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        leg.rates = vec![0, 0, 0];
        assert_eq!(
            a.allocate(500, Some(1_000 * KBPS), 0, &[leg]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        let mut a = Allocator::default();
        assert_eq!(
            a.allocate(0, Some(10_000 * KBPS), 0, &[camera("a/camera", 1)]),
            [("a/camera".to_owned(), Budget::UpTo(1))]
        );
    }
}

//! Sharing one receiver's bandwidth among the videos it receives, sans-IO: the receiving
//! connection's estimate (send-side GCC over transport-wide feedback, or the receiver's own in
//! REMB when that is lower or all there is; see [`Source`]), what each video's layers
//! cost now (measured by the forwarder), and the most each leg may get (the layer the core
//! chose for its request) go in; how far up each leg may go comes out. The SFU runs it every
//! half second per receiver and caps each leg's layer selector with the result.
//!
//! - Audio is never touched: its rate comes off the estimate first, with videos sent without
//!   simulcast (there is nothing to choose for them; the SFU does not pass them in).
//! - Every video gets its smallest layer being sent before any gets more, screen shares before
//!   the speaker's camera before other cameras; a video whose smallest layer does not fit is paused (it resumes at a key frame
//!   when it fits again), but for the first one: it keeps its smallest layer whatever the
//!   estimate, as its packets carry the feedback the estimate recovers from (measured: with
//!   every video paused on a 300 kbit/s link, the estimate sat at its 100 kbit/s floor for
//!   13 s).
//! - The rest is spent by priority (screen shares, then the loudest speaker's camera, then the
//!   other cameras), one layer at a time, up to each leg's wanted layer.
//! - Hysteresis: stepping down uses 90 % of the estimate, stepping up only what fits in 75 % of
//!   it, and a leg moved down for bandwidth does not step up again for [`HOLD_AFTER_DOWN_MS`]
//!   (at most one layer per round). A drop is answered in the next round.
//! - Stepping up is a probe: while a leg sends less than the link carries, the estimate grows
//!   past the link's capacity (nothing contradicts it), so a step up may not hold. One undone
//!   within [`FAILED_STEP_UP_MS`] doubles the leg's hold (up to [`MAX_HOLD_MS`]); one that
//!   holds sets it back. On a link that stays low, the leg tries again at 6, 12, 24, 48 s….
//! - A receiver's own estimate (REMB) never shows room above what it receives, and climbs
//!   after a step up rather than before: it is read by its trend ([`Source::Receiver`]).

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

/// Share of what a connection sends that a receiver-reported estimate must reach for the link
/// to count as uncongested (see [`Source::Receiver`]).
const RECEIVER_CEILING_PERCENT: u64 = 130;

/// Where a receiver's bandwidth estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The SFU's own (GCC over the receiver's transport-wide feedback): while the link has
    /// room it grows past what is sent.
    SendSide,
    /// The receiver's (REMB): receive-side estimators never report much above what they
    /// receive (1.5 × plus 10 kbit/s in libwebrtc's and aiortc's), so the estimate cannot show
    /// room for the next layer, and after a step up it climbs to the new rate over seconds.
    /// They lower it only on congestion. So: while it sits near that ceiling (at least
    /// [`RECEIVER_CEILING_PERCENT`] of what is sent), a leg whose hold is over steps up one
    /// layer as a probe; while it does not fall, the legs keep what they have even when it is
    /// below what is sent (it is still climbing); when it falls, they are fitted to it as
    /// usual (a probe the link did not carry is undone, and the leg's next hold is twice as
    /// long).
    Receiver,
}

/// A receiver's bandwidth estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Estimate {
    /// Bits per second.
    pub(crate) bps: u64,
    pub(crate) source: Source,
}

impl Estimate {
    /// The lower of the SFU's own estimate and the receiver's report, if there is either.
    pub(crate) fn lower(send_side: Option<u64>, receiver: Option<u64>) -> Option<Estimate> {
        let own = send_side.map(|bps| Estimate {
            bps,
            source: Source::SendSide,
        });
        let reported = receiver.map(|bps| Estimate {
            bps,
            source: Source::Receiver,
        });
        match (own, reported) {
            (Some(own), Some(reported)) if reported.bps < own.bps => Some(reported),
            (own, reported) => own.or(reported),
        }
    }
}

/// Which videos are served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// A screen share: text must stay readable.
    Screen,
    /// The camera of the room's loudest speaker: the face people look at.
    Speaker,
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
    /// The previous round's estimate, if the receiver reported it.
    reported_before: Option<u64>,
}

impl Allocator {
    /// Allocates `estimate` (`None`: no estimate yet, nothing is capped) among `demands` at
    /// `now_ms`, after `audio_bps` for audio (and anything else not allocated). Returns the
    /// legs whose budget changed.
    pub(crate) fn allocate(
        &mut self,
        now_ms: u64,
        estimate: Option<Estimate>,
        audio_bps: u64,
        demands: &[Demand],
    ) -> Vec<(String, Budget)> {
        self.legs
            .retain(|id, _| demands.iter().any(|d| &d.id == id));
        let mut order: Vec<&Demand> = demands.iter().collect();
        order.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        let reported_before = std::mem::replace(
            &mut self.reported_before,
            estimate
                .filter(|e| e.source == Source::Receiver)
                .map(|e| e.bps),
        );
        let plan = match estimate {
            None => order
                .iter()
                .map(|d| Budget::UpTo(d.wanted))
                .collect::<Vec<_>>(),
            Some(estimate) => self.plan(now_ms, estimate, reported_before, audio_bps, &order),
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

    /// Each leg's budget for `estimate` (`reported_before`: the previous round's, if the
    /// receiver reported it).
    fn plan(
        &self,
        now_ms: u64,
        estimate: Estimate,
        reported_before: Option<u64>,
        audio: u64,
        order: &[&Demand],
    ) -> Vec<Budget> {
        // What the connection sends now: audio, and each leg's current layer.
        let sending = audio
            + order
                .iter()
                .filter_map(|d| match self.legs.get(&d.id)?.budget {
                    Budget::UpTo(l) => d.rates.get(usize::from(l.min(d.wanted))).copied(),
                    Budget::Paused => None,
                })
                .sum::<u64>();
        let reported = estimate.source == Source::Receiver;
        let probe = reported && estimate.bps * 100 >= sending * RECEIVER_CEILING_PERCENT;
        let usable = (estimate.bps * USE_PERCENT / 100).saturating_sub(audio);
        // A receiver's estimate that did not fall: no congestion, whatever its level; what is
        // sent now may go on.
        let usable = if reported && reported_before.is_none_or(|before| estimate.bps >= before) {
            usable.max(sending.saturating_sub(audio))
        } else {
            usable
        };
        let step_up_limit = (estimate.bps * STEP_UP_PERCENT / 100).saturating_sub(audio);
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
                    // A probe is a step from where the leg was.
                    let limit = if probe && previous.is_some() {
                        u64::MAX
                    } else {
                        step_up_limit
                    };
                    !held && !stepped_this_round && used + cost <= limit
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

    /// The SFU's own estimate of `bps`.
    fn own(bps: u64) -> Option<Estimate> {
        Estimate::lower(Some(bps), None)
    }

    /// A receiver's (REMB) estimate of `bps`.
    fn reported(bps: u64) -> Option<Estimate> {
        Estimate::lower(None, Some(bps))
    }

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
            a.allocate(0, own(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // 300 kbit/s: the smallest layer, in the same round.
        assert_eq!(
            a.allocate(500, own(300 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        // Back to 2.5 Mbit/s: held for the hold time, then one layer per round.
        assert_eq!(a.allocate(1_000, own(2_500 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(6_499, own(2_500 * KBPS), 0, &legs), []);
        assert_eq!(
            a.allocate(6_500, own(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(1))]
        );
        assert_eq!(
            a.allocate(7_000, own(2_500 * KBPS), 0, &legs),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // Between the step-up line and the use line: it stays where it is, either way.
        // (1.5 Mbit/s fits in 90 % of 1.7 but not in 75 %.)
        assert_eq!(a.allocate(7_500, own(1_700 * KBPS), 0, &legs), []);
    }

    #[test]
    fn failed_steps_up_are_tried_less_and_less_often() {
        let mut a = Allocator::default();
        let legs = [camera("a/camera", 1)];
        let up = [("a/camera".to_owned(), Budget::UpTo(1))];
        let down = [("a/camera".to_owned(), Budget::UpTo(0))];
        assert_eq!(a.allocate(0, own(1_000 * KBPS), 0, &legs), up);
        assert_eq!(a.allocate(500, own(300 * KBPS), 0, &legs), down);
        // The estimate grows past the link while the leg sends little: up after 6 s…
        assert_eq!(a.allocate(6_500, own(1_000 * KBPS), 0, &legs), up);
        // …which the link does not carry: down again, and now held 12 s.
        assert_eq!(a.allocate(8_000, own(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(19_999, own(1_000 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(20_000, own(1_000 * KBPS), 0, &legs), up);
        assert_eq!(a.allocate(21_000, own(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(44_999, own(1_000 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(45_000, own(1_000 * KBPS), 0, &legs), up);
        // A step up that holds: the next drop is held 6 s again.
        assert_eq!(a.allocate(60_000, own(300 * KBPS), 0, &legs), down);
        assert_eq!(a.allocate(66_000, own(1_000 * KBPS), 0, &legs), up);
    }

    #[test]
    fn a_receivers_own_requests_are_not_bandwidth_steps() {
        let mut a = Allocator::default();
        assert_eq!(
            a.allocate(0, own(10_000 * KBPS), 0, &[camera("a/camera", 2)]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        // The receiver asks for a thumbnail, then the full size again: no hold.
        assert_eq!(
            a.allocate(500, own(10_000 * KBPS), 0, &[camera("a/camera", 0)]),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        assert_eq!(
            a.allocate(1_000, own(10_000 * KBPS), 0, &[camera("a/camera", 2)]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
    }

    #[test]
    fn the_speakers_camera_goes_up_before_the_other_cameras() {
        let mut a = Allocator::default();
        let speaker = Demand {
            priority: Priority::Speaker,
            ..camera("z/camera", 2)
        };
        let legs = [camera("a/camera", 2), speaker];
        // 1 Mbit/s, no audio: both smallest layers (300 kbit/s), then one more layer (+350),
        // which goes to the speaker's camera though it sorts last by id.
        let got = budgets(a.allocate(0, own(1_000 * KBPS), 0, &legs));
        assert_eq!(
            got,
            [
                ("a/camera".to_owned(), Budget::UpTo(0)),
                ("z/camera".to_owned(), Budget::UpTo(1)),
            ]
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
        let got = budgets(a.allocate(0, own(1_400 * KBPS), 100 * KBPS, &legs));
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
        let got = budgets(a.allocate(500, own(400 * KBPS), 100 * KBPS, &legs));
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
        let got = budgets(a.allocate(0, own(100 * KBPS), 40 * KBPS, &legs));
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
            a.allocate(0, own(1_000 * KBPS), 0, &[leg.clone()]),
            [("a/camera".to_owned(), Budget::UpTo(0))]
        );
        leg.rates = vec![0, 0, 0];
        assert_eq!(
            a.allocate(500, own(1_000 * KBPS), 0, &[leg]),
            [("a/camera".to_owned(), Budget::UpTo(2))]
        );
        let mut a = Allocator::default();
        assert_eq!(
            a.allocate(0, own(10_000 * KBPS), 0, &[camera("a/camera", 1)]),
            [("a/camera".to_owned(), Budget::UpTo(1))]
        );
    }

    #[test]
    fn the_lower_estimate_counts_and_says_where_it_came_from() {
        assert_eq!(Estimate::lower(None, None), None);
        assert_eq!(
            Estimate::lower(Some(2_500 * KBPS), Some(300 * KBPS)),
            reported(300 * KBPS)
        );
        assert_eq!(
            Estimate::lower(Some(300 * KBPS), Some(2_500 * KBPS)),
            own(300 * KBPS)
        );
    }

    #[test]
    fn a_receivers_estimate_at_its_ceiling_is_probed_and_a_climbing_one_is_waited_for() {
        let mut a = Allocator::default();
        let legs = [camera("a/camera", 2)];
        let at = |b: Layer| [("a/camera".to_owned(), Budget::UpTo(b))];
        // The receiver reports 2.5 Mbit/s: the full layer; then 300 kbit/s (its report fell:
        // congestion): the smallest layer (150 kbit/s), held there.
        assert_eq!(a.allocate(0, reported(2_500 * KBPS), 0, &legs), at(2));
        assert_eq!(a.allocate(500, reported(300 * KBPS), 0, &legs), at(0));
        assert_eq!(a.allocate(1_000, reported(170 * KBPS), 0, &legs), []);
        // It climbs to 1.5 × what it receives, its ceiling: after the hold, one layer up as a
        // probe, although 500 kbit/s is above the report.
        assert_eq!(a.allocate(1_500, reported(235 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(6_499, reported(235 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(6_500, reported(235 * KBPS), 0, &legs), at(1));
        // The report climbs towards the new rate, still below it: the layer is kept.
        assert_eq!(a.allocate(7_000, reported(300 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(7_500, reported(400 * KBPS), 0, &legs), []);
        // At its ceiling again (≥ 130 % of 500 kbit/s): the next probe, the full layer.
        assert_eq!(a.allocate(8_000, reported(650 * KBPS), 0, &legs), at(2));
        // It falls below what is sent: the link did not carry it; down to what fits, and the
        // probe failed within 10 s, so the next hold is twice as long.
        assert_eq!(a.allocate(9_000, reported(600 * KBPS), 0, &legs), at(1));
        assert_eq!(a.allocate(9_500, reported(800 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(20_999, reported(800 * KBPS), 0, &legs), []);
        assert_eq!(a.allocate(21_000, reported(800 * KBPS), 0, &legs), at(2));
    }
}

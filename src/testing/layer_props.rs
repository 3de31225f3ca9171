//! The leg selector (`server/sfu/layers.rs`) under random streams: three layers each with its
//! own numbers (starting anywhere, wrapping), key frames at random, losses, and the target
//! changed (as a request moves it, or at once as the allocator steps it down), paused and
//! resumed, and the publisher's track replaced at random. Checked on what
//! one leg forwards: its numbers go up by one per packet with no gap but the layer's own losses
//! (none when nothing is lost), its timestamps never go back, nothing is sent while paused, and
//! the first packet after any change of what is forwarded is a key frame of the target.

use proptest::prelude::*;

use crate::server::sfu::layers::{Incoming, LegSelector, Verdict};

#[derive(Clone, Debug)]
enum Step {
    /// Layer `layer` sends a packet (a key frame or not), which may be lost.
    Send {
        layer: u8,
        keyframe: bool,
        lost: bool,
    },
    /// The leg's target changes (`None`: paused); `at_once`: as the allocator moves it (a step
    /// down stops the current layer at once).
    Target { target: Option<u8>, at_once: bool },
    /// The publisher's track is replaced: every layer's numbers start over elsewhere.
    Replace { seq: u16 },
}

fn step(losses: bool) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..3u8, prop::bool::weighted(0.15), prop::bool::weighted(if losses { 0.1 } else { 0.0 }))
            .prop_map(|(layer, keyframe, lost)| Step::Send { layer, keyframe, lost }),
        2 => (prop::option::weighted(0.8, 0..3u8), any::<bool>())
            .prop_map(|(target, at_once)| Step::Target { target, at_once }),
        1 => any::<u16>().prop_map(|seq| Step::Replace { seq }),
    ]
}

/// Runs `steps`; the forwarded packets (layer, key frame, seq, timestamp, lost since the
/// layer's previous packet) and whether each came right after a change.
fn run(start: u16, steps: &[Step]) {
    let mut leg = LegSelector::new(90_000, Some(0));
    let mut seqs = [
        start,
        start.wrapping_add(20_000),
        start.wrapping_add(40_000),
    ];
    let mut stamps = [0u32, 1_000_000, 2_000_000];
    let mut lost_since = [0u16; 3];
    let mut at_ms = 0u64;
    let mut target = Some(0u8);
    // (seq, timestamp, the layer forwarded) of the last packet sent, and whether a change
    // (target, pause, replacement) happened since.
    let mut last: Option<(u16, u32, u8)> = None;
    let mut changed = true;
    for s in steps {
        match *s {
            Step::Send {
                layer,
                keyframe,
                lost,
            } => {
                let l = usize::from(layer);
                at_ms += 10;
                seqs[l] = seqs[l].wrapping_add(1);
                stamps[l] = stamps[l].wrapping_add(900);
                if lost {
                    lost_since[l] += 1;
                    continue;
                }
                let packet = Incoming {
                    layer,
                    seq: seqs[l],
                    timestamp: stamps[l],
                    keyframe,
                    at_ms,
                };
                let verdict = leg.packet(&packet);
                let Verdict::Forward { seq, timestamp } = verdict else {
                    continue;
                };
                assert!(target.is_some(), "sent while paused");
                match last {
                    Some((prev_seq, prev_ts, prev_layer)) => {
                        let same = prev_layer == layer && !changed;
                        let step = seq.wrapping_sub(prev_seq);
                        if same {
                            assert_eq!(step, 1 + lost_since[l], "numbers within a layer");
                        } else {
                            assert_eq!(step, 1, "numbers across a switch");
                            assert!(keyframe, "a switch only at a key frame");
                            assert_eq!(Some(layer), target, "a switch only to the target");
                        }
                        assert!(
                            (timestamp.wrapping_sub(prev_ts) as i32) > 0,
                            "timestamps go forward"
                        );
                    }
                    None => assert!(keyframe, "the first packet is a key frame"),
                }
                last = Some((seq, timestamp, layer));
                lost_since[l] = 0;
                changed = false;
            }
            Step::Target { target: t, at_once } => {
                if at_once {
                    leg.set_target_at_once(t);
                    // A step down below the layer forwarded stops it now: what comes next is
                    // renumbered at a key frame.
                    if let (Some(t), Some((_, _, forwarded))) = (t, last)
                        && forwarded > t
                    {
                        changed = true;
                    }
                } else {
                    leg.set_target(t);
                }
                if t != target {
                    // A change of target only matters once a switch happens (checked above);
                    // a pause and its resume always start over at a key frame.
                    if t.is_none() || target.is_none() {
                        changed = true;
                    }
                    target = t;
                }
            }
            Step::Replace { seq } => {
                leg.source_changed();
                seqs = [seq, seq.wrapping_add(20_000), seq.wrapping_add(40_000)];
                stamps = [stamps[0] ^ 0x5555_0000, stamps[1], stamps[2] ^ 0x00aa_0000];
                lost_since = [0; 3];
                changed = true;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_leg_numbers_on_without_gaps_and_switches_only_at_key_frames(
        start in any::<u16>(),
        steps in prop::collection::vec(step(false), 1..300),
    ) {
        run(start, &steps);
    }

    #[test]
    fn a_legs_gaps_are_the_layers_own_losses(
        start in any::<u16>(),
        steps in prop::collection::vec(step(true), 1..300),
    ) {
        run(start, &steps);
    }
}

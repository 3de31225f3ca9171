//! Which layer of a published video one subscriber's leg forwards, and how the leg's packets are
//! renumbered so the subscriber sees one continuous stream, sans-IO: the forwarder calls it once
//! per packet per leg with what it read from the packet, and writes what it says. Nothing here
//! knows the transport, so it stays when the SFU's data plane changes.
//!
//! - A leg forwards one layer at a time (the *current* one) and moves to the *target* layer
//!   (what the subscriber asked for, within what its bandwidth allows) only at a key frame of
//!   the target: until then it keeps forwarding the current layer, and asks for a key frame of
//!   the target at most every clamp(2 × RTT, 200 ms, 1 s).
//! - Sequence numbers stay contiguous across switches, pauses and a publisher's new track: the
//!   first packet forwarded after one of them is numbered one after the highest number sent, and
//!   the layer's later packets keep that offset (so the subscriber's NACKs still name real
//!   packets). Timestamps are re-based at the same point by the time that passed since the last
//!   packet sent (at the codec's clock rate), so they never go back.
//! - Paused (no target) forwards nothing; resuming waits for a key frame and re-bases, so the
//!   subscriber sees no gap for the packets it did not get while paused.

pub(crate) use crate::server::hub::io::Layer;

/// One packet, as the forwarder read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) layer: Layer,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    /// It starts a key frame of its layer.
    pub(crate) keyframe: bool,
    /// When it arrived, in milliseconds on the forwarder's clock.
    pub(crate) at_ms: u64,
}

/// What the leg does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it with these numbers.
    Forward { seq: u16, timestamp: u32 },
    /// Not for this leg.
    Drop(Dropped),
}

/// Why a packet is not forwarded on a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The leg is paused.
    Paused,
    /// Of a layer the leg does not forward now.
    OtherLayer,
    /// Of the target layer, before the key frame the switch waits for.
    WaitingForKeyframe,
    /// Of the current layer, but from before the leg switched to it (a late packet).
    BeforeSwitch,
}

/// How the current layer's numbers map to the leg's.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    layer: Layer,
    seq_offset: u16,
    ts_offset: u32,
    /// Packets of the layer numbered before this are dropped: the first one forwarded since
    /// the switch, later [`FLOOR_TRAIL`] behind the newest.
    floor: u16,
}

/// The highest-numbered packet the leg sent.
#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u16,
    timestamp: u32,
    at_ms: u64,
}

/// One leg's layer selection and renumbering.
#[derive(Clone, Debug)]
pub(crate) struct LegSelector {
    clock_rate: u32,
    target: Option<Layer>,
    current: Option<Mapping>,
    sent: Option<Sent>,
    /// When a key frame was last asked for.
    asked_at_ms: Option<u64>,
}

/// How far behind the newest packet of its layer a leg's floor trails: a packet that late is
/// turned away anyway. Moving the floor on keeps it within half the number space of the packets
/// coming in; a floor left where the switch put it would, 32,768 packets later, make every new
/// number look older than it and stop the leg until the numbers came round again.
const FLOOR_TRAIL: u16 = 0x4000;

/// Whether `a` comes before `b` in sequence-number order (with wrap-around).
fn before(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) < 0
}

impl LegSelector {
    /// A leg of a stream at `clock_rate` Hz, forwarding `target` (paused when `None`).
    pub(crate) fn new(clock_rate: u32, target: Option<Layer>) -> Self {
        LegSelector {
            clock_rate,
            target,
            current: None,
            sent: None,
            asked_at_ms: None,
        }
    }

    /// The layer the leg should forward (`None`: paused). A new target is taken at its next key
    /// frame; a pause takes effect at once, and resuming waits for a key frame.
    pub(crate) fn set_target(&mut self, target: Option<Layer>) {
        if target.is_none() {
            self.current = None;
        }
        if self.target != target {
            self.asked_at_ms = None;
        }
        self.target = target;
    }

    /// Like [`set_target`](Self::set_target), for a step down the link forces: a current layer
    /// above the target stops at once instead of at the target's key frame, as its packets
    /// would only queue on the congested link ahead of that key frame (measured on a link cut to
    /// 300 kbit/s: the small layer's key frame took up to 17 s to get through). The subscriber's
    /// picture holds still until the key frame arrives.
    pub(crate) fn set_target_at_once(&mut self, target: Option<Layer>) {
        if let (Some(m), Some(t)) = (self.current, target)
            && m.layer > t
        {
            self.current = None;
        }
        self.set_target(target);
    }

    /// The layer whose packets the leg forwards now (the target's once switched), if any.
    pub(crate) fn forwarding(&self) -> Option<Layer> {
        self.current.map(|m| m.layer).or(self.target)
    }

    /// The publisher sent the source again on a new track (new numbers): the leg waits for its
    /// key frame and carries on from where it was.
    pub(crate) fn source_changed(&mut self) {
        self.current = None;
        self.asked_at_ms = None;
    }

    /// What to do with `packet` on this leg.
    pub(crate) fn packet(&mut self, packet: &Incoming) -> Verdict {
        let Some(target) = self.target else {
            return Verdict::Drop(Dropped::Paused);
        };
        if let Some(m) = self.current
            && m.layer == packet.layer
        {
            if before(packet.seq, m.floor) {
                return Verdict::Drop(Dropped::BeforeSwitch);
            }
            let trail = packet.seq.wrapping_sub(FLOOR_TRAIL);
            if before(m.floor, trail)
                && let Some(current) = &mut self.current
            {
                current.floor = trail;
            }
            // The current layer goes on until the target's key frame (or is the target).
            return self.forward(packet, m);
        }
        if packet.layer != target {
            return Verdict::Drop(Dropped::OtherLayer);
        }
        if !packet.keyframe {
            return Verdict::Drop(Dropped::WaitingForKeyframe);
        }
        let mapping = self.rebase(packet);
        self.current = Some(mapping);
        self.asked_at_ms = None;
        self.forward(packet, mapping)
    }

    /// Which layer to ask a key frame of now, if the leg waits for one and the last ask is
    /// older than clamp(2 × `rtt_ms`, 200, 1000) ms.
    pub(crate) fn keyframe_wanted(&mut self, now_ms: u64, rtt_ms: u64) -> Option<Layer> {
        let target = self.target?;
        if self.current.is_some_and(|m| m.layer == target) {
            return None;
        }
        let every = (2 * rtt_ms).clamp(200, 1000);
        if self
            .asked_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) < every)
        {
            return None;
        }
        self.asked_at_ms = Some(now_ms);
        Some(target)
    }

    /// The mapping that numbers `packet` one after the highest number sent, and its
    /// timestamp by the time since that packet (at least one tick later).
    fn rebase(&self, packet: &Incoming) -> Mapping {
        let (out_seq, out_ts) = match self.sent {
            Some(sent) => {
                let elapsed = packet.at_ms.saturating_sub(sent.at_ms);
                let ticks = (elapsed * u64::from(self.clock_rate) / 1000).max(1);
                (
                    sent.seq.wrapping_add(1),
                    sent.timestamp.wrapping_add(ticks as u32),
                )
            }
            // The first packet of the leg keeps its numbers.
            None => (packet.seq, packet.timestamp),
        };
        Mapping {
            layer: packet.layer,
            seq_offset: out_seq.wrapping_sub(packet.seq),
            ts_offset: out_ts.wrapping_sub(packet.timestamp),
            floor: packet.seq,
        }
    }

    fn forward(&mut self, packet: &Incoming, m: Mapping) -> Verdict {
        let seq = packet.seq.wrapping_add(m.seq_offset);
        let timestamp = packet.timestamp.wrapping_add(m.ts_offset);
        if self.sent.is_none_or(|s| before(s.seq, seq)) {
            self.sent = Some(Sent {
                seq,
                timestamp,
                at_ms: packet.at_ms,
            });
        }
        Verdict::Forward { seq, timestamp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(layer: Layer, seq: u16, timestamp: u32, keyframe: bool, at_ms: u64) -> Incoming {
        Incoming {
            layer,
            seq,
            timestamp,
            keyframe,
            at_ms,
        }
    }

    fn fwd(seq: u16, timestamp: u32) -> Verdict {
        Verdict::Forward { seq, timestamp }
    }

    #[test]
    fn a_stream_flows_on_past_the_number_space_and_late_packets_stay_out() {
        let mut leg = LegSelector::new(90_000, Some(0));
        let start = 65_000u16;
        let mut next = None;
        // 200,000 packets: the numbers wrap three times.
        for i in 0..200_000u32 {
            let seq = start.wrapping_add(i as u16);
            let verdict = leg.packet(&p(0, seq, i * 90, i == 0, u64::from(i)));
            let Verdict::Forward { seq: out, .. } = verdict else {
                panic!("packet {i} not forwarded: {verdict:?}");
            };
            assert_eq!(next.unwrap_or(out), out, "packet {i}");
            next = Some(out.wrapping_add(1));
        }
        let newest = start.wrapping_add(199_999u32 as u16);
        // A resend a little late is forwarded; one from further back than the trail is not.
        assert!(matches!(
            leg.packet(&p(0, newest.wrapping_sub(100), 0, false, 200_000)),
            Verdict::Forward { .. }
        ));
        assert_eq!(
            leg.packet(&p(
                0,
                newest.wrapping_sub(FLOOR_TRAIL + 10),
                0,
                false,
                200_000
            )),
            Verdict::Drop(Dropped::BeforeSwitch)
        );
    }

    #[test]
    fn a_switch_waits_for_the_targets_key_frame_and_numbers_on() {
        let mut leg = LegSelector::new(90_000, Some(0));
        // Nothing before the first key frame of the target.
        assert_eq!(
            leg.packet(&p(0, 100, 1000, false, 0)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
        assert_eq!(leg.packet(&p(0, 101, 1000, true, 0)), fwd(101, 1000));
        assert_eq!(leg.packet(&p(0, 102, 4000, false, 33)), fwd(102, 4000));
        assert_eq!(
            leg.packet(&p(1, 7000, 50, false, 33)),
            Verdict::Drop(Dropped::OtherLayer)
        );
        // Layer 1 asked for: layer 0 goes on until layer 1's key frame.
        leg.set_target(Some(1));
        assert_eq!(leg.keyframe_wanted(40, 10), Some(1));
        assert_eq!(leg.keyframe_wanted(100, 10), None);
        assert_eq!(
            leg.packet(&p(1, 7001, 3050, false, 66)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
        assert_eq!(leg.packet(&p(0, 103, 7000, false, 66)), fwd(103, 7000));
        // The key frame: number 104, timestamp 33 ms (2,970 ticks) after the last sent.
        assert_eq!(leg.packet(&p(1, 7002, 6050, true, 99)), fwd(104, 9970));
        assert_eq!(leg.packet(&p(1, 7003, 9050, false, 132)), fwd(105, 12970));
        // The old layer's packets stop; a late packet of the new one from before the switch
        // is dropped, a reordered one after it keeps its place.
        assert_eq!(
            leg.packet(&p(0, 104, 10000, false, 132)),
            Verdict::Drop(Dropped::OtherLayer)
        );
        assert_eq!(
            leg.packet(&p(1, 7001, 3050, false, 140)),
            Verdict::Drop(Dropped::BeforeSwitch)
        );
        assert_eq!(leg.packet(&p(1, 7005, 15050, false, 200)), fwd(107, 18970));
        assert_eq!(leg.packet(&p(1, 7004, 12050, false, 201)), fwd(106, 15970));
        assert_eq!(leg.keyframe_wanted(1000, 10), None);
    }

    #[test]
    fn a_forced_step_down_stops_the_current_layer_at_once() {
        let mut leg = LegSelector::new(90_000, Some(2));
        assert_eq!(leg.packet(&p(2, 10, 0, true, 0)), fwd(10, 0));
        leg.set_target_at_once(Some(0));
        assert_eq!(leg.forwarding(), Some(0));
        assert_eq!(leg.keyframe_wanted(10, 50), Some(0));
        assert_eq!(
            leg.packet(&p(2, 11, 3000, false, 33)),
            Verdict::Drop(Dropped::OtherLayer)
        );
        assert_eq!(
            leg.packet(&p(0, 500, 3000, false, 33)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
        // Numbered on from the last packet sent, 100 ms later.
        assert_eq!(leg.packet(&p(0, 501, 6000, true, 100)), fwd(11, 9000));
        // Up again: the current layer goes on until the larger one's key frame, as always.
        leg.set_target_at_once(Some(2));
        assert_eq!(leg.packet(&p(0, 502, 9000, false, 133)), fwd(12, 12000));
        assert_eq!(
            leg.packet(&p(2, 20, 9000, false, 133)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
    }

    #[test]
    fn a_pause_sends_nothing_and_a_resume_numbers_on_from_a_key_frame() {
        let mut leg = LegSelector::new(90_000, Some(0));
        assert_eq!(leg.packet(&p(0, 65_535, 0, true, 0)), fwd(65_535, 0));
        leg.set_target(None);
        assert_eq!(
            leg.packet(&p(0, 0, 3000, false, 33)),
            Verdict::Drop(Dropped::Paused)
        );
        assert_eq!(leg.keyframe_wanted(40, 50), None);
        leg.set_target(Some(0));
        assert_eq!(leg.keyframe_wanted(1000, 50), Some(0));
        assert_eq!(
            leg.packet(&p(0, 30, 90_000, false, 1000)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
        // Wrapped to 0: one after 65,535; a second later on the clock.
        assert_eq!(leg.packet(&p(0, 31, 93_000, true, 1000)), fwd(0, 90_000));
        assert_eq!(leg.packet(&p(0, 32, 96_000, false, 1033)), fwd(1, 93_000));
    }

    #[test]
    fn a_publishers_new_track_numbers_on() {
        let mut leg = LegSelector::new(90_000, Some(0));
        leg.packet(&p(0, 500, 10, true, 0));
        leg.packet(&p(0, 501, 3010, false, 33));
        leg.source_changed();
        assert_eq!(
            leg.packet(&p(0, 20_000, 777, false, 50)),
            Verdict::Drop(Dropped::WaitingForKeyframe)
        );
        assert_eq!(
            leg.packet(&p(0, 20_001, 777, true, 66)),
            fwd(502, 3010 + 2970)
        );
    }

    #[test]
    fn key_frame_asks_are_spaced_by_twice_the_rtt_within_bounds() {
        let mut leg = LegSelector::new(90_000, Some(2));
        assert_eq!(leg.keyframe_wanted(0, 5), Some(2));
        // 2 × 5 ms is under the 200 ms floor.
        assert_eq!(leg.keyframe_wanted(199, 5), None);
        assert_eq!(leg.keyframe_wanted(200, 5), Some(2));
        // 2 × 2 s is over the 1 s ceiling.
        assert_eq!(leg.keyframe_wanted(1199, 2000), None);
        assert_eq!(leg.keyframe_wanted(1200, 2000), Some(2));
        // 2 × 300 ms.
        assert_eq!(leg.keyframe_wanted(1799, 300), None);
        assert_eq!(leg.keyframe_wanted(1800, 300), Some(2));
    }
}

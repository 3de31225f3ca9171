//! What arrived of a published track, counted as RFC 3550 counts it: packets expected (from
//! each stream's sequence numbers) and packets received. The reader counts (two relaxed
//! atomic adds a packet, no lock); the actor's link meter reads the totals once a second.

use std::sync::atomic::{AtomicU64, Ordering};

/// A sequence number this far past the highest is a restarted stream, not a loss.
const RESTART_GAP: u16 = 3_000;

/// The totals of one track (shared with a replacing track's reader).
#[derive(Debug, Default)]
pub(crate) struct PacketCount {
    expected: AtomicU64,
    received: AtomicU64,
}

impl PacketCount {
    /// A packet arrived that moved its stream's highest sequence number on by `expected` (0 for
    /// a late or repeated packet).
    pub(crate) fn add(&self, expected: u64) {
        self.expected.fetch_add(expected, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Packets expected and received since the track started.
    pub(crate) fn read(&self) -> (u64, u64) {
        (
            self.expected.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// One stream's highest sequence number (the reader's own).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sequence {
    highest: Option<u16>,
}

impl Sequence {
    /// Packet `seq` arrived: by how many the stream's highest sequence number moved on (the
    /// packets it makes expected; 0 for a late or repeated one, 1 for a restarted stream's).
    pub(crate) fn advance(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return 1;
        };
        match seq.wrapping_sub(highest) {
            0 | 0x8000.. => 0,
            gap if gap < RESTART_GAP => {
                self.highest = Some(seq);
                u64::from(gap)
            }
            _ => {
                self.highest = Some(seq);
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_expected_late_and_repeated_packets_are_not_and_wraps_count_on() {
        let count = PacketCount::default();
        let mut seq = Sequence::default();
        for s in [65_530u16, 65_531, 65_533, 65_532, 65_533, 2, 3] {
            count.add(seq.advance(s));
        }
        // 65,530 to 3 is 10 numbers; 7 packets arrived (one of them twice).
        assert_eq!(count.read(), (10, 7));
        // A jump past the restart gap is a new start, not thousands lost.
        count.add(seq.advance(20_000));
        assert_eq!(count.read(), (11, 8));
    }
}

//! The sequence numbers a leg carried and never carried. A leg keeps its publisher's numbering
//! (shifted at layer switches), so:
//!
//! - a packet the publisher lost before the server is a number the receiver never gets: its
//!   receiver reports count it lost, though its own link lost nothing. The gap log remembers
//!   those numbers (a late packet, sent again by the publisher and forwarded, fills its gap),
//!   so the receiver's loss can be told apart from what was never sent
//!   ([`GapLog::skipped_through`]);
//! - a packet the publisher sent again after the first one did arrive (its resend of a packet
//!   the server asked for twice) is a number the leg already carried: sent again, the receiver
//!   drops it as a replay, and its transport-wide feedback then reports a packet lost, which
//!   drives the bandwidth estimate down for a loss that is no one's. [`GapLog::admit`] turns
//!   those away.
//!
//! Arithmetic only; a leg's reader asks it per packet, and it does work only on a gap or a
//! late packet.

use std::collections::BTreeSet;

/// Numbers kept individually behind the highest; older gaps are only counted.
const KEPT: u64 = 1 << 13;

/// A jump this far is a restarted numbering, not a gap.
const RESTART: u64 = 3_000;

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub(crate) struct GapLog {
    /// The highest number sent, extended past wraps.
    highest: Option<u64>,
    /// Numbers below it never sent (within [`KEPT`]).
    missing: BTreeSet<u64>,
    /// Numbers never sent that fell out of `missing`.
    forgotten: u64,
}

impl GapLog {
    /// `seq` as an extended number near the highest.
    fn extend(&self, seq: u16) -> Option<u64> {
        let highest = self.highest?;
        let near = highest & !0xffff | u64::from(seq);
        [
            near.checked_sub(0x1_0000),
            Some(near),
            Some(near + 0x1_0000),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|n| n.abs_diff(highest))
    }

    /// Whether the leg is to send a packet numbered `seq`: yes, and it is counted as carried,
    /// unless the leg carried that number already (or it is too old to tell).
    pub(crate) fn admit(&mut self, seq: u16) -> bool {
        // Almost every packet: the next number, no gap to prune.
        if let Some(highest) = self.highest
            && self.missing.is_empty()
            && seq == (highest as u16).wrapping_add(1)
        {
            self.highest = Some(highest + 1);
            return true;
        }
        let Some(ext) = self.extend(seq) else {
            self.highest = Some(0x1_0000 + u64::from(seq));
            return true;
        };
        let highest = self.highest.unwrap_or(ext);
        if ext > highest {
            if ext - highest < RESTART {
                self.missing.extend(highest + 1..ext);
            }
            self.highest = Some(ext);
            while let Some(&oldest) = self.missing.first()
                && oldest + KEPT < ext
            {
                self.missing.pop_first();
                self.forgotten += 1;
            }
            true
        } else if highest - ext >= RESTART {
            // Numbered anew from further back (a replaced track): a new start, not a replay.
            self.forgotten += self.missing.len() as u64;
            self.missing.clear();
            self.highest = Some(ext);
            true
        } else {
            self.missing.remove(&ext)
        }
    }

    /// How many numbers up to `seq` (the highest a receiver reported) the leg never sent.
    pub(crate) fn skipped_through(&self, seq: u16) -> u64 {
        let Some(ext) = self.extend(seq) else {
            return 0;
        };
        self.forgotten + self.missing.range(..=ext).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_until_filled_and_only_up_to_the_number_asked() {
        let mut log = GapLog::default();
        for seq in [65_530u16, 65_531, 65_534, 65_535, 2, 3] {
            assert!(log.admit(seq));
        }
        // Never sent: 65,532, 65,533, 0 and 1.
        assert_eq!(log.skipped_through(3), 4);
        assert_eq!(log.skipped_through(65_535), 2);
        assert_eq!(log.skipped_through(65_531), 0);
        // 65,533 comes late (sent again by its publisher): its gap is filled.
        assert!(log.admit(65_533));
        assert_eq!(log.skipped_through(3), 3);
        // It, or any number carried, again: turned away.
        assert!(!log.admit(65_533));
        assert!(!log.admit(2));
        assert!(!log.admit(3));
        // A restarted numbering is no gap, forwards or backwards.
        assert!(log.admit(30_000));
        assert_eq!(log.skipped_through(30_000), 3);
        assert!(log.admit(20_000));
        assert!(log.admit(20_001));
        assert!(!log.admit(20_000));
    }

    #[test]
    fn old_gaps_are_still_counted_once_forgotten() {
        let mut log = GapLog::default();
        log.admit(0);
        log.admit(2);
        for seq in 3..=(KEPT as u16 + 10) {
            log.admit(seq);
        }
        // Too old to tell whether it was carried (but not so far back as to be a new start):
        // turned away.
        assert!(!log.admit(KEPT as u16 + 10 - 2_000));
        assert_eq!(log.missing.len(), 0);
        assert_eq!(log.skipped_through(KEPT as u16 + 10), 1);
    }
}

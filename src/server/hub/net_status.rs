//! How well a member's media gets through, sans-IO: the SFU measures each member's two peer
//! connections every [`MEASURE_EVERY_MS`] (`sfu/link_meter.rs`: a [`LinkSample`], no decoding)
//! and the core turns the samples into the seed's six net status levels here.
//!
//! - A sample's level is the worst its measures allow (the table is [`LinkSample::level`]):
//!   loss of either direction (what the server counts of what the member sends, what the
//!   member's receiver reports say of what it is sent), the audio's jitter, the round-trip
//!   time, and the receiving connection's bandwidth estimate against what its videos need. The
//!   loss is counted over the last two samples together (a microphone's 50 packets a second
//!   alone would read 10 % loss anywhere from 4 to 14 %).
//! - The status falls when [`DOWN_AFTER`] samples in a row are worse (to the better of them),
//!   and rises when [`UP_AFTER`] in a row are better (to the worst of them): it falls faster than
//!   it recovers, and one bad second (which counts in two samples' loss) moves nothing.
//! - It changes at most once per [`NET_EVERY_MS`] (each change is a participant update every
//!   member receives), except to and from `Disconnected`, which are news at once.
//! - `Disconnected`: the member's signaling connection is lost, or [`SILENT_AFTER`] samples in a
//!   row heard nothing from a member that sent before and still has a live (unmuted)
//!   publication. The first sample that hears it again gives its level at once, its loss left
//!   out (the silence itself reads as loss); a member whose signaling is back starts over at
//!   `VeryGood`.

use std::collections::VecDeque;

use super::io::Millis;
use crate::model::NetStatus;

/// How often the SFU measures a member's media.
pub(crate) const MEASURE_EVERY_MS: Millis = 1_000;

/// A member's net status changes at most this often (but see `Disconnected`).
pub(crate) const NET_EVERY_MS: Millis = 2_000;

/// Worse samples in a row that lower the status.
pub(crate) const DOWN_AFTER: usize = 3;

/// Better samples in a row that raise it.
pub(crate) const UP_AFTER: usize = 4;

/// Silent samples in a row that make a member `Disconnected`.
pub(crate) const SILENT_AFTER: usize = 2;

/// Fewer packets than this in a sample say nothing about loss.
pub(crate) const MIN_PACKETS: u64 = 20;

/// Packets of one direction over one sample: how many were expected and how many were lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Loss {
    pub(crate) expected: u64,
    pub(crate) lost: u64,
}

impl Loss {
    /// Both together.
    pub(crate) fn plus(self, other: Loss) -> Loss {
        Loss {
            expected: self.expected + other.expected,
            lost: self.lost + other.lost,
        }
    }

    /// The loss in tenths of a percent, if there were packets enough to tell.
    pub(crate) fn permille(&self) -> Option<u64> {
        (self.expected >= MIN_PACKETS).then(|| self.lost.min(self.expected) * 1_000 / self.expected)
    }
}

/// What the SFU measured of one member's media over one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkSample {
    /// What the member sent the server (its published tracks).
    pub(crate) up: Loss,
    /// What the server sent the member, as the member's receiver reports say.
    pub(crate) down: Loss,
    /// The worst audio jitter either side reported, in milliseconds.
    pub(crate) jitter_ms: Option<u32>,
    /// The round-trip time, in milliseconds.
    pub(crate) rtt_ms: Option<u32>,
    /// The receiving connection's bandwidth estimate, if it has one.
    pub(crate) estimate_bps: Option<u64>,
    /// What the receiving connection's tracks need: at the sizes asked for, and at the
    /// smallest sizes.
    pub(crate) wanted_bps: u64,
    pub(crate) least_bps: u64,
    /// Packets that arrived from the member on its publishing connection, if it has one.
    pub(crate) arrived: Option<u64>,
}

impl LinkSample {
    /// The level this sample alone shows: the worst of
    ///
    /// | measure | `Good` at most | `Normal` at most | `Bad` at most | `VeryBad` |
    /// |---|---|---|---|---|
    /// | loss, either direction | ≥ 2 % | ≥ 4 % | ≥ 8 % | ≥ 20 % |
    /// | audio jitter | ≥ 50 ms | ≥ 100 ms | ≥ 200 ms | |
    /// | round trip | ≥ 250 ms | ≥ 400 ms | ≥ 700 ms | |
    /// | bandwidth estimate | below the sizes asked | | below the smallest sizes | |
    ///
    /// (`VeryGood` otherwise.) Silence is judged by [`NetQuality`], which knows whether the
    /// member should be sending.
    pub(crate) fn level(&self) -> NetStatus {
        use NetStatus::*;
        let loss = self.up.permille().max(self.down.permille()).unwrap_or(0);
        let by_loss = match loss {
            200.. => VeryBad,
            80.. => Bad,
            40.. => Normal,
            20.. => Good,
            _ => VeryGood,
        };
        let by_jitter = match self.jitter_ms.unwrap_or(0) {
            200.. => Bad,
            100.. => Normal,
            50.. => Good,
            _ => VeryGood,
        };
        let by_rtt = match self.rtt_ms.unwrap_or(0) {
            700.. => Bad,
            400.. => Normal,
            250.. => Good,
            _ => VeryGood,
        };
        let by_bandwidth = match self.estimate_bps {
            Some(e) if e < self.least_bps => Bad,
            Some(e) if e < self.wanted_bps => Good,
            _ => VeryGood,
        };
        by_loss.min(by_jitter).min(by_rtt).min(by_bandwidth)
    }
}

/// One member's net status (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct NetQuality {
    /// The status as last told.
    shown: NetStatus,
    /// When it last changed (by a measurement).
    changed_at: Option<Millis>,
    /// The levels of the latest samples, the newest last (at most [`UP_AFTER`]).
    recent: VecDeque<NetStatus>,
    /// The previous sample's losses (up, down), if it heard the member.
    previous: Option<(Loss, Loss)>,
    /// Silent samples in a row.
    silent: usize,
    /// Whether anything ever arrived on the member's publishing connection.
    heard_once: bool,
    /// The member's signaling connection is lost.
    lost: bool,
    /// The latest sample (what the server API shows).
    latest: Option<LinkSample>,
}

impl NetQuality {
    /// The status as last told.
    #[cfg(test)]
    pub(crate) fn shown(&self) -> NetStatus {
        self.shown
    }

    /// The latest sample, if any came.
    pub(crate) fn latest(&self) -> Option<&LinkSample> {
        self.latest.as_ref()
    }

    /// A sample measured at `now`; `live` says whether the member has a published, unmuted
    /// track (whether silence means something). The new status, if it changed.
    pub(crate) fn measured(
        &mut self,
        now: Millis,
        sample: &LinkSample,
        live: bool,
    ) -> Option<NetStatus> {
        self.latest = Some(*sample);
        if self.lost {
            // Signaling decides until the member is back.
            return None;
        }
        let silent = match sample.arrived {
            Some(0) => live && self.heard_once,
            Some(_) => {
                self.heard_once = true;
                false
            }
            None => false,
        };
        self.silent = if silent { self.silent + 1 } else { 0 };
        if silent {
            self.previous = None;
        }
        if self.silent >= SILENT_AFTER {
            self.recent.clear();
            return self.set(NetStatus::Disconnected, now);
        }
        if silent {
            return None;
        }
        let losses = (sample.up, sample.down);
        if self.shown == NetStatus::Disconnected {
            // Heard again: that is news at once (its loss is the silence's).
            self.recent.clear();
            let level = LinkSample {
                up: Loss::default(),
                down: Loss::default(),
                ..*sample
            }
            .level();
            self.recent.push_back(level);
            return self.set(level, now);
        }
        let (up, down) = match self.previous.replace(losses) {
            Some((up, down)) => (up.plus(sample.up), down.plus(sample.down)),
            None => losses,
        };
        let level = LinkSample {
            up,
            down,
            ..*sample
        }
        .level();
        self.recent.push_back(level);
        while self.recent.len() > UP_AFTER {
            self.recent.pop_front();
        }
        let due = self
            .changed_at
            .is_none_or(|at| now.saturating_sub(at) >= NET_EVERY_MS);
        if !due {
            return None;
        }
        let newest = |n: usize| self.recent.iter().rev().take(n);
        let worse = self.recent.len() >= DOWN_AFTER && newest(DOWN_AFTER).all(|l| *l < self.shown);
        let better = self.recent.len() >= UP_AFTER && newest(UP_AFTER).all(|l| *l > self.shown);
        let to = if worse {
            newest(DOWN_AFTER).max().copied()
        } else if better {
            newest(UP_AFTER).min().copied()
        } else {
            None
        }?;
        self.set(to, now)
    }

    /// The member's signaling connection is lost (`true`) or back (`false`): the new status,
    /// if it changed (`Disconnected`; back, `VeryGood` until measured again).
    pub(crate) fn signaling(&mut self, lost: bool, now: Millis) -> Option<NetStatus> {
        if self.lost == lost {
            return None;
        }
        self.lost = lost;
        self.recent.clear();
        self.previous = None;
        self.silent = 0;
        self.heard_once = false;
        self.set(
            if lost {
                NetStatus::Disconnected
            } else {
                NetStatus::VeryGood
            },
            now,
        )
    }

    fn set(&mut self, to: NetStatus, now: Millis) -> Option<NetStatus> {
        if to == self.shown {
            return None;
        }
        self.shown = to;
        self.changed_at = Some(now);
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NetStatus::*;

    fn lossy(permille: u64) -> LinkSample {
        LinkSample {
            up: Loss {
                expected: 1_000,
                lost: permille,
            },
            arrived: Some(1_000 - permille),
            ..LinkSample::default()
        }
    }

    #[test]
    fn each_measure_caps_the_level_by_its_table() {
        assert_eq!(lossy(0).level(), VeryGood);
        assert_eq!(lossy(19).level(), VeryGood);
        assert_eq!(lossy(20).level(), Good);
        assert_eq!(lossy(40).level(), Normal);
        assert_eq!(lossy(100).level(), Bad);
        assert_eq!(lossy(200).level(), VeryBad);
        let down = LinkSample {
            down: Loss {
                expected: 100,
                lost: 9,
            },
            ..LinkSample::default()
        };
        assert_eq!(down.level(), Bad);
        // Too few packets to tell.
        let few = LinkSample {
            down: Loss {
                expected: 10,
                lost: 5,
            },
            ..LinkSample::default()
        };
        assert_eq!(few.level(), VeryGood);
        let slow = LinkSample {
            rtt_ms: Some(450),
            jitter_ms: Some(60),
            ..LinkSample::default()
        };
        assert_eq!(slow.level(), Normal);
        let narrow = LinkSample {
            estimate_bps: Some(100_000),
            wanted_bps: 1_000_000,
            least_bps: 150_000,
            ..LinkSample::default()
        };
        assert_eq!(narrow.level(), Bad);
        let stepped_down = LinkSample {
            least_bps: 50_000,
            ..narrow
        };
        assert_eq!(stepped_down.level(), Good);
    }

    #[test]
    fn it_falls_after_three_worse_samples_and_rises_after_four_better_ones() {
        let mut q = NetQuality::default();
        assert_eq!(q.shown(), VeryGood);
        // 10 %, then 15 % over two samples twice: the best of the three levels is 10 %'s.
        assert_eq!(q.measured(1_000, &lossy(100), true), None);
        assert_eq!(q.measured(2_000, &lossy(200), true), None);
        assert_eq!(q.measured(3_000, &lossy(100), true), Some(Bad));
        // 5 % (with the one before), then 0 %, 1 %, 2 %: four better ones in a row, to the
        // worst of them.
        assert_eq!(q.measured(4_000, &lossy(0), true), None);
        assert_eq!(q.measured(5_000, &lossy(0), true), None);
        assert_eq!(q.measured(6_000, &lossy(20), true), None);
        assert_eq!(q.measured(7_000, &lossy(20), true), Some(Normal));
        // Worse again within 2 s of that change: not yet.
        for t in 8..10 {
            assert_eq!(q.measured(t * 1_000, &lossy(300), true), None);
        }
        assert_eq!(q.measured(10_000, &lossy(300), true), Some(Bad));
    }

    #[test]
    fn one_bad_second_moves_nothing_and_the_loss_is_counted_over_two() {
        let mut q = NetQuality::default();
        for t in 1..20 {
            let permille = if t % 3 == 0 { 120 } else { 0 };
            assert_eq!(q.measured(t * 1_000, &lossy(permille), true), None);
        }
        // 4 % alone, then 5 % over two samples twice: all three are normal.
        let mut q = NetQuality::default();
        assert_eq!(q.measured(1_000, &lossy(40), true), None);
        assert_eq!(q.measured(2_000, &lossy(60), true), None);
        assert_eq!(q.measured(3_000, &lossy(40), true), Some(Normal));
    }

    #[test]
    fn silence_from_a_live_publisher_is_disconnected_and_hearing_it_again_is_news_at_once() {
        let mut q = NetQuality::default();
        let silent = LinkSample {
            arrived: Some(0),
            ..LinkSample::default()
        };
        // Nothing ever arrived: a publisher that has not started is not judged.
        for t in 1..5 {
            assert_eq!(q.measured(t * 1_000, &silent, true), None);
        }
        q.measured(5_000, &lossy(0), true);
        assert_eq!(q.measured(6_000, &silent, true), None);
        assert_eq!(q.measured(6_500, &silent, true), Some(Disconnected));
        // Back: the loss is the silence's; a long round trip is the link's.
        let back = LinkSample {
            rtt_ms: Some(800),
            ..lossy(500)
        };
        assert_eq!(q.measured(7_000, &back, true), Some(Bad));
        // A muted publisher's silence says nothing.
        for t in 8..12 {
            assert_ne!(q.measured(t * 1_000, &silent, false), Some(Disconnected));
        }
    }

    #[test]
    fn signaling_lost_is_disconnected_until_it_is_back() {
        let mut q = NetQuality::default();
        assert_eq!(q.signaling(true, 100), Some(Disconnected));
        assert_eq!(q.measured(1_000, &lossy(0), true), None);
        assert_eq!(q.signaling(true, 1_100), None);
        assert_eq!(q.signaling(false, 1_200), Some(VeryGood));
        assert_eq!(q.measured(2_000, &lossy(100), true), None);
        assert_eq!(q.measured(3_000, &lossy(100), true), None);
        assert_eq!(q.measured(4_000, &lossy(100), true), Some(Bad));
    }
}

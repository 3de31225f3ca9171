//! A member's media, measured once a [`MEASURE_EVERY_MS`](crate::server::hub::net_status::MEASURE_EVERY_MS): the actor reads
//! cumulative counters (each published track's packets, each receiver report the member sent
//! on what it is sent, the peer connections' jitter and round trip, the bandwidth estimate and
//! what the legs need) into a [`Reading`], and the meter turns consecutive readings into the
//! [`LinkSample`] the core judges (`hub/net_status.rs`). Arithmetic only: no clock, no I/O.

use std::collections::BTreeMap;

use crate::model::TrackSource;
use crate::server::hub::net_status::{LinkSample, Loss};

/// Readings a receiver report's loss is used for when no newer report came (a browser reports
/// on audio every few seconds).
const REPORT_KEPT_FOR: u32 = 5;

/// What the actor read of a member's media at one moment (cumulative counters).
#[derive(Clone, Debug, Default)]
pub(crate) struct Reading {
    /// Each published track: packets expected and received since it started.
    pub(crate) tracks: Vec<(TrackSource, u64, u64)>,
    /// Each stream the member is sent: the latest receiver report's extended highest sequence
    /// number and cumulative loss, by SSRC.
    pub(crate) reports: Vec<(u32, u64, u64)>,
    /// The worst audio jitter either side reported, in milliseconds.
    pub(crate) jitter_ms: Option<u32>,
    /// The round trip, in milliseconds.
    pub(crate) rtt_ms: Option<u32>,
    /// The receiving connection's bandwidth estimate.
    pub(crate) estimate_bps: Option<u64>,
    /// What the receiving connection's legs need at the sizes asked, and at the smallest.
    pub(crate) wanted_bps: u64,
    pub(crate) least_bps: u64,
    /// Whether the member has a publishing connection.
    pub(crate) publishing: bool,
}

/// One stream's last receiver report and the loss it showed.
#[derive(Clone, Copy, Debug)]
struct Report {
    highest: u64,
    lost: u64,
    loss: Loss,
    /// Readings since it last changed.
    age: u32,
}

/// Turns readings into samples (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct LinkMeter {
    tracks: BTreeMap<TrackSource, (u64, u64)>,
    reports: BTreeMap<u32, Report>,
}

impl LinkMeter {
    /// The sample since the previous reading.
    pub(crate) fn sample(&mut self, reading: &Reading) -> LinkSample {
        let mut up = Vec::new();
        let mut arrived = 0;
        let mut tracks = BTreeMap::new();
        for &(source, expected, received) in &reading.tracks {
            let (e0, r0) = self
                .tracks
                .get(&source)
                .copied()
                .filter(|(e0, r0)| *e0 <= expected && *r0 <= received)
                .unwrap_or((0, 0));
            let (expected_now, received_now) = (expected - e0, received - r0);
            arrived += received_now;
            up.push(Loss {
                expected: expected_now,
                lost: expected_now.saturating_sub(received_now),
            });
            tracks.insert(source, (expected, received));
        }
        self.tracks = tracks;
        let mut reports = BTreeMap::new();
        for &(ssrc, highest, lost) in &reading.reports {
            let report = match self.reports.get(&ssrc) {
                Some(old) if old.highest == highest && old.lost == lost => Report {
                    age: old.age + 1,
                    ..*old
                },
                Some(old) if highest > old.highest => {
                    let expected = highest - old.highest;
                    Report {
                        highest,
                        lost,
                        loss: Loss {
                            expected,
                            lost: lost.saturating_sub(old.lost).min(expected),
                        },
                        age: 0,
                    }
                }
                // The first report, or one that went back (a new stream on the SSRC).
                _ => Report {
                    highest,
                    lost,
                    loss: Loss::default(),
                    age: 0,
                },
            };
            reports.insert(ssrc, report);
        }
        self.reports = reports;
        let down = self
            .reports
            .values()
            .filter(|r| r.age < REPORT_KEPT_FOR)
            .map(|r| r.loss);
        LinkSample {
            up: worst(up),
            down: worst(down),
            jitter_ms: reading.jitter_ms,
            rtt_ms: reading.rtt_ms,
            estimate_bps: reading.estimate_bps,
            wanted_bps: reading.wanted_bps,
            least_bps: reading.least_bps,
            arrived: reading.publishing.then_some(arrived),
        }
    }
}

/// The worst of `losses` that has packets enough to tell, else all of them together.
fn worst(losses: impl IntoIterator<Item = Loss>) -> Loss {
    let losses: Vec<Loss> = losses.into_iter().collect();
    losses
        .iter()
        .filter(|l| l.permille().is_some())
        .max_by_key(|l| l.permille())
        .copied()
        .unwrap_or_else(|| losses.iter().fold(Loss::default(), |sum, l| sum.plus(*l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_give_the_uplink_loss_of_the_worst_one_and_what_arrived() {
        let mut meter = LinkMeter::default();
        let reading = |mic: (u64, u64), camera: (u64, u64)| Reading {
            tracks: vec![
                (TrackSource::Microphone, mic.0, mic.1),
                (TrackSource::Camera, camera.0, camera.1),
            ],
            publishing: true,
            ..Reading::default()
        };
        let first = meter.sample(&reading((50, 50), (300, 300)));
        assert_eq!(first.arrived, Some(350));
        let sample = meter.sample(&reading((100, 95), (600, 597)));
        // The microphone lost 10 % of its 50, the camera 1 % of its 300.
        assert_eq!(
            sample.up,
            Loss {
                expected: 50,
                lost: 5
            }
        );
        assert_eq!(sample.arrived, Some(342));
        // Nothing published: nothing to hear.
        assert_eq!(meter.sample(&Reading::default()).arrived, None);
    }

    #[test]
    fn a_receiver_reports_loss_is_kept_until_a_newer_one_for_a_few_readings() {
        let mut meter = LinkMeter::default();
        let reading = |highest: u64, lost: u64| Reading {
            reports: vec![(7, highest, lost)],
            ..Reading::default()
        };
        assert_eq!(meter.sample(&reading(1_000, 0)).down, Loss::default());
        let lossy = Loss {
            expected: 250,
            lost: 25,
        };
        assert_eq!(meter.sample(&reading(1_250, 25)).down, lossy);
        for _ in 1..REPORT_KEPT_FOR {
            assert_eq!(meter.sample(&reading(1_250, 25)).down, lossy);
        }
        assert_eq!(meter.sample(&reading(1_250, 25)).down, Loss::default());
        // A stream started over on the SSRC: no loss made up from it.
        assert_eq!(meter.sample(&reading(10, 0)).down, Loss::default());
    }
}

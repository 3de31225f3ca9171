//! What the server measures of a member's media: how loud its microphone is and how well its
//! media gets through. Both are fields of the [`Participant`](super::Participant), changed by
//! participant updates.

use serde::{Deserialize, Serialize};

/// How loud a member's microphone is over the last second (the seed's six volume levels),
/// from the level its audio packets carry, as the server measures it (no audio is decoded).
/// Thresholds on the median of its 200 ms levels, in −dBov: `VeryHigh` up to 15, `High` up to 25, `Mid` up to
/// 35, `Low` up to 45, `VeryLow` up to 60; quieter, muted, or no microphone: `None`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VolumeStatus {
    /// Silent, muted, or no microphone.
    #[default]
    None,
    /// Barely audible.
    VeryLow,
    /// Quiet.
    Low,
    /// Normal speech.
    Mid,
    /// Loud.
    High,
    /// Very loud.
    VeryHigh,
}

impl VolumeStatus {
    /// The status of a mean level of `dbov` (−dBov: 0 the loudest, 127 silence).
    pub fn of_level(dbov: u8) -> Self {
        match dbov {
            0..=15 => VolumeStatus::VeryHigh,
            16..=25 => VolumeStatus::High,
            26..=35 => VolumeStatus::Mid,
            36..=45 => VolumeStatus::Low,
            46..=60 => VolumeStatus::VeryLow,
            _ => VolumeStatus::None,
        }
    }

    /// Whether it is [`VolumeStatus::None`].
    pub fn is_none(&self) -> bool {
        *self == VolumeStatus::None
    }
}

/// How well a member's media gets through (the seed's six net status levels), as the server
/// measures it without decoding, from both directions of the member's media: the loss and
/// jitter in its receiver reports and in the server's, the round-trip time, and the bandwidth
/// estimate against what its videos need. The thresholds and the hysteresis are in
/// `docs/events.md`; a member in which nothing wrong was seen yet (no media yet, or just back)
/// is `VeryGood`, and one whose connection is lost, or from which nothing arrived for two
/// seconds while it publishes, `Disconnected`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NetStatus {
    /// Nothing gets through: the connection is lost, or the media stopped arriving.
    Disconnected,
    /// Barely usable (20 % loss or more).
    VeryBad,
    /// Poor (8 % loss or more, a round trip of 700 ms, or too little bandwidth even for the
    /// smallest video).
    Bad,
    /// Usable, with some loss (4 % or more) or delay.
    Normal,
    /// Good (a little loss, 2 % or more, or too little bandwidth for every size asked).
    Good,
    /// No trouble seen (also a member not measured yet).
    #[default]
    VeryGood,
}

impl NetStatus {
    /// Whether it is [`NetStatus::VeryGood`] (what a participant starts as).
    pub fn is_very_good(&self) -> bool {
        *self == NetStatus::VeryGood
    }

    /// How many bars a signal icon shows: 0 (`Disconnected`) to 5 (`VeryGood`).
    pub fn bars(&self) -> u8 {
        match self {
            NetStatus::Disconnected => 0,
            NetStatus::VeryBad => 1,
            NetStatus::Bad => 2,
            NetStatus::Normal => 3,
            NetStatus::Good => 4,
            NetStatus::VeryGood => 5,
        }
    }
}

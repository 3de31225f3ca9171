//! How loud a published microphone is, from the audio level its sender writes in each packet
//! (the RFC 6464 header extension: a level in −dBov, 0 the loudest, 127 silence), without
//! decoding any audio. Sans-IO: the forwarder hands each packet's level and arrival time in; a
//! finished window's mean level comes out, for the core, which decides who speaks
//! (`hub/speakers.rs`).

use crate::server::hub::speakers::WINDOW_MS;

/// The level in an RFC 6464 extension's one byte (its first bit, voice activity, is not
/// used: senders set it differently, and the core decides from the level).
pub(crate) fn level_of(extension: &[u8]) -> Option<u8> {
    extension.first().map(|byte| byte & 0x7f)
}

/// One microphone's windows.
#[derive(Clone, Debug, Default)]
pub(crate) struct LevelMeter {
    /// When the current window started.
    start_ms: Option<u64>,
    sum: u32,
    packets: u32,
}

impl LevelMeter {
    /// A packet arrived at `at_ms` with `level` (−dBov). Returns the previous window's mean
    /// level when this packet is the first after it (a window with no packet reports nothing;
    /// the core treats a microphone it has not heard of lately as silent).
    pub(crate) fn packet(&mut self, at_ms: u64, level: u8) -> Option<u8> {
        let level = level.min(127);
        let start = *self.start_ms.get_or_insert(at_ms);
        let mut finished = None;
        if at_ms.saturating_sub(start) >= WINDOW_MS {
            finished = self.sum.checked_div(self.packets).map(|mean| mean as u8);
            self.start_ms = Some(at_ms);
            self.sum = 0;
            self.packets = 0;
        }
        self.sum += u32::from(level);
        self.packets += 1;
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_without_the_voice_bit() {
        assert_eq!(level_of(&[0x80 | 30]), Some(30));
        assert_eq!(level_of(&[127]), Some(127));
        assert_eq!(level_of(&[]), None);
    }

    #[test]
    fn each_window_reports_its_mean_level_once_the_next_begins() {
        let mut meter = LevelMeter::default();
        // 20 ms packets: 10 in the first window, levels 20 and 40 alternating.
        for i in 0..10u64 {
            let level = if i % 2 == 0 { 20 } else { 40 };
            assert_eq!(meter.packet(i * 20, level), None);
        }
        assert_eq!(meter.packet(200, 127), Some(30));
        assert_eq!(meter.packet(220, 127), None);
        // A pause longer than a window: the window before it is reported, none for the gap.
        assert_eq!(meter.packet(1_000, 50), Some(127));
        assert_eq!(meter.packet(1_200, 50), Some(50));
    }
}

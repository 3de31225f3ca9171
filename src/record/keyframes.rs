//! When the recorder asks a video track's publisher for a key frame (a picture loss indication,
//! which the SFU relays to the publisher): after a loss, since nothing of the track is written
//! until its next key frame, and every so often while recording, so that a player seeking in
//! the file decodes from a key frame at most that far back. Sans-IO: the caller says what time
//! it is (ms on the recording's timeline) and carries the request out.

use std::time::Duration;

/// How often a track waiting for a key frame (after a loss, or at its start) asks again, at
/// most; also the shortest periodic interval taken.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// One video track's key-frame requests.
#[derive(Debug)]
pub(crate) struct KeyframeRequests {
    /// Ask when no key frame came for this long (ms); `None`: only after losses.
    periodic_ms: Option<u64>,
    /// When the last key frame came.
    last_key: Option<u64>,
    /// When the last request went.
    asked: Option<u64>,
}

impl KeyframeRequests {
    /// The requests of a track, with a key frame asked for every `periodic` (at most every
    /// [`RETRY_INTERVAL`]; `None`: only after losses).
    pub(crate) fn new(periodic: Option<Duration>) -> Self {
        let periodic_ms = periodic.map(|p| p.max(RETRY_INTERVAL).as_millis() as u64);
        KeyframeRequests {
            periodic_ms,
            last_key: None,
            asked: None,
        }
    }

    /// A key frame came at `now`.
    pub(crate) fn keyframe(&mut self, now: u64) {
        self.last_key = Some(now);
    }

    /// Whether to ask for a key frame at `now` (then taken as asked); `waiting`: the track
    /// drops its frames until the next key frame.
    pub(crate) fn due(&mut self, now: u64, waiting: bool) -> bool {
        let since = |t: Option<u64>| t.map_or(u64::MAX, |t| now.saturating_sub(t));
        let due = if waiting {
            since(self.asked) >= RETRY_INTERVAL.as_millis() as u64
        } else {
            // From the last key frame, or the last request if the publisher did not answer it.
            let last = self.last_key.max(self.asked);
            self.periodic_ms.is_some_and(|p| since(last) >= p)
        };
        if due {
            self.asked = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_frame_is_asked_for_every_interval_from_the_last_one() {
        let mut k = KeyframeRequests::new(Some(Duration::from_secs(2)));
        // The track starts waiting for its first key frame: asked at once, then every 500 ms.
        assert!(k.due(0, true));
        assert!(!k.due(499, true));
        assert!(k.due(500, true));
        k.keyframe(620);
        assert!(!k.due(620, false));
        assert!(!k.due(2_619, false));
        assert!(k.due(2_620, false));
        // Asked once: not again until an interval later, even if no key frame comes.
        assert!(!k.due(2_700, false));
        assert!(!k.due(4_619, false));
        assert!(k.due(4_620, false));
        // The publisher's own key frame (or the answer) puts the next request off.
        k.keyframe(4_650);
        k.keyframe(5_900);
        assert!(!k.due(7_000, false));
        assert!(k.due(7_900, false));
        // A loss asks at once (the last request is 500 ms old), whatever the period says.
        assert!(!k.due(8_000, true));
        assert!(k.due(8_400, true));
    }

    #[test]
    fn the_interval_is_bounded_and_can_be_off() {
        let mut k = KeyframeRequests::new(Some(Duration::from_millis(10)));
        k.keyframe(0);
        assert!(!k.due(100, false));
        assert!(k.due(500, false));
        let mut off = KeyframeRequests::new(None);
        off.keyframe(0);
        assert!(!off.due(3_600_000, false));
        assert!(off.due(3_600_000, true));
    }
}

//! Who is speaking in a room, sans-IO: the SFU measures each microphone's level in windows of
//! [`WINDOW_MS`] (`sfu/audio_level.rs`, from the RFC 6464 header extension, no decoding) and
//! the core keeps the last second of them per member here.
//!
//! - A member speaks when at least [`SPEAKING_SHARE_PERCENT`] of its windows in the last
//!   [`SPEECH_MS`] were at or above the room's threshold (−35 dBov unless configured): a
//!   syllable's pause does not end a speaker, a cough does not make one.
//! - The active speakers are those members, the loudest first (their mean level over their
//!   speaking windows; the user id breaks ties).
//! - The list goes out when its members or their order change, at most once per interval (500
//!   ms unless configured): a change within the interval waits for the next measurement after
//!   it. Levels alone changing send nothing.
//! - A member that muted, stopped publishing its microphone or left is not a speaker from that
//!   moment (no waiting for the interval); one whose measurements stopped coming is not one
//!   after [`SPEECH_MS`].
//! - Each member's volume status (the seed's six levels, [`VolumeStatus::of_level`] of the
//!   median of its windows over the last second, quiet ones included) changes when two measurements in a row
//!   say so, at most once per [`VOLUME_EVERY_MS`]: a participant update each time, so it must
//!   not flicker. A mute or an unpublished microphone sets it to `None` at once (and the
//!   microphone starts over when it is back).

use std::collections::{BTreeMap, VecDeque};

use super::io::Millis;
use crate::model::{UserId, VolumeStatus};

/// How long one measurement window lasts (the SFU measures in these).
pub(crate) const WINDOW_MS: Millis = 200;

/// The span of windows a member's speaking is judged over.
pub(crate) const SPEECH_MS: Millis = 1_000;

/// Share of the span's windows that must be loud enough.
pub(crate) const SPEAKING_SHARE_PERCENT: usize = 40;

/// A member's volume status changes at most this often.
pub(crate) const VOLUME_EVERY_MS: Millis = 1_000;

/// How speakers are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpeakerConfig {
    /// Loud enough to speak: a window at this level or louder, in −dBov (0 the loudest, 127
    /// silence).
    pub(crate) threshold_dbov: u8,
    /// The list goes out at most this often.
    pub(crate) interval_ms: Millis,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            threshold_dbov: 35,
            interval_ms: 500,
        }
    }
}

/// One active speaker: the mean level of its speaking windows.
pub(crate) use crate::model::ActiveSpeaker as Speaker;

/// What a measurement or a silencing changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Heard {
    /// The speakers, if the list is due.
    pub(crate) speakers: Option<Vec<Speaker>>,
    /// The member's new volume status, if it changed.
    pub(crate) volume: Option<VolumeStatus>,
}

/// One member's microphone.
#[derive(Clone, Debug, Default)]
struct Voice {
    /// Its recent windows: when each ended, and its level.
    windows: VecDeque<(Millis, u8)>,
    /// Its volume status as last told, and when it changed.
    volume: VolumeStatus,
    volume_at: Option<Millis>,
    /// A different status the last measurement said (a second in a row changes it).
    pending: Option<VolumeStatus>,
}

impl Voice {
    /// The volume status to tell now after a measurement at `now`, if it changed.
    fn volume_now(&mut self, now: Millis) -> Option<VolumeStatus> {
        let mut recent: Vec<u8> = self
            .windows
            .iter()
            .filter(|(at, _)| now.saturating_sub(*at) < SPEECH_MS)
            .map(|(_, level)| *level)
            .collect();
        recent.sort_unstable();
        // The median: a pause (a silent window, 127) does not drag a speaker's level down.
        let median = recent.get(recent.len() / 2).copied();
        let heard = median.map_or(VolumeStatus::None, VolumeStatus::of_level);
        if heard == self.volume {
            self.pending = None;
            return None;
        }
        let confirmed = self.pending == Some(heard);
        let allowed = self
            .volume_at
            .is_none_or(|at| now.saturating_sub(at) >= VOLUME_EVERY_MS);
        if !(confirmed && allowed) {
            self.pending = Some(heard);
            return None;
        }
        self.pending = None;
        self.volume = heard;
        self.volume_at = Some(now);
        Some(heard)
    }
}

/// A room's speakers (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct Speakers {
    config: SpeakerConfig,
    /// Each member's microphone.
    voices: BTreeMap<UserId, Voice>,
    /// The list last sent (user ids, in order), and when.
    sent: Vec<UserId>,
    sent_at: Option<Millis>,
    /// The latest measurement's time (what a silencing is timed by).
    latest: Millis,
}

impl Speakers {
    /// A room's speakers, told as `config` says.
    pub(crate) fn new(config: SpeakerConfig) -> Self {
        Speakers {
            config,
            ..Speakers::default()
        }
    }

    /// `user`'s microphone measured `level_dbov` over the window ending at `now`: the list
    /// to send, if it is due, and `user`'s new volume status, if it changed.
    pub(crate) fn measured(&mut self, user: &UserId, now: Millis, level_dbov: u8) -> Heard {
        self.latest = self.latest.max(now);
        let voice = self.voices.entry(user.clone()).or_default();
        voice.windows.push_back((now, level_dbov.min(127)));
        while voice.windows.len() > (SPEECH_MS / WINDOW_MS) as usize {
            voice.windows.pop_front();
        }
        let volume = voice.volume_now(now);
        Heard {
            speakers: self.due(now, false),
            volume,
        }
    }

    /// `user` is silent from now on (it muted, unpublished its microphone, or left): the list
    /// to send at once, if it was among the speakers, and its volume status `None`, if it was
    /// anything else.
    pub(crate) fn silenced(&mut self, user: &UserId) -> Heard {
        let Some(voice) = self.voices.remove(user) else {
            return Heard::default();
        };
        Heard {
            speakers: self.due(self.latest, true),
            volume: (!voice.volume.is_none()).then_some(VolumeStatus::None),
        }
    }

    /// The speakers now, the loudest first.
    fn current(&self, now: Millis) -> Vec<Speaker> {
        let threshold = self.config.threshold_dbov;
        let span = (SPEECH_MS / WINDOW_MS) as usize;
        let mut speakers: Vec<Speaker> = self
            .voices
            .iter()
            .filter_map(|(user, voice)| {
                let recent: Vec<u8> = voice
                    .windows
                    .iter()
                    .filter(|(at, _)| now.saturating_sub(*at) < SPEECH_MS)
                    .map(|(_, level)| *level)
                    .collect();
                let loud: Vec<u32> = recent
                    .iter()
                    .filter(|l| **l <= threshold)
                    .map(|l| u32::from(*l))
                    .collect();
                (loud.len() * 100 >= span * SPEAKING_SHARE_PERCENT && !loud.is_empty()).then(|| {
                    Speaker {
                        user_id: user.clone(),
                        level_dbov: (loud.iter().sum::<u32>() / loud.len() as u32) as u8,
                    }
                })
            })
            .collect();
        speakers.sort_by(|a, b| (a.level_dbov, &a.user_id).cmp(&(b.level_dbov, &b.user_id)));
        speakers
    }

    /// The list, if it changed since it was last sent and may go out now (`at_once`: whatever
    /// the interval).
    fn due(&mut self, now: Millis, at_once: bool) -> Option<Vec<Speaker>> {
        let speakers = self.current(now);
        if speakers.iter().map(|s| &s.user_id).eq(self.sent.iter()) {
            return None;
        }
        let waited = self
            .sent_at
            .is_none_or(|at| now.saturating_sub(at) >= self.config.interval_ms);
        if !(waited || at_once) {
            return None;
        }
        self.sent = speakers.iter().map(|s| s.user_id.clone()).collect();
        self.sent_at = Some(now);
        Some(speakers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::from(id)
    }

    fn ids(heard: Heard) -> Option<Vec<String>> {
        heard
            .speakers
            .map(|l| l.into_iter().map(|s| s.user_id.to_string()).collect())
    }

    #[test]
    fn a_member_speaks_after_two_loud_windows_of_five_and_stops_when_they_are_gone() {
        let mut s = Speakers::new(SpeakerConfig::default());
        let alice = user("alice");
        // Quiet windows: nobody speaks, nothing to send (the empty list was never sent, and
        // nothing changed from it).
        assert_eq!(ids(s.measured(&alice, 200, 60)), None);
        assert_eq!(ids(s.measured(&alice, 400, 36)), None);
        // One loud window of five is a cough.
        assert_eq!(ids(s.measured(&alice, 600, 20)), None);
        // The second: speaking.
        assert_eq!(ids(s.measured(&alice, 800, 30)), Some(vec!["alice".into()]));
        // A syllable's pause keeps her speaking.
        assert_eq!(ids(s.measured(&alice, 1_000, 90)), None);
        assert_eq!(ids(s.measured(&alice, 1_200, 90)), None);
        assert_eq!(ids(s.measured(&alice, 1_400, 90)), None);
        // Both loud windows out of the last five: she stopped.
        assert_eq!(ids(s.measured(&alice, 1_600, 90)), Some(vec![]));
    }

    #[test]
    fn the_loudest_comes_first_and_changes_wait_for_the_interval() {
        let mut s = Speakers::new(SpeakerConfig::default());
        let (alice, bob) = (user("alice"), user("bob"));
        s.measured(&alice, 200, 30);
        assert_eq!(ids(s.measured(&alice, 400, 30)), Some(vec!["alice".into()]));
        s.measured(&bob, 410, 10);
        // Bob speaks, louder, 20 ms after the list went out: it waits for the interval.
        assert_eq!(ids(s.measured(&bob, 420, 10)), None);
        assert_eq!(ids(s.measured(&alice, 600, 30)), None);
        let list = s.measured(&bob, 900, 10).speakers.unwrap();
        assert_eq!(
            list,
            [
                Speaker {
                    user_id: bob.clone(),
                    level_dbov: 10
                },
                Speaker {
                    user_id: alice.clone(),
                    level_dbov: 30
                },
            ]
        );
        // Levels moving within the same order send nothing.
        assert_eq!(ids(s.measured(&alice, 1_400, 25)), None);
        // Bob mutes (the room's latest measurement was at 1,400): out at once, whatever the
        // interval.
        assert_eq!(ids(s.silenced(&bob)), Some(vec!["alice".into()]));
        // A member that was no speaker leaves: nothing to send.
        assert_eq!(ids(s.silenced(&user("carol"))), None);
    }

    #[test]
    fn a_member_whose_measurements_stop_is_no_speaker_after_a_second() {
        let mut s = Speakers::new(SpeakerConfig {
            threshold_dbov: 50,
            interval_ms: 0,
        });
        let (alice, bob) = (user("alice"), user("bob"));
        s.measured(&alice, 200, 45);
        assert_eq!(ids(s.measured(&alice, 400, 45)), Some(vec!["alice".into()]));
        assert_eq!(ids(s.measured(&alice, 600, 45)), None);
        // Alice's packets stop; bob's measurements go on, quiet: she speaks while two of her
        // windows are within the last second, and no longer.
        assert_eq!(ids(s.measured(&bob, 1_399, 100)), None);
        assert_eq!(ids(s.measured(&bob, 1_400, 100)), Some(vec![]));
    }

    fn volume(heard: Heard) -> Option<VolumeStatus> {
        heard.volume
    }

    #[test]
    fn the_volume_status_follows_the_last_seconds_median_without_flickering() {
        let mut s = Speakers::new(SpeakerConfig::default());
        let alice = user("alice");
        // 30 −dBov (Mid): said twice in a row, it is told.
        assert_eq!(volume(s.measured(&alice, 200, 30)), None);
        assert_eq!(volume(s.measured(&alice, 400, 30)), Some(VolumeStatus::Mid));
        // Louder: the median of (30, 30, 10, 10) is 30 still, then 10 (VeryHigh) twice; but a
        // second has not passed since the last change.
        assert_eq!(volume(s.measured(&alice, 600, 10)), None);
        assert_eq!(volume(s.measured(&alice, 800, 10)), None);
        assert_eq!(volume(s.measured(&alice, 1_000, 10)), None);
        assert_eq!(volume(s.measured(&alice, 1_200, 10)), None);
        // 1,400: a second after the last change.
        assert_eq!(
            volume(s.measured(&alice, 1_400, 10)),
            Some(VolumeStatus::VeryHigh)
        );
        // A pause (one silent window) changes nothing.
        assert_eq!(volume(s.measured(&alice, 1_600, 127)), None);
        assert_eq!(volume(s.measured(&alice, 1_800, 10)), None);
        // Muted: None at once; a member already at None is not told again.
        assert_eq!(volume(s.silenced(&alice)), Some(VolumeStatus::None));
        assert_eq!(volume(s.silenced(&alice)), None);
    }
}

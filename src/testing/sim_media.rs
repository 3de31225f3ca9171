//! The simulator's media shell: a model of the SFU that carries out the core's media commands
//! at once and reports back as the real one does, with made-up session descriptions. It checks
//! the rules the core must keep at its interface to the media shell:
//!
//! - a leg copies a publication of the subscriber's own room (never another room's);
//! - nothing is asked of a membership that is over, and no leg copies a track of one;
//! - every leg the core starts or pauses exists.
//!
//! The client side of negotiation (offers answered late, out of order, or never) is played by
//! the simulator's devices; this side answers every command it gets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{MediaKind, RoomId, TrackSource};
use crate::server::hub::io::{
    MediaAction, MediaCommand, MediaFact, MediaId, MediaKey, MediaReport,
};
use crate::server::hub::sdp::Description;

/// One leg as the model keeps it.
#[derive(Debug)]
struct Leg {
    from: MediaId,
    track_id: String,
    started: bool,
}

/// The model of the SFU.
#[derive(Debug, Default)]
pub(crate) struct FakeSfu {
    /// The room of every membership a command named.
    rooms: HashMap<MediaId, RoomId>,
    /// Tracks that arrived, by membership and source.
    tracks: BTreeSet<(MediaId, TrackSource)>,
    /// Each membership's legs, by publication id.
    legs: HashMap<MediaId, BTreeMap<String, Leg>>,
    /// Memberships torn down.
    over: HashSet<MediaId>,
    /// Tracks the core muted: the shell forwards nothing of them.
    muted: BTreeSet<(MediaId, TrackSource)>,
    /// Legs not made because their track was gone by the time the command ran (a slow shell
    /// took the publisher's teardown first); the core's removal of them follows.
    skipped: HashSet<(MediaId, String)>,
}

impl FakeSfu {
    /// Carries out one command; returns the reports it makes.
    pub(crate) fn command(&mut self, command: MediaCommand) -> Vec<MediaReport> {
        let MediaCommand { to, action } = command;
        assert!(
            !self.over.contains(&to.media),
            "a command for membership {} after its teardown: {action:?}",
            to.media
        );
        let room = self
            .rooms
            .entry(to.media)
            .or_insert_with(|| to.room.clone());
        assert_eq!(*room, to.room, "a membership stays in one room");
        let report = |fact| MediaReport {
            from: to.clone(),
            fact,
        };
        let mut reports = Vec::new();
        match action {
            MediaAction::AnswerPublish { op, sdp, .. } => {
                let offer = Description::parse(&sdp);
                reports.push(report(MediaFact::PublishAnswered {
                    op,
                    result: Ok(answer_to(&offer)),
                }));
                for line in &offer.media {
                    if !line.direction.sends() || line.rejected {
                        continue;
                    }
                    let Some(track_id) = line.track_id.clone() else {
                        continue;
                    };
                    if let Some(source) = TrackSource::from_track_id(&track_id)
                        && self.tracks.insert((to.media, source))
                    {
                        reports.push(report(MediaFact::TrackArrived { track_id }));
                    }
                }
            }
            MediaAction::CreateOffer { negotiation, .. } => {
                let legs = self.legs.entry(to.media).or_default();
                reports.push(report(MediaFact::OfferReady {
                    negotiation,
                    result: Ok(offer_of(legs.values().map(|l| l.track_id.as_str()))),
                }));
            }
            MediaAction::ApplyAnswer {
                op, negotiation, ..
            } => reports.push(report(MediaFact::AnswerApplied {
                op,
                negotiation,
                result: Ok(()),
            })),
            MediaAction::AddLeg {
                publication,
                from,
                track_id,
            } => {
                assert_eq!(
                    self.rooms.get(&from),
                    Some(&to.room),
                    "{} gets {} from another room",
                    to.media,
                    publication.id
                );
                if !self.tracks.contains(&(from, publication.source)) {
                    // The real shell finds no track to copy and makes nothing, too.
                    self.skipped.insert((to.media, publication.id));
                    return reports;
                }
                self.legs.entry(to.media).or_default().insert(
                    publication.id,
                    Leg {
                        from,
                        track_id,
                        started: false,
                    },
                );
            }
            MediaAction::RemoveLeg { publication } => {
                let removed = self.legs.entry(to.media).or_default().remove(&publication);
                let skipped = self.skipped.remove(&(to.media, publication));
                assert!(
                    removed.is_some() || skipped,
                    "removing a leg that is not there"
                );
            }
            MediaAction::StartLegs { legs } => {
                for id in legs.into_iter().map(|l| l.publication) {
                    match self.legs.get_mut(&to.media).and_then(|l| l.get_mut(&id)) {
                        Some(leg) => leg.started = true,
                        None => assert!(
                            self.skipped.contains(&(to.media, id)),
                            "starting a leg that is not there"
                        ),
                    }
                }
            }
            MediaAction::PauseLeg { publication, .. }
            | MediaAction::SetLayer { publication, .. } => {
                assert!(
                    self.legs
                        .get(&to.media)
                        .is_some_and(|l| l.contains_key(&publication))
                        || self.skipped.contains(&(to.media, publication)),
                    "pausing a leg, or choosing its layer, when it is not there"
                );
            }
            MediaAction::Forward { source, muted } => {
                if muted {
                    self.muted.insert((to.media, source));
                } else {
                    self.muted.remove(&(to.media, source));
                }
            }
            MediaAction::RequestKeyframe { .. }
            | MediaAction::AddCandidate { .. }
            | MediaAction::FavourCamera { .. } => {}
            MediaAction::ClosePublishing => self.tracks.retain(|(m, _)| *m != to.media),
            MediaAction::CloseReceiving => {
                self.legs.remove(&to.media);
                self.skipped.retain(|(m, _)| *m != to.media);
            }
            MediaAction::Teardown => {
                self.over.insert(to.media);
                self.legs.remove(&to.media);
                self.skipped.retain(|(m, _)| *m != to.media);
                self.tracks.retain(|(m, _)| *m != to.media);
            }
        }
        reports
    }

    /// The publication ids of a membership's legs.
    pub(crate) fn legs_of(&self, media: MediaId) -> BTreeSet<String> {
        self.legs
            .get(&media)
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every leg copies a track of its own room; once no command waits (`settled`), only live
    /// tracks, and every skipped leg was removed.
    pub(crate) fn check(&self, settled: bool) {
        for (media, legs) in &self.legs {
            for (id, leg) in legs {
                assert_eq!(
                    self.rooms.get(&leg.from),
                    self.rooms.get(media),
                    "{media}'s leg {id} crosses rooms"
                );
                assert!(
                    !settled || !self.over.contains(&leg.from),
                    "{media}'s leg {id} outlived its publisher"
                );
            }
        }
        assert!(
            !settled || self.skipped.is_empty(),
            "skipped legs were never removed: {:?}",
            self.skipped
        );
    }

    /// Whether the core told the shell to forward nothing of this track.
    pub(crate) fn is_muted(&self, media: MediaId, source: TrackSource) -> bool {
        self.muted.contains(&(media, source))
    }

    /// A membership's key, if a command named it and it is not over.
    pub(crate) fn key_of(&self, media: MediaId) -> Option<MediaKey> {
        if self.over.contains(&media) {
            return None;
        }
        Some(MediaKey {
            room: self.rooms.get(&media)?.clone(),
            media,
        })
    }
}

/// A publishing offer sending `sources`.
pub(crate) fn publish_offer(sources: &BTreeSet<TrackSource>) -> String {
    let mut sdp = session_head();
    for (mid, source) in sources.iter().enumerate() {
        media_section(
            &mut sdp,
            mid,
            source.kind(),
            "me",
            &source.as_str(),
            "sendonly",
        );
    }
    sdp
}

/// The server's offer of these legs (one line each, sending only).
fn offer_of<'a>(legs: impl Iterator<Item = &'a str>) -> String {
    let mut sdp = session_head();
    for (mid, id) in legs.enumerate() {
        // Track ids are `<publication id>#<n>`.
        let publication = id.rsplit_once('#').map_or(id, |(p, _)| p);
        let kind = if publication.ends_with("/microphone") {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        let user = id.split('/').next().unwrap_or("");
        media_section(&mut sdp, mid, kind, user, id, "sendonly");
    }
    sdp
}

/// An answer accepting every line of `offer` (receiving what it sends).
pub(crate) fn answer_to(offer: &Description) -> String {
    let mut sdp = session_head();
    for line in &offer.media {
        let (Some(kind), Some(mid)) = (line.kind, line.mid.as_deref()) else {
            continue;
        };
        let direction = if line.direction.sends() {
            "recvonly"
        } else {
            "inactive"
        };
        media_section(
            &mut sdp,
            mid.parse().unwrap_or(0),
            kind,
            "-",
            "-",
            direction,
        );
    }
    sdp
}

fn session_head() -> String {
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=msid-semantic: WMS *\r\n".to_owned()
}

fn media_section(
    sdp: &mut String,
    mid: usize,
    kind: MediaKind,
    stream: &str,
    track: &str,
    direction: &str,
) {
    let (name, pt, codec) = match kind {
        MediaKind::Audio => ("audio", 111, "opus/48000/2"),
        MediaKind::Video => ("video", 96, "VP8/90000"),
    };
    sdp.push_str(&format!(
        "m={name} 9 UDP/TLS/RTP/SAVPF {pt}\r\na=mid:{mid}\r\na=msid:{stream} {track}\r\n\
         a={direction}\r\na=rtpmap:{pt} {codec}\r\n"
    ));
}

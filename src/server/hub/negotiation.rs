//! One member's two negotiations, sans-IO. On the **publishing** connection the member offers
//! and the server answers: the core checks each offer (sources, codecs, size) before the media
//! shell sees it, and decides when a track is published. On the **receiving** connection the
//! server offers its legs (copies of other members' tracks) and the member answers: the core
//! numbers the offers, keeps one open at a time, offers again when legs changed meanwhile, and
//! reads from the answer which payload type each leg sends with.
//!
//! Both push their commands and frames onto the caller's output list; neither knows the room.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{MediaKind, OperationId, Publication, TrackSource};
use crate::protocol::{ErrorCode, IceCandidate, MediaConnection, ServerFrame};

use super::io::{
    Emit, MediaAction, MediaCommand, MediaId, MediaKey, Millis, Refusal, SessionId, refuse,
};
use super::sdp::{Description, MAX_RIDS};

/// Most extra cameras and screens (`camera.NAME`, `screen.NAME`) one member publishes.
pub(crate) const MAX_EXTRA_STREAMS: usize = 4;
/// Most media lines a publishing offer may carry: one per source, and room for a client that
/// also opens a data channel or keeps stopped lines. Bounds what one offer costs the server.
pub(crate) const MAX_MEDIA_LINES: usize = 8;

/// How many times in a row the core asks again for an offer the shell failed to make.
const OFFER_RETRIES: u32 = 3;

/// The codec jrtc forwards for a kind of media.
pub(crate) fn codec_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "opus",
        MediaKind::Video => "VP8",
    }
}

/// Whether a connection is interrupted (failed, being restarted), and until when what it
/// carries is kept.
#[derive(Debug, Default)]
pub(crate) struct Interruption(Option<Millis>);

impl Interruption {
    /// The connection failed; kept until `until`. False if it was interrupted already (the
    /// first deadline stands).
    pub(crate) fn start(&mut self, until: Millis) -> bool {
        if self.0.is_some() {
            return false;
        }
        self.0 = Some(until);
        true
    }

    /// The connection is up again; whether it had been interrupted.
    pub(crate) fn end(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// The deadline, if the connection is interrupted.
    pub(crate) fn until(&self) -> Option<Millis> {
        self.0
    }
}

/// The publishing connection: what the member sends, and what it asked to publish.
#[derive(Debug, Default)]
pub(crate) struct Publishing {
    /// The offer being answered: its op, the sources it asks to publish, the sources it sends.
    open: Option<(OperationId, PublishRequest)>,
    /// Sources the member's connection sends, by its last answered offer.
    sending: BTreeSet<TrackSource>,
    /// Sources the member unpublished and has not named again: an offer without `source`
    /// leaves them out.
    withdrawn: BTreeSet<TrackSource>,
    /// Tracks that reached the server.
    arrived: BTreeSet<TrackSource>,
    /// Sources the member asked to publish and has not unpublished since.
    wanted: BTreeSet<TrackSource>,
    /// The server's last answer (its candidates are not sent again).
    answer: Description,
    /// The media line (mid) that sends each source, by the last answered offer.
    mids: BTreeMap<TrackSource, String>,
    /// The simulcast streams of each source sent with simulcast, by the last answered offer.
    rids: BTreeMap<TrackSource, Vec<String>>,
    /// While the connection is interrupted: when its publications end unless it is back.
    pub(crate) interrupted: Interruption,
}

/// What a publishing offer asks for, once checked.
#[derive(Debug)]
pub(crate) struct PublishRequest {
    /// The sources it adds.
    pub sources: Vec<TrackSource>,
    /// The sources the offer sends.
    sending: BTreeSet<TrackSource>,
    /// The media line (mid) that sends each source.
    mids: BTreeMap<TrackSource, String>,
    /// The simulcast streams (rids) of each video source sent with simulcast, smallest layer
    /// first as the client lists them.
    pub rids: BTreeMap<TrackSource, Vec<String>>,
    /// The audio-level header extension's id on each audio source's line that carries it.
    pub levels: BTreeMap<TrackSource, u8>,
}

impl Publishing {
    /// Checks a publishing offer. `source` is the one the request names (if it names one);
    /// otherwise every source the offer sends that is not published yet is asked for.
    pub(crate) fn check_offer(
        &self,
        sdp: &str,
        source: Option<TrackSource>,
    ) -> Result<PublishRequest, Refusal> {
        if self.open.is_some() {
            return refuse(
                ErrorCode::NegotiationBusy,
                "a publishing offer is being answered; send the next one after its answer",
            );
        }
        let offer = Description::parse(sdp);
        if offer.media.len() > MAX_MEDIA_LINES {
            return refuse(
                ErrorCode::TooManyTracks,
                format!(
                    "an offer may carry at most {MAX_MEDIA_LINES} media lines, not {}",
                    offer.media.len()
                ),
            );
        }
        let mut sending = BTreeSet::new();
        let mut mids = BTreeMap::new();
        let mut rids = BTreeMap::new();
        let mut levels = BTreeMap::new();
        for line in &offer.media {
            let Some(kind) = line.kind else { continue };
            if line.rejected || !line.direction.sends() {
                continue;
            }
            let track = line.track_id.as_deref().unwrap_or("");
            let Some(source) = TrackSource::from_track_id(track) else {
                return refuse(
                    ErrorCode::UnknownSource,
                    format!(
                        "a sending {} line's track id (a=msid) must be a source name \
                         (microphone, camera, screen, camera.NAME, screen.NAME), not `{track}`",
                        kind_name(kind)
                    ),
                );
            };
            if source.kind() != kind {
                return refuse(
                    ErrorCode::UnknownSource,
                    format!("`{}` is not {} media", source.as_str(), kind_name(kind)),
                );
            }
            if line.payload_type_of(codec_name(kind)).is_none() {
                return refuse(
                    ErrorCode::UnsupportedCodec,
                    format!(
                        "the {} line offers no {} (jrtc forwards {} only)",
                        source.as_str(),
                        codec_name(kind),
                        codec_name(kind)
                    ),
                );
            }
            if !sending.insert(source) {
                return refuse(
                    ErrorCode::UnknownSource,
                    format!("two lines send `{}`", source.as_str()),
                );
            }
            if let Some(mid) = &line.mid {
                mids.insert(source, mid.clone());
            }
            if !line.rids.is_empty() {
                check_rids(source, &line.rids)?;
                rids.insert(source, line.rids.clone());
            }
            if let Some((id, _)) = line
                .extensions
                .iter()
                .find(|(_, uri)| uri == AUDIO_LEVEL_URI)
                && kind == MediaKind::Audio
            {
                levels.insert(source, *id);
            }
        }
        let extras = sending.iter().filter(|s| s.is_extra()).count();
        if extras > MAX_EXTRA_STREAMS {
            return refuse(
                ErrorCode::InvalidParam,
                format!(
                    "the offer sends {extras} extra cameras and screens; a member publishes at most \
                     {MAX_EXTRA_STREAMS}"
                ),
            );
        }
        let sources = match source {
            Some(source) if !sending.contains(&source) => {
                return refuse(
                    ErrorCode::UnknownSource,
                    format!("the offer sends no `{}` track", source.as_str()),
                );
            }
            Some(source) => vec![source],
            None => sending
                .iter()
                .copied()
                .filter(|s| !self.wanted.contains(s) && !self.withdrawn.contains(s))
                .collect(),
        };
        Ok(PublishRequest {
            sources,
            sending,
            mids,
            rids,
            levels,
        })
    }

    /// The offer was checked and goes to the shell.
    pub(crate) fn offer_sent(&mut self, op: OperationId, request: PublishRequest) {
        self.open = Some((op, request));
    }

    /// The op of the offer being answered, if one is.
    pub(crate) fn open_op(&self) -> Option<OperationId> {
        self.open.as_ref().map(|(op, _)| *op)
    }

    /// The shell answered (or failed to). Returns the sources now ready to be published: asked
    /// for, arrived, and sent by the connection.
    pub(crate) fn answered(
        &mut self,
        op: OperationId,
        result: &Result<String, String>,
    ) -> Option<Vec<TrackSource>> {
        let (open, request) = self.open.take()?;
        if open != op {
            self.open = Some((open, request));
            return None;
        }
        if let Ok(sdp) = result {
            self.answer = Description::parse(sdp);
            self.sending = request.sending;
            self.mids = request.mids;
            self.rids = request.rids;
            for source in request.sources {
                self.withdrawn.remove(&source);
                self.wanted.insert(source);
            }
        }
        // A failed offer changes nothing, but a track that arrived meanwhile may be ready.
        Some(self.ready())
    }

    /// A track reached the server. Returns whether it is to be published now.
    pub(crate) fn arrived(&mut self, source: TrackSource) -> bool {
        self.arrived.insert(source);
        self.open.is_none() && self.wanted.contains(&source) && self.sending.contains(&source)
    }

    /// Sources asked for, arrived and sent.
    fn ready(&self) -> Vec<TrackSource> {
        self.wanted
            .iter()
            .copied()
            .filter(|s| self.arrived.contains(s) && self.sending.contains(s))
            .collect()
    }

    /// The member unpublished `source` (its track may stay on the connection, silent).
    pub(crate) fn unpublished(&mut self, source: TrackSource) {
        self.wanted.remove(&source);
        self.withdrawn.insert(source);
    }

    /// The publishing connection failed: nothing it carried is published any more.
    pub(crate) fn failed(&mut self) -> Option<OperationId> {
        let open = self.open.take().map(|(op, _)| op);
        *self = Publishing::default();
        open
    }

    /// Whether the server's answer already carried this candidate.
    pub(crate) fn announced(&self, candidate: &IceCandidate) -> bool {
        self.answer.has_candidate(&candidate.candidate)
    }

    /// Whether the member has made an offer (its connection exists on the server).
    pub(crate) fn negotiated(&self) -> bool {
        self.open.is_some() || !self.answer.media.is_empty() || !self.sending.is_empty()
    }

    /// The mid the server's candidates on this connection are for.
    pub(crate) fn first_mid(&self) -> Option<&str> {
        self.answer.first_mid()
    }

    /// The simulcast streams (rids) of the member's track of `source`, smallest first (none
    /// without simulcast).
    pub(crate) fn rids(&self, source: TrackSource) -> &[String] {
        self.rids.get(&source).map_or(&[], Vec::as_slice)
    }

    /// How many simulcast layers the member's track of `source` has (1 without simulcast).
    pub(crate) fn layer_count(&self, source: TrackSource) -> usize {
        self.rids.get(&source).map_or(1, |rids| rids.len().max(1))
    }

    /// The header extensions (id, URI) the member's track of `source` carries: those the
    /// server's answer accepted on its line.
    pub(crate) fn extensions(&self, source: TrackSource) -> &[(u8, String)] {
        self.mids
            .get(&source)
            .and_then(|mid| self.answer.line(mid))
            .map_or(&[], |line| line.extensions.as_slice())
    }
}

/// The RFC 6464 audio-level header extension.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Refuses simulcast that jrtc does not forward: on audio, more than [`MAX_RIDS`] streams, or a
/// stream id that is not 1 to 16 letters, digits, `-` or `_`.
fn check_rids(source: TrackSource, rids: &[String]) -> Result<(), Refusal> {
    if source.kind() != MediaKind::Video {
        return refuse(ErrorCode::InvalidParam, "simulcast is for video only");
    }
    if rids.len() > MAX_RIDS {
        return refuse(
            ErrorCode::InvalidParam,
            format!(
                "the {} line sends more than {MAX_RIDS} simulcast streams",
                source.as_str()
            ),
        );
    }
    let valid = |rid: &String| {
        (1..=16).contains(&rid.len())
            && rid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(bad) = rids.iter().find(|rid| !valid(rid)) {
        return refuse(
            ErrorCode::InvalidParam,
            format!(
                "`{}` is not a simulcast stream id jrtc takes",
                bad.escape_default()
            ),
        );
    }
    Ok(())
}

/// One leg on the receiving connection.
#[derive(Debug)]
struct Leg {
    kind: MediaKind,
    /// Its media line's track id (`a=msid`): `<publication id>#<n>`, unique on the connection.
    track_id: String,
    /// Its payload type, once an answer covered it.
    payload_type: Option<u8>,
    /// The header extensions (id, URI) the member's answer accepted on its line.
    extensions: Vec<(u8, String)>,
}

/// A leg an applied answer started (or changed): its publication id, payload type and the
/// header extensions (id, URI) its line negotiated.
pub(crate) type Started = (String, u8, Vec<(u8, String)>);

#[derive(Debug, PartialEq)]
enum OfferState {
    /// The shell is making it.
    Making,
    /// Sent to the member; waiting for the answer.
    Sent,
    /// The answer is being applied; these legs (publication id, track id) start with these
    /// payload types and header extensions once it is.
    Applying {
        op: OperationId,
        legs: Vec<Answered>,
    },
}

/// A leg an answer covers: its publication id, its track id, and the payload type and header
/// extensions (id, URI) the answer gives its line.
type Answered = (String, String, u8, Vec<(u8, String)>);

/// The receiving connection: the legs and the server's offers of them.
#[derive(Debug, Default)]
pub(crate) struct Receiving {
    /// The last offer's number (offers count from 1).
    number: u64,
    open: Option<OfferState>,
    /// Legs changed since the last offer was made: offer (again) once none is open.
    dirty: bool,
    /// Legs added so far (numbers their track ids).
    added: u64,
    /// Offers the shell failed to make in a row (retried up to [`OFFER_RETRIES`] times).
    failures: u32,
    /// An answer was applied on this connection (its ICE knows the member's credentials).
    answered: bool,
    /// The server's candidates held back until then: a member that got them with the first
    /// offer would check them before its answer reached the server, whose ICE drops such early
    /// checks (the member then waits for its retransmission: ~500 ms for common stacks).
    held: Vec<String>,
    /// By publication id.
    legs: BTreeMap<String, Leg>,
    /// The last offer sent (maps legs to media lines; its candidates are not sent again).
    offer: Description,
    /// While the connection is interrupted: when what it carries ends unless it is back.
    pub(crate) interrupted: Interruption,
    /// The next offer restarts ICE.
    restart: bool,
}

impl Receiving {
    /// Adds a leg of publication `id` (published by membership `from`): the shell gets it
    /// and, when no offer is open, a new offer is made. Each leg's media line gets a track id
    /// of its own, `<publication id>#<n>`: a publication received again after it was removed
    /// is a new track to the client, never confused with the stopped line before it.
    pub(crate) fn add_leg(
        &mut self,
        key: &MediaKey,
        publication: &Publication,
        from: MediaId,
        out: &mut Vec<Emit>,
    ) {
        self.added += 1;
        let track_id = format!("{}#{}", publication.id, self.added);
        self.legs.insert(
            publication.id.clone(),
            Leg {
                kind: publication.kind,
                track_id: track_id.clone(),
                payload_type: None,
                extensions: Vec::new(),
            },
        );
        out.push(command(
            key,
            MediaAction::AddLeg {
                publication: publication.clone(),
                from,
                track_id,
            },
        ));
        self.dirty = true;
    }

    /// Removes a leg (if there is one).
    pub(crate) fn remove_leg(&mut self, key: &MediaKey, id: &str, out: &mut Vec<Emit>) -> bool {
        if self.legs.remove(id).is_none() {
            return false;
        }
        out.push(command(
            key,
            MediaAction::RemoveLeg {
                publication: id.to_owned(),
            },
        ));
        self.dirty = true;
        true
    }

    /// Whether the leg has started (an answer covered it).
    pub(crate) fn started(&self, id: &str) -> bool {
        self.legs.get(id).is_some_and(|l| l.payload_type.is_some())
    }

    /// The legs, by publication id.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn leg_ids(&self) -> impl Iterator<Item = &str> {
        self.legs.keys().map(String::as_str)
    }

    /// Makes an offer if legs changed since the last one and none is open. The room calls it
    /// once after each input, so legs added together (a newcomer's) go in one offer.
    pub(crate) fn flush(&mut self, key: &MediaKey, out: &mut Vec<Emit>) {
        if !self.dirty || self.open.is_some() {
            return;
        }
        self.dirty = false;
        self.number += 1;
        self.open = Some(OfferState::Making);
        out.push(command(
            key,
            MediaAction::CreateOffer {
                negotiation: self.number,
                ice_restart: std::mem::take(&mut self.restart),
            },
        ));
    }

    /// The connection failed: the next offer (made as soon as none is open) restarts ICE, and
    /// what it carries is kept until `until`. Every failure asks for a new restart; false if it
    /// was interrupted already (the first deadline stands).
    pub(crate) fn interrupt(&mut self, until: Millis) -> bool {
        self.restart = true;
        self.dirty = true;
        self.interrupted.start(until)
    }

    /// The publication ids of the legs whose offer was answered.
    pub(crate) fn started_legs(&self) -> impl Iterator<Item = &str> {
        self.legs
            .iter()
            .filter(|(_, l)| l.payload_type.is_some())
            .map(|(id, _)| id.as_str())
    }

    /// The shell made offer `negotiation` (or could not).
    pub(crate) fn offer_ready(
        &mut self,
        conn: SessionId,
        negotiation: u64,
        result: Result<String, String>,
        out: &mut Vec<Emit>,
    ) {
        if negotiation != self.number || self.open != Some(OfferState::Making) {
            return;
        }
        match result {
            Ok(sdp) => {
                self.failures = 0;
                self.offer = Description::parse(&sdp);
                self.open = Some(OfferState::Sent);
                let sdp = if self.answered {
                    sdp
                } else {
                    let (sdp, candidates) = super::sdp::without_candidates(&sdp);
                    for candidate in candidates {
                        self.hold(candidate);
                    }
                    sdp
                };
                out.push(Emit::Send {
                    to: conn,
                    frame: ServerFrame::SubscribeOffer { negotiation, sdp },
                });
            }
            Err(message) => {
                self.open = None;
                // Its legs are still to be offered: ask again with the next input, a few times.
                self.failures += 1;
                self.dirty = self.failures <= OFFER_RETRIES;
                out.push(media_failed(
                    conn,
                    MediaConnection::Subscribe,
                    None,
                    message,
                ));
            }
        }
    }

    /// The member answers offer `negotiation`: the answer goes to the shell, and the core notes
    /// which payload type each leg in it sends with.
    pub(crate) fn answer(
        &mut self,
        key: &MediaKey,
        op: OperationId,
        negotiation: u64,
        sdp: String,
    ) -> Result<Emit, Refusal> {
        if negotiation != self.number || self.open != Some(OfferState::Sent) {
            return refuse(
                ErrorCode::NoSuchOffer,
                format!("no offer numbered {negotiation} is waiting for an answer"),
            );
        }
        let answer = Description::parse(&sdp);
        let mut legs = Vec::new();
        for (id, leg) in &self.legs {
            let Some(mid) = self
                .offer
                .media
                .iter()
                .find(|l| l.track_id.as_deref() == Some(leg.track_id.as_str()))
                .and_then(|l| l.mid.as_deref())
            else {
                continue;
            };
            let Some(line) = answer.line(mid).filter(|l| !l.rejected) else {
                continue;
            };
            if let Some(payload_type) = line.payload_type_of(codec_name(leg.kind)) {
                legs.push((
                    id.clone(),
                    leg.track_id.clone(),
                    payload_type,
                    line.extensions.clone(),
                ));
            }
        }
        self.open = Some(OfferState::Applying { op, legs });
        Ok(command(
            key,
            MediaAction::ApplyAnswer {
                op,
                negotiation,
                sdp,
            },
        ))
    }

    /// The shell applied the answer (or could not). Returns the legs that started now (or
    /// whose negotiation changed): the room starts them in the shell and asks their publishers
    /// for key frames.
    pub(crate) fn answer_applied(
        &mut self,
        conn: SessionId,
        op: OperationId,
        negotiation: u64,
        result: Result<(), String>,
        out: &mut Vec<Emit>,
    ) -> Vec<Started> {
        let Some(OfferState::Applying { op: open_op, .. }) = &self.open else {
            return Vec::new();
        };
        if *open_op != op || negotiation != self.number {
            return Vec::new();
        }
        let Some(OfferState::Applying { legs, .. }) = self.open.take() else {
            unreachable!("matched above");
        };
        let mut started = Vec::new();
        match result {
            Ok(()) => {
                out.push(Emit::Send {
                    to: conn,
                    frame: ServerFrame::Done { op, seq: None },
                });
                if !std::mem::replace(&mut self.answered, true) {
                    let mid = self.offer.first_mid().map(str::to_owned);
                    for candidate in std::mem::take(&mut self.held) {
                        out.push(Emit::Send {
                            to: conn,
                            frame: ServerFrame::IceCandidate {
                                connection: MediaConnection::Subscribe,
                                candidate: IceCandidate {
                                    candidate,
                                    sdp_mid: mid.clone(),
                                    sdp_mline_index: Some(0),
                                    username_fragment: None,
                                },
                            },
                        });
                    }
                }
                for (id, track_id, payload_type, extensions) in legs {
                    // A leg removed and added again meanwhile is not the one answered.
                    let Some(leg) = self.legs.get_mut(&id).filter(|l| l.track_id == track_id)
                    else {
                        continue;
                    };
                    let changed = leg.payload_type.replace(payload_type) != Some(payload_type)
                        || leg.extensions != extensions;
                    if changed {
                        leg.extensions = extensions.clone();
                        started.push((id, payload_type, extensions));
                    }
                }
            }
            Err(message) => out.push(op_failed(conn, op, ErrorCode::MediaFailed, message)),
        }
        started
    }

    /// Holds a candidate of the server's side back while no answer was applied (see `held`);
    /// false once candidates go out as they come.
    pub(crate) fn hold(&mut self, candidate: String) -> bool {
        if self.answered {
            return false;
        }
        if !self.held.contains(&candidate) {
            self.held.push(candidate);
        }
        true
    }

    /// Whether the server has made an offer (the connection exists on the server).
    pub(crate) fn negotiated(&self) -> bool {
        self.number > 0
    }

    /// Whether the last offer already carried this candidate.
    pub(crate) fn announced(&self, candidate: &IceCandidate) -> bool {
        self.offer.has_candidate(&candidate.candidate)
    }

    /// The mid the server's candidates on this connection are for.
    pub(crate) fn first_mid(&self) -> Option<&str> {
        self.offer.first_mid()
    }

    /// The op of the answer being applied, if one is.
    pub(crate) fn open_op(&self) -> Option<OperationId> {
        match &self.open {
            Some(OfferState::Applying { op, .. }) => Some(*op),
            _ => None,
        }
    }

    /// The receiving connection failed: its legs are gone, offers start over. Returns the op
    /// of an answer that was being applied (it will not be).
    pub(crate) fn failed(&mut self) -> Option<OperationId> {
        let open = self.open_op();
        let (number, added) = (self.number, self.added);
        *self = Receiving {
            number,
            added,
            ..Receiving::default()
        };
        open
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

pub(crate) fn command(key: &MediaKey, action: MediaAction) -> Emit {
    Emit::Media(MediaCommand {
        to: key.clone(),
        action,
    })
}

/// Refuses (or fails) request `op` of `conn`.
pub(crate) fn op_failed(
    conn: SessionId,
    op: OperationId,
    code: ErrorCode,
    message: impl Into<String>,
) -> Emit {
    Emit::Send {
        to: conn,
        frame: Refusal::new(code, message).into_frame(Some(op)),
    }
}

/// A media failure no request is waiting for, told to the member.
pub(crate) fn media_failed(
    conn: SessionId,
    connection: MediaConnection,
    publication: Option<String>,
    message: String,
) -> Emit {
    Emit::Send {
        to: conn,
        frame: ServerFrame::MediaFailed {
            connection,
            publication,
            message,
        },
    }
}

//! The core's vocabulary: what the shells tell it ([`Input`]), what it tells them ([`Output`],
//! [`MediaCommand`]), and how it refuses a request ([`Refusal`]). A leaf module: it names the
//! core's words and depends on no other part of the core, so the core has no import cycles.

use std::collections::BTreeMap;

use crate::model::{OperationId, Publication, Reason, RoomId, TrackSource, VideoSize};
use crate::protocol::{ClientFrame, IceCandidate, MediaConnection, ServerFrame};

/// A connection's id, chosen by the shell.
pub(crate) type ConnId = u64;

/// A session's id: the id of the connection that said `hello` (a session outlives its
/// connection for the grace period, and a later connection may carry it: `sessions.rs`). The
/// core addresses sessions ([`Emit`]); its last step, `Hub::route`, turns that into frames for
/// connections ([`Output`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionId(pub(crate) u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SessionId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(SessionId)
    }
}

/// Time as the shell tells it: milliseconds since the Unix epoch.
pub(crate) type Millis = u64;

/// Something that happened to the server.
#[derive(Debug)]
pub(crate) enum Input {
    /// A decoded frame from a connection.
    Frame { conn: ConnId, frame: ClientFrame },
    /// A connection is gone: closed in order (`Quit`) or lost (`Network`).
    Disconnected { conn: ConnId, reason: Reason },
    /// A connection's time to log in ran out.
    HandshakeTimeout { conn: ConnId },
    /// Time passed: a deadline (`Hub::next_deadline`) may be due.
    Tick,
    /// What the media shell did or saw.
    Media(MediaReport),
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    /// Send a frame to one connection.
    Send { to: ConnId, frame: ServerFrame },
    /// Send one frame to several connections (encode it once).
    Broadcast {
        to: Vec<ConnId>,
        frame: std::sync::Arc<ServerFrame>,
    },
    /// Send a frame kept in a session's outbox to the session's connection: a personal frame
    /// numbered `n` (the shell writes `n` into it), or a room event (`n` is `None`) replayed.
    /// Only [`Hub::route`](super::Hub) and a resume make these.
    Deliver {
        to: ConnId,
        n: Option<u64>,
        frame: std::sync::Arc<ServerFrame>,
    },
    /// Say goodbye with this reason and close the connection.
    Close { conn: ConnId, reason: Reason },
    /// Work for the media shell.
    Media(MediaCommand),
    /// Start the server's embedded recorder (asked for once, when a recording finds no
    /// recorder connected): it connects to this server and says `recorder_ready`.
    StartRecorder,
    /// Tell the application's backend (webhooks): a room, participant, track or recording
    /// event.
    Notice(crate::model::ServerEvent),
}

/// What the core's steps say, before `Hub::route` (`sessions.rs`) addresses it: frames for
/// sessions, which become frames for the connections carrying them (and are kept in their
/// outboxes), and the rest as [`Output`] has it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Emit {
    /// Send a frame to one session.
    Send { to: SessionId, frame: ServerFrame },
    /// Send one frame to several sessions (encoded once).
    Broadcast {
        to: Vec<SessionId>,
        frame: std::sync::Arc<ServerFrame>,
    },
    /// A frame for a connection itself, whatever session it may carry (a login's refusal, a
    /// resume's replay): see [`Output::Deliver`].
    Deliver {
        to: ConnId,
        n: Option<u64>,
        frame: std::sync::Arc<ServerFrame>,
    },
    /// See [`Output::Close`].
    Close { conn: ConnId, reason: Reason },
    /// See [`Output::Media`].
    Media(MediaCommand),
    /// See [`Output::StartRecorder`].
    StartRecorder,
    /// See [`Output::Notice`].
    Notice(crate::model::ServerEvent),
}

/// One membership's media: made when a connection joins a room, never reused. Every media
/// command and report names one, so a late report about a membership that is over (the member
/// left, or left and joined again) is recognised and dropped, and nothing of one room's media
/// can be mistaken for another's.
pub(crate) type MediaId = u64;

/// A simulcast layer of a published video, by its place in the publisher's list of streams
/// (0 is the first, the smallest as jrtc's clients send them); a video without simulcast has
/// layer 0 only.
pub(crate) type Layer = u8;

/// Whose media a command or report is about: the room (the shell places a room's media
/// together) and the membership.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MediaKey {
    pub room: RoomId,
    pub media: MediaId,
}

/// Work for the media shell, for one membership's peer connections.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MediaCommand {
    pub to: MediaKey,
    pub action: MediaAction,
}

/// What the media shell must do. The core has decided it; the shell carries it out and
/// reports back with a [`MediaReport`] where the action says so.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MediaAction {
    /// Apply the member's offer on its publishing connection and answer it
    /// ([`MediaFact::PublishAnswered`]).
    /// `rids`: the simulcast streams of each source the offer sends with simulcast, in layer
    /// order (layer `i` is `rids[i]`, smallest first).
    /// `levels`: the audio-level header extension's id on each audio source that carries it
    /// (its packets' levels are measured: [`MediaFact::AudioLevel`]).
    AnswerPublish {
        op: OperationId,
        sdp: String,
        rids: BTreeMap<TrackSource, Vec<String>>,
        levels: BTreeMap<TrackSource, u8>,
    },
    /// Make an offer of the receiving connection's current legs ([`MediaFact::OfferReady`]),
    /// restarting ICE (new credentials) if `ice_restart`.
    CreateOffer { negotiation: u64, ice_restart: bool },
    /// Apply the member's answer to offer `negotiation` ([`MediaFact::AnswerApplied`]).
    ApplyAnswer {
        op: OperationId,
        negotiation: u64,
        sdp: String,
    },
    /// Add a leg to the receiving connection: a copy of `publication`, published by membership
    /// `from` of the same room, on a media line of its own whose `a=msid` is the publisher's
    /// user id and `track_id`. It carries no packets until started.
    AddLeg {
        publication: Publication,
        from: MediaId,
        track_id: String,
    },
    /// Remove a leg from the receiving connection (the next offer leaves it out).
    RemoveLeg { publication: String },
    /// Start legs whose offer was answered, each with what was negotiated for it.
    StartLegs { legs: Vec<LegStart> },
    /// Stop or resume a started leg's packets (it stays negotiated).
    PauseLeg { publication: String, paused: bool },
    /// Forward this simulcast layer of the publication on the leg (switching at its next key
    /// frame); a leg starts on its publication's largest layer.
    SetLayer { publication: String, layer: Layer },
    /// Forward this member's track of `source` to its legs, or (`muted`) forward nothing of
    /// it to anyone until told otherwise: legs added meanwhile get nothing either.
    Forward { source: TrackSource, muted: bool },
    /// Ask this member's track of `source` for a key frame (a new or resumed video receiver).
    RequestKeyframe { source: TrackSource },
    /// The room's loudest speaker's camera (publication id), if it has one: this member's
    /// bandwidth goes to it before the other cameras.
    FavourCamera { publication: Option<String> },
    /// An ICE candidate from the member's side of one of its connections.
    AddCandidate {
        connection: MediaConnection,
        candidate: IceCandidate,
    },
    /// Close the publishing connection (it failed and was not restored) and stop forwarding
    /// its tracks.
    ClosePublishing,
    /// Close the receiving connection (it failed and was not restored) and drop its legs.
    CloseReceiving,
    /// The membership is over: close both connections and stop everything of it.
    Teardown,
}

/// What the media shell reports about one membership's peer connections.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MediaReport {
    pub from: MediaKey,
    pub fact: MediaFact,
}

/// A media fact: the outcome of an action, or something the peer connections saw.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MediaFact {
    /// The publishing connection's answer (or why there is none).
    PublishAnswered {
        op: OperationId,
        result: Result<String, String>,
    },
    /// The receiving connection's offer `negotiation` (or why there is none).
    OfferReady {
        negotiation: u64,
        result: Result<String, String>,
    },
    /// The member's answer to offer `negotiation` was applied (or was not).
    AnswerApplied {
        op: OperationId,
        negotiation: u64,
        result: Result<(), String>,
    },
    /// A track of the member's reached the server; `track_id` as its description names it.
    TrackArrived { track_id: String },
    /// A candidate of the server's side of one of the member's connections.
    LocalCandidate {
        connection: MediaConnection,
        candidate: IceCandidate,
    },
    /// A key frame of the member's track of `source` showed layer `layer` at a new size (the
    /// first time, after the layer had stopped, or the publisher's encoder changed it); `None`:
    /// the layer stopped (no packet of it for a second while others came).
    LayerSize {
        source: TrackSource,
        layer: Layer,
        size: Option<VideoSize>,
    },
    /// The member's track of `source` measured `level_dbov` (−dBov: 0 the loudest, 127
    /// silence) over the window that just ended (`sfu/audio_level.rs`).
    AudioLevel { source: TrackSource, level_dbov: u8 },
    /// The member's media over the last period (`sfu/link_meter.rs`, every
    /// [`MEASURE_EVERY_MS`](super::net_status::MEASURE_EVERY_MS)).
    LinkMeasured(super::net_status::LinkSample),
    /// One of the member's peer connections failed.
    PeerFailed { connection: MediaConnection },
    /// One of the member's peer connections is connected (the first time, or again after it
    /// failed and ICE was restarted).
    PeerConnected { connection: MediaConnection },
}

/// Policies of the core, set by the server's options.
#[derive(Clone, Debug)]
pub(crate) struct HubConfig {
    /// Server-made room ids start with this (make it unguessable).
    pub room_prefix: String,
    /// How long an invitation stays open unless the caller says otherwise.
    pub invite_timeout_ms: Millis,
    /// Refuse invitations to users in another call at once, as busy.
    pub auto_reject_busy: bool,
    /// Keep invitations to users who are not connected, delivering them when they log in.
    pub hold_offline_invitations: bool,
    /// The secret access tokens are signed with.
    pub secret: Vec<u8>,
    /// Most rooms at once.
    pub max_rooms: usize,
    /// Most members in one room.
    pub max_participants: usize,
    /// Most connections one user may have at once.
    pub max_connections_per_user: usize,
    /// This server run's random secret that resume keys are made with (so a key cannot be
    /// guessed, and a key from before a restart is not taken for a session of this run).
    pub resume_secret: Vec<u8>,
    /// How long a session whose connection was lost keeps its seat.
    pub grace_ms: Millis,
    /// Most frames a session keeps for a resume (beyond it, a resume gets a resync).
    pub outbox_capacity: usize,
    /// Longest a token may be valid (from its `iat`, and from now, to its `exp`).
    pub max_token_lifetime_ms: Millis,
    /// Most bans the server holds in all.
    pub max_bans: usize,
    /// Whether the server runs a recorder of its own when none is connected.
    pub embedded_recorder: bool,
    /// How long a recording may take to begin (a recorder joined and recording).
    pub recorder_start_timeout_ms: Millis,
    /// Every new room records from its start, with these options.
    pub auto_record: Option<crate::model::RecordingOptions>,
    /// How rooms tell their active speakers (a room made by the server API may differ).
    pub speakers: super::speakers::SpeakerConfig,
}

pub(crate) use crate::protocol::{Refusal, refuse};

/// A leg to start: what its subscriber negotiated for it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LegStart {
    /// The publication it copies.
    pub publication: String,
    /// The payload type its packets carry.
    pub payload_type: u8,
    /// Which of the publisher's header extensions its packets carry, under which id.
    pub extensions: ExtensionMap,
}

/// Header extensions whose value means the same to every receiver of a track, so an SFU may
/// pass them on: the audio level of a packet, the camera's orientation, capture time, playout
/// delay, colour space, content type, and the transmission offset. Every other extension
/// describes one hop (the media line's `mid`, a simulcast layer's `rid`, transport-wide
/// sequence numbers, send times) or is unknown, and is dropped.
pub(crate) const END_TO_END_EXTENSIONS: [&str; 7] = [
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "urn:ietf:params:rtp-hdrext:toffset",
];

/// How a leg rewrites a publisher's RTP header extensions: each pair is (the publisher's id,
/// the subscriber's id) of one extension both negotiated; an extension not listed is dropped.
/// Publishers and subscribers negotiate ids independently, and a stack drops a packet that
/// carries an id its leg did not negotiate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExtensionMap(pub Vec<(u8, u8)>);

impl ExtensionMap {
    /// The map for a leg: the end-to-end extensions that both the publisher's line and the
    /// subscriber's line negotiated, each `(id, uri)`.
    pub(crate) fn between(publisher: &[(u8, String)], subscriber: &[(u8, String)]) -> Self {
        let mut pairs = Vec::new();
        for (from, uri) in publisher {
            if !END_TO_END_EXTENSIONS.contains(&uri.as_str())
                || pairs.iter().any(|(f, _)| f == from)
            {
                continue;
            }
            if let Some((to, _)) = subscriber.iter().find(|(_, u)| u == uri) {
                pairs.push((*from, *to));
            }
        }
        ExtensionMap(pairs)
    }

    /// The subscriber's id for the publisher's extension `id`, if the leg carries it.
    pub(crate) fn get(&self, id: u8) -> Option<u8> {
        self.0
            .iter()
            .find(|(from, _)| *from == id)
            .map(|(_, to)| *to)
    }
}

#[cfg(test)]
mod tests {
    use super::ExtensionMap;

    #[test]
    fn a_leg_carries_the_end_to_end_extensions_both_sides_have_under_the_subscribers_ids() {
        let ext = |id: u8, uri: &str| (id, uri.to_owned());
        let publisher = [
            ext(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            ext(3, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            ext(4, "urn:3gpp:video-orientation"),
            ext(
                5,
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            ),
        ];
        let subscriber = [
            ext(9, "urn:3gpp:video-orientation"),
            ext(10, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            ext(1, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            ext(
                2,
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            ),
        ];
        let map = ExtensionMap::between(&publisher, &subscriber);
        assert_eq!(map, ExtensionMap(vec![(1, 10), (4, 9)]));
        assert_eq!(
            map.get(3),
            None,
            "the mid is the leg's own, never the publisher's"
        );
        assert_eq!(map.get(5), None, "transport-wide numbers are per hop");
        assert_eq!(
            ExtensionMap::between(&publisher, &[]),
            ExtensionMap::default()
        );
    }
}

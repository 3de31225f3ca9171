//! A call's media statistics ([`Call::statistics`](crate::Call::statistics); jrtc.js's
//! `call.statistics()` gives the same shape as JSON), from its peer connections' own counters.

use serde::{Deserialize, Serialize};

use super::{MediaConnection, MediaKind, NetStatus, TrackSource, UserId, VolumeStatus};

/// What a call's media did, as its peer connections count it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallStatistics {
    /// Each track this call publishes.
    pub published: Vec<TrackStatistics>,
    /// Each track this call receives.
    pub received: Vec<TrackStatistics>,
    /// Each member of the room (this call's user included), with what this call receives of
    /// it.
    pub participants: Vec<ParticipantStatistics>,
    /// Each of the call's two peer connections that exists.
    pub connections: Vec<ConnectionStatistics>,
}

/// One published or received track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackStatistics {
    /// Its publication's id (`<user>/<source>`).
    pub publication: String,
    /// Whose it is.
    pub participant: UserId,
    /// What it carries.
    pub source: TrackSource,
    /// Audio or video.
    pub kind: MediaKind,
    /// RTP packets sent (published) or received (received), retransmissions included, every
    /// simulcast layer together.
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Payload bits per second since this call's previous statistics (or since the track
    /// started).
    pub bitrate_bps: u64,
    /// Packets lost: of a published track, as the server's receiver reports say; of a
    /// received one, as counted here (by sequence numbers, updated with each receiver report
    /// this side sends, once a second).
    pub packets_lost: u64,
    /// `packets_lost` against the packets expected, in percent.
    pub loss_percent: f64,
    /// The interarrival jitter (RFC 3550) of the latest report, in milliseconds.
    pub jitter_ms: Option<f64>,
    /// The round trip of the track's connection (its ICE checks), in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Video frames written (published: packets that end a frame) or received (received:
    /// frame-ending packets that arrived); `None` for audio.
    pub frames: Option<u64>,
    /// Key frames asked for: received from the server (published) or sent (received); PLI
    /// and FIR together.
    pub keyframe_requests: u64,
    /// Retransmission requests (NACK packets): received (published) or sent (received).
    pub nacks: u64,
    /// Of a published track sent with simulcast, how many of its layers are sent now (the
    /// server pauses the ones nobody receives); `None` otherwise.
    pub layers: Option<u8>,
    /// The sending side's bandwidth estimate for the track's connection, if it has one.
    pub bandwidth_estimate_bps: Option<u64>,
}

/// One member of the room, as this call sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParticipantStatistics {
    /// Who.
    pub user_id: UserId,
    /// Its net status, as the server measures it.
    pub net: NetStatus,
    /// Its volume status, as the server measures it.
    pub volume: VolumeStatus,
    /// How many of its tracks this call receives.
    pub tracks: usize,
    /// Their bitrate together.
    pub bitrate_bps: u64,
    /// Their lost packets together.
    pub packets_lost: u64,
}

/// One of the call's peer connections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionStatistics {
    /// Which.
    pub connection: MediaConnection,
    /// The round trip of its ICE checks, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets it sent (media and feedback).
    pub packets_sent: u64,
    /// Packets it received (media and feedback).
    pub packets_received: u64,
    /// Bytes it sent.
    pub bytes_sent: u64,
    /// Bytes it received.
    pub bytes_received: u64,
    /// The server's address the connection reaches (its candidate in use), once connected.
    pub remote_address: Option<String>,
    /// Whether the media goes over `"udp"` or `"tcp"` (ICE over TCP, where UDP is blocked),
    /// once connected.
    pub protocol: Option<String>,
}

/// What the server measures of a room's media (`GET /api/rooms/{room}/statistics`): each
/// member's link and each published track, as the server sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomStatistics {
    /// The room.
    pub room: super::RoomId,
    /// Each member, in joining order.
    pub participants: Vec<MemberLink>,
    /// Each published track, in publishing order.
    pub tracks: Vec<ServerTrackStatistics>,
}

/// One member's link over the latest second the server measured (`None`s before its media).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemberLink {
    /// Who.
    pub user_id: UserId,
    /// Its net status.
    pub net: NetStatus,
    /// Its volume status.
    pub volume: VolumeStatus,
    /// Of what it sends, the share that did not arrive, in percent.
    pub uplink_loss_percent: Option<f64>,
    /// Of what it is sent, the share its receiver reports say was lost, in percent.
    pub downlink_loss_percent: Option<f64>,
    /// The worst audio jitter either side reported, in milliseconds.
    pub jitter_ms: Option<u32>,
    /// The ICE round trip, in milliseconds.
    pub rtt_ms: Option<u32>,
    /// The server's bandwidth estimate towards it.
    pub bandwidth_estimate_bps: Option<u64>,
    /// What the videos it receives need at the sizes it asked for.
    pub wanted_bps: u64,
}

/// One published track, as the server forwards it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerTrackStatistics {
    /// Its publication's id.
    pub publication: String,
    /// Whose.
    pub participant: UserId,
    /// What it carries.
    pub source: TrackSource,
    /// Whether it is muted (nothing of it is forwarded or counted then).
    pub muted: bool,
    /// Packets that arrived from its publisher, every layer together.
    pub packets: u64,
    /// Packets its sequence numbers say were sent but never arrived.
    pub packets_lost: u64,
    /// Each simulcast layer's bitrate now, smallest first (one entry without simulcast).
    pub layer_bitrates_bps: Vec<u64>,
    /// Each member it is forwarded to.
    pub receivers: Vec<TrackReceiver>,
}

/// One member a track is forwarded to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackReceiver {
    /// Who.
    pub user_id: UserId,
    /// The simulcast layer it gets now (0 the smallest; `None` while it waits for one).
    pub layer: Option<u8>,
    /// Packets forwarded to it.
    pub packets: u64,
}

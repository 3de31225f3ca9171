//! Media on the `webrtc` crate: what the client and the server share — building a peer
//! connection with our settings, and the track handles applications read and write.
//!
//! Each member has two peer connections to the server: one it publishes on (the client offers)
//! and one it receives on (the server offers). One offerer per connection means no glare when
//! tracks come and go on both sides at once. See `docs/architecture.md` (media path).

mod keyframes;
mod nack_limit;
mod peer;
mod remb;
mod track;

/// The `rtc` crate the media stack is built on, for its codec packetizers (`rtp::codec::vp8`,
/// `rtp::codec::opus`) and media file readers and writers (`media::io::ivf_reader`,
/// `ivf_writer`, `ogg_reader`), at the version jrtc uses.
pub use rtc;

pub(crate) use keyframes::{asks_for_keyframe, keyframe_asked_of};
pub(crate) use peer::{Peer, PeerEvent, PeerSettings, SharedConnection, SharedPort, codec_for};
pub use track::{LocalTrack, RemoteTrack, RtpPacket};
pub(crate) use track::{Stamps, Stream, rand_u32};

/// What went wrong with media.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The `webrtc` crate reported an error (its [`source`](std::error::Error::source)).
    #[error("webrtc: {0}")]
    WebRtc(#[source] webrtc::error::Error),
    /// The negotiation did not finish in time.
    #[error("media negotiation timed out")]
    Timeout,
    /// The peer connection is closed.
    #[error("the peer connection is closed")]
    Closed,
    /// A write to a simulcast layer the track does not have.
    #[error("layer {layer} does not exist: the track has {layers}")]
    NoSuchLayer {
        /// The layer written to.
        layer: usize,
        /// How many the track has.
        layers: usize,
    },
    /// An audio level out of RFC 6464's range (0 to 127 −dBov).
    #[error("audio level {level} is not 0 to 127 (-dBov)")]
    AudioLevel {
        /// The level given.
        level: u8,
    },
}

impl From<webrtc::error::Error> for MediaError {
    fn from(e: webrtc::error::Error) -> Self {
        MediaError::WebRtc(e)
    }
}

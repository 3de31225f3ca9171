//! Track handles for applications: a [`LocalTrack`] to send media on, a [`RemoteTrack`] to read
//! another member's media from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::MediaError;
use crate::model::{Publication, TrackSource};

/// An RTP packet (header and payload), as sent and received on tracks.
pub type RtpPacket = rtc::rtp::Packet;

/// A track this call publishes. Write RTP payloads to it (already encoded: Opus for the
/// microphone, VP8 for camera and screen); the server forwards them to the room. Cheap to clone.
#[derive(Clone)]
pub struct LocalTrack {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    source: TrackSource,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    sequence: Arc<AtomicU16>,
    /// Muted by this call.
    muted: AtomicBool,
    /// Muted by someone else (a host, the backend), until the server says it is unmuted.
    held: AtomicBool,
    /// Unpublished: writes fail (a later publish of the source hands out a new handle).
    ended: AtomicBool,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("source", &self.inner.source)
            .field("ssrc", &self.inner.ssrc)
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    pub(crate) fn new(
        source: TrackSource,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: u8,
    ) -> Self {
        LocalTrack {
            inner: Arc::new(LocalInner {
                source,
                track,
                ssrc,
                payload_type,
                sequence: Arc::new(AtomicU16::new(rand_u16())),
                muted: AtomicBool::new(false),
                held: AtomicBool::new(false),
                ended: AtomicBool::new(false),
            }),
        }
    }

    /// A new handle on the same track (same SSRC, sequence numbers continuing), for a source
    /// published again after `unpublish`.
    pub(crate) fn revive(&self) -> LocalTrack {
        let inner = &self.inner;
        LocalTrack {
            inner: Arc::new(LocalInner {
                source: inner.source,
                track: inner.track.clone(),
                ssrc: inner.ssrc,
                payload_type: inner.payload_type,
                sequence: inner.sequence.clone(),
                muted: AtomicBool::new(false),
                held: AtomicBool::new(false),
                ended: AtomicBool::new(false),
            }),
        }
    }

    /// The RTP track this handle writes to (to put it on a new peer connection).
    pub(crate) fn rtp_track(&self) -> Arc<TrackLocalStaticRTP> {
        self.inner.track.clone()
    }

    /// Ends this handle: later writes fail with [`MediaError::Closed`].
    pub(crate) fn end(&self) {
        self.inner.ended.store(true, Ordering::Relaxed);
    }

    /// What this track carries.
    pub fn source(&self) -> TrackSource {
        self.inner.source
    }

    /// Sends one RTP packet carrying `payload`, stamped with `timestamp` (in the codec's clock:
    /// 48 kHz for Opus, 90 kHz for VP8); `marker` ends a video frame. Sequence numbers, SSRC and
    /// payload type are filled in.
    pub async fn write(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
    ) -> Result<(), MediaError> {
        let mut packet = RtpPacket::default();
        packet.header.version = 2;
        packet.header.marker = marker;
        packet.header.timestamp = timestamp;
        packet.header.sequence_number = self.inner.sequence.fetch_add(1, Ordering::Relaxed);
        packet.payload = payload.into();
        self.write_rtp(packet).await
    }

    /// Waits until a receiver asks for a key frame (a PLI or FIR relayed by the server); send
    /// one soon after. `None` once the track is no longer sending.
    pub async fn keyframe_requested(&self) -> Option<()> {
        loop {
            let TrackLocalEvent::OnRtcpPacket(packets) = self.inner.track.poll().await? else {
                continue;
            };
            if packets.iter().any(|p| super::asks_for_keyframe(p.as_ref())) {
                return Some(());
            }
        }
    }

    /// Whether the track is muted: by this call ([`Call::set_muted`](crate::Call::set_muted)),
    /// or by someone else until this call unmutes it and the server confirms. A muted track
    /// drops what is written to it.
    pub fn is_muted(&self) -> bool {
        self.inner.muted.load(Ordering::Relaxed) || self.inner.held.load(Ordering::Relaxed)
    }

    pub(crate) fn set_muted(&self, muted: bool) {
        self.inner.muted.store(muted, Ordering::Relaxed);
    }

    /// Someone else muted the track (`true`), or the server says it is unmuted (`false`).
    pub(crate) fn hold(&self, held: bool) {
        self.inner.held.store(held, Ordering::Relaxed);
    }

    /// Sends an RTP packet as given, but for its SSRC and payload type, which are this track's.
    /// Nothing is sent while the track is muted; once it is unpublished, writing fails with
    /// [`MediaError::Closed`].
    pub async fn write_rtp(&self, mut packet: RtpPacket) -> Result<(), MediaError> {
        if self.inner.ended.load(Ordering::Relaxed) {
            return Err(MediaError::Closed);
        }
        if self.is_muted() {
            return Ok(());
        }
        packet.header.ssrc = self.inner.ssrc;
        packet.header.payload_type = self.inner.payload_type;
        self.inner.track.write_rtp(packet).await?;
        Ok(())
    }
}

/// Another member's track, arriving at this call. Read its packets with
/// [`RemoteTrack::next_packet`] (one reader at a time).
#[derive(Clone)]
pub struct RemoteTrack {
    publication: Publication,
    track: Arc<dyn TrackRemote>,
    /// Cancelled when the track stops reaching the call (unpublished, publisher gone, call
    /// left or closed).
    ended: CancellationToken,
}

impl std::fmt::Debug for RemoteTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTrack")
            .field("publication", &self.publication)
            .finish_non_exhaustive()
    }
}

impl RemoteTrack {
    pub(crate) fn new(publication: Publication, track: Arc<dyn TrackRemote>) -> Self {
        RemoteTrack {
            publication,
            track,
            ended: CancellationToken::new(),
        }
    }

    /// The track no longer reaches the call: readers get `None`.
    pub(crate) fn end(&self) {
        self.ended.cancel();
    }

    /// Whose track, and what it carries.
    pub fn publication(&self) -> &Publication {
        &self.publication
    }

    /// The next RTP packet, or `None` once the track has ended: its publisher unpublished it
    /// or left, or this call left the room or closed ([`MediaEvent::Unsubscribed`] says so
    /// on the event stream). Unsubscribing pauses the track instead: no packets arrive until
    /// you subscribe again.
    ///
    /// [`MediaEvent::Unsubscribed`]: crate::MediaEvent::Unsubscribed
    pub async fn next_packet(&self) -> Option<RtpPacket> {
        loop {
            let event = tokio::select! {
                biased;
                _ = self.ended.cancelled() => return None,
                event = self.track.poll() => event?,
            };
            match event {
                TrackRemoteEvent::OnRtpPacket(packet) => return Some(packet),
                TrackRemoteEvent::OnEnded => return None,
                _ => {}
            }
        }
    }

    /// Asks the publisher for a key frame (a picture loss indication, forwarded by the server).
    pub async fn request_keyframe(&self) -> Result<(), MediaError> {
        let Some(media_ssrc) = self.track.ssrcs().await.first().copied() else {
            return Ok(());
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        self.track.write_rtcp(vec![Box::new(pli)]).await?;
        Ok(())
    }
}

/// A random starting point (RFC 3550 wants sequence numbers and SSRCs unpredictable).
fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}

/// A random SSRC.
pub(crate) fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

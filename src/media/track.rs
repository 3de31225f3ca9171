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
use crate::model::{MediaKind, Publication, TrackSource};

/// An RTP packet (header and payload), as sent and received on tracks.
pub type RtpPacket = rtc::rtp::Packet;

/// A track this call publishes. Write RTP payloads to it (already encoded: Opus for the
/// microphone, VP8 for camera and screen); the server forwards them to the room. Cheap to clone.
///
/// A video published with simulcast ([`CallOptions::simulcast`](crate::CallOptions)) has
/// several layers, each its own stream: write each layer's frames with
/// [`LocalTrack::write_layer`] (layer 0 is the smallest; [`LocalTrack::write`] writes the
/// largest). The server tells the call which layers somebody receives (dynacast): writes to the
/// others are dropped until they are wanted again ([`LocalTrack::is_layer_sent`]).
#[derive(Clone)]
pub struct LocalTrack {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    source: TrackSource,
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    /// Its streams: one, or one per simulcast layer (smallest first).
    layers: Vec<LayerOut>,
    /// With simulcast: the header extensions that name each packet's stream to the server.
    stamps: Option<Stamps>,
    /// The audio-level header extension's id, when the server took it (audio only).
    audio_level_id: Option<u8>,
    /// Muted by this call.
    muted: AtomicBool,
    /// Muted by someone else (a host, the backend), until the server says it is unmuted.
    held: AtomicBool,
    /// Unpublished: writes fail (a later publish of the source hands out a new handle).
    ended: AtomicBool,
    /// Layers the server wants again after dynacast paused them: each starts with a key frame,
    /// asked of the application as a receiver's request would be.
    owed: std::sync::Mutex<Vec<usize>>,
    owed_changed: tokio::sync::Notify,
    /// Packets that ended a video frame, sent (the statistics' frame count).
    frames: std::sync::atomic::AtomicU64,
}

/// One stream of a local track.
struct LayerOut {
    ssrc: u32,
    /// Its simulcast stream id (empty without simulcast).
    rid: Bytes,
    sequence: Arc<AtomicU16>,
    /// Somebody receives it (the server's dynacast; true until the server says otherwise).
    sent: AtomicBool,
}

/// The negotiated header extensions a simulcast packet carries: its media line's `mid` and its
/// stream's `rid` (RFC 8852), by which the server tells the streams apart.
#[derive(Clone, Debug)]
pub(crate) struct Stamps {
    pub(crate) mid_id: u8,
    pub(crate) mid: Bytes,
    pub(crate) rid_id: u8,
}

/// One stream of a new local track: its SSRC and simulcast stream id (empty without simulcast).
pub(crate) type Stream = (u32, String);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ssrcs: Vec<u32> = self.inner.layers.iter().map(|l| l.ssrc).collect();
        f.debug_struct("LocalTrack")
            .field("source", &self.inner.source)
            .field("ssrcs", &ssrcs)
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    pub(crate) fn new(
        source: TrackSource,
        track: Arc<TrackLocalStaticRTP>,
        streams: &[Stream],
        payload_type: u8,
        stamps: Option<Stamps>,
        audio_level_id: Option<u8>,
    ) -> Self {
        let layers = streams
            .iter()
            .map(|(ssrc, rid)| LayerOut {
                ssrc: *ssrc,
                rid: Bytes::copy_from_slice(rid.as_bytes()),
                sequence: Arc::new(AtomicU16::new(rand_u16())),
                sent: AtomicBool::new(true),
            })
            .collect();
        LocalTrack {
            inner: Arc::new(LocalInner {
                source,
                track,
                payload_type,
                layers,
                stamps,
                audio_level_id,
                muted: AtomicBool::new(false),
                held: AtomicBool::new(false),
                ended: AtomicBool::new(false),
                owed: Default::default(),
                owed_changed: Default::default(),
                frames: Default::default(),
            }),
        }
    }

    /// A new handle on the same track (same SSRCs, sequence numbers continuing), for a source
    /// published again after `unpublish`.
    pub(crate) fn revive(&self) -> LocalTrack {
        let inner = &self.inner;
        let layers = inner
            .layers
            .iter()
            .map(|l| LayerOut {
                ssrc: l.ssrc,
                rid: l.rid.clone(),
                sequence: l.sequence.clone(),
                sent: AtomicBool::new(true),
            })
            .collect();
        LocalTrack {
            inner: Arc::new(LocalInner {
                source: inner.source,
                track: inner.track.clone(),
                payload_type: inner.payload_type,
                layers,
                stamps: inner.stamps.clone(),
                audio_level_id: inner.audio_level_id,
                muted: AtomicBool::new(false),
                held: AtomicBool::new(false),
                ended: AtomicBool::new(false),
                owed: Default::default(),
                owed_changed: Default::default(),
                frames: Default::default(),
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

    /// How many layers it sends: 1, or its simulcast layers.
    pub fn layers(&self) -> usize {
        self.inner.layers.len()
    }

    /// Whether somebody receives layer `layer` (the server's dynacast): writes to a layer
    /// nobody wants are dropped, so an encoder may skip it too.
    pub fn is_layer_sent(&self, layer: usize) -> bool {
        self.inner
            .layers
            .get(layer)
            .is_some_and(|l| l.sent.load(Ordering::Relaxed))
    }

    /// Sends these simulcast streams (by rid) and drops what is written to the others; a layer
    /// sent again is owed a key frame ([`LocalTrack::keyframe_requested_layer`]).
    pub(crate) fn send_layers(&self, rids: &[String]) {
        let mut resumed = Vec::new();
        for (i, layer) in self.inner.layers.iter().enumerate() {
            let sent = rids.iter().any(|rid| rid.as_bytes() == layer.rid);
            if sent && !layer.sent.swap(sent, Ordering::Relaxed) {
                resumed.push(i);
            } else {
                layer.sent.store(sent, Ordering::Relaxed);
            }
        }
        if !resumed.is_empty() {
            lock(&self.inner.owed).extend(resumed);
            self.inner.owed_changed.notify_one();
        }
    }

    /// Sends one RTP packet carrying `payload` on the largest layer, stamped with `timestamp`
    /// (in the codec's clock: 48 kHz for Opus, 90 kHz for VP8); `marker` ends a video frame.
    /// Sequence numbers, SSRC and payload type are filled in.
    pub async fn write(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
    ) -> Result<(), MediaError> {
        self.write_layer(self.layers() - 1, payload, timestamp, marker)
            .await
    }

    /// [`LocalTrack::write`] on simulcast layer `layer` (0 is the smallest). A layer the track
    /// does not have is [`MediaError::NoSuchLayer`].
    pub async fn write_layer(
        &self,
        layer: usize,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
    ) -> Result<(), MediaError> {
        let out = self.layer(layer)?;
        self.send(out, next_packet(out, payload.into(), timestamp, marker))
            .await
    }

    /// [`LocalTrack::write`] for audio, with the level of the audio in `payload` in −dBov (0 the
    /// loudest, 127 silence: RFC 6464, as browsers send it; the server tells the room who
    /// speaks from it, [`MediaEvent::ActiveSpeakers`](crate::MediaEvent::ActiveSpeakers)). A
    /// level above 127 is [`MediaError::AudioLevel`]; on a video track, or when the server did
    /// not take the extension, the level is left out.
    pub async fn write_with_level(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        level_dbov: u8,
    ) -> Result<(), MediaError> {
        if level_dbov > 127 {
            return Err(MediaError::AudioLevel { level: level_dbov });
        }
        let out = self.layer(self.layers() - 1)?;
        let mut packet = next_packet(out, payload.into(), timestamp, false);
        if let Some(id) = self.inner.audio_level_id {
            let _ = packet
                .header
                .set_extension(id, Bytes::copy_from_slice(&[level_dbov]));
        }
        self.send(out, packet).await
    }

    fn layer(&self, layer: usize) -> Result<&LayerOut, MediaError> {
        self.inner.layers.get(layer).ok_or(MediaError::NoSuchLayer {
            layer,
            layers: self.inner.layers.len(),
        })
    }

    /// Waits until a receiver asks for a key frame (a PLI or FIR relayed by the server); send
    /// one soon after. `None` once the track is no longer sending.
    pub async fn keyframe_requested(&self) -> Option<()> {
        self.keyframe_requested_layer().await.map(|_| ())
    }

    /// [`LocalTrack::keyframe_requested`], with the layer the request is for (the largest when
    /// the request names no stream of the track). A simulcast layer the server wants again
    /// after pausing it (dynacast) is asked for too: it starts with a key frame.
    pub async fn keyframe_requested_layer(&self) -> Option<usize> {
        loop {
            if let Some(layer) = lock(&self.inner.owed).pop() {
                return Some(layer);
            }
            let event = tokio::select! {
                event = self.inner.track.poll() => event?,
                _ = self.inner.owed_changed.notified() => continue,
            };
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            for packet in packets.iter() {
                if let Some(ssrc) = super::keyframe_asked_of(packet.as_ref()) {
                    let layers = &self.inner.layers;
                    let layer = layers.iter().position(|l| l.ssrc == ssrc);
                    return Some(layer.unwrap_or(layers.len() - 1));
                }
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

    /// Sends an RTP packet as given (on the largest layer), but for its SSRC and payload type,
    /// which are this track's. Nothing is sent while the track is muted; once it is
    /// unpublished, writing fails with [`MediaError::Closed`].
    pub async fn write_rtp(&self, packet: RtpPacket) -> Result<(), MediaError> {
        let out = self.layer(self.layers() - 1)?;
        self.send(out, packet).await
    }

    async fn send(&self, out: &LayerOut, mut packet: RtpPacket) -> Result<(), MediaError> {
        if self.inner.ended.load(Ordering::Relaxed) {
            return Err(MediaError::Closed);
        }
        if self.is_muted() || !out.sent.load(Ordering::Relaxed) {
            return Ok(());
        }
        packet.header.ssrc = out.ssrc;
        packet.header.payload_type = self.inner.payload_type;
        if let Some(stamps) = &self.inner.stamps {
            // What tells the server which stream a packet belongs to (its SSRCs are not in
            // the offer): the media line and the stream id.
            let _ = packet
                .header
                .set_extension(stamps.mid_id, stamps.mid.clone());
            let _ = packet.header.set_extension(stamps.rid_id, out.rid.clone());
        }
        let ends_frame = packet.header.marker && self.inner.source.kind() == MediaKind::Video;
        self.inner.track.write_rtp(packet).await?;
        if ends_frame {
            self.inner.frames.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Its streams' SSRCs, smallest layer first.
    pub(crate) fn ssrcs(&self) -> Vec<u32> {
        self.inner.layers.iter().map(|l| l.ssrc).collect()
    }

    /// Video frames sent so far (packets that ended one).
    pub(crate) fn frames(&self) -> u64 {
        self.inner.frames.load(Ordering::Relaxed)
    }

    /// How many of its layers are sent now.
    pub(crate) fn layers_sent(&self) -> usize {
        self.inner
            .layers
            .iter()
            .filter(|l| l.sent.load(Ordering::Relaxed))
            .count()
    }
}

/// The next packet of stream `out`: `payload` at `timestamp`, numbered on.
fn next_packet(out: &LayerOut, payload: Bytes, timestamp: u32, marker: bool) -> RtpPacket {
    let mut packet = RtpPacket::default();
    packet.header.version = 2;
    packet.header.marker = marker;
    packet.header.timestamp = timestamp;
    packet.header.sequence_number = out.sequence.fetch_add(1, Ordering::Relaxed);
    packet.payload = payload;
    packet
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
    /// Packets that ended a video frame, read (the statistics' frame count).
    frames: Arc<std::sync::atomic::AtomicU64>,
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
            frames: Default::default(),
        }
    }

    /// Video frames read so far (packets that ended one).
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
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
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    if packet.header.marker && self.publication.kind == MediaKind::Video {
                        self.frames.fetch_add(1, Ordering::Relaxed);
                    }
                    return Some(packet);
                }
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

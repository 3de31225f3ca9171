//! Forwarding one published track: a reader task takes each RTP packet the publisher sends and
//! writes it to every subscriber's leg itself, in the same wakeup. Each leg has its own SSRC,
//! the payload type and the header-extension ids negotiated on it (the crate drops packets
//! that carry anything else), so the reader rewrites all three per leg.
//!
//! A write never waits: the reader itself runs the packet through the leg's connection and sends
//! it when that connection is free (`write_rtp_direct`, a `vendor/webrtc` patch); otherwise it
//! hands the packet to the connection's driver if the driver's queue has room and drops it for
//! that leg if not, so one slow subscriber cannot hold up the others (a receiver recovers with
//! NACKs and key-frame requests, as after any loss).
//!
//! Each leg numbers its packets itself ([`LegSelector`], `layers.rs`): a leg starts, resumes
//! after a pause or a mute, and goes on after the publisher's new track at a key frame, one
//! number after the last it sent, so its subscriber never sees a jump; while a leg waits for a
//! key frame the reader asks the publisher for one (spaced as the selector says).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use tokio::sync::mpsc;

use super::allocator::Budget;
use super::layers::{Incoming, LegSelector, Verdict};
use super::rates::LayerRates;
use crate::media::RtpPacket;
use crate::model::{RoomId, TrackSource, VideoSize};
use crate::server::hub::io::{ExtensionMap, Layer, MediaFact, MediaId, MediaKey, MediaReport};

/// The round-trip time the key-frame asks are spaced by until the legs measure theirs.
const ASSUMED_RTT_MS: u64 = 100;

/// What forwarding did, for the metrics: each reader adds its counts once per packet (relaxed
/// atomic adds, no lock), whatever the number of legs.
#[derive(Debug, Default)]
pub(crate) struct ForwardCounters {
    /// Packets written to subscribers' legs (one per leg).
    pub(crate) packets: AtomicU64,
    /// Their bytes (RTP payload and fixed header).
    pub(crate) bytes: AtomicU64,
    /// Packets a leg lost because its queue was full (a slow subscriber).
    pub(crate) dropped_queue_full: AtomicU64,
    /// Packets a leg did not get because its subscriber had not yet answered the offer.
    pub(crate) dropped_not_negotiated: AtomicU64,
    /// Packets of muted tracks, forwarded to nobody (the core muted them).
    pub(crate) dropped_muted: AtomicU64,
    /// Packets a leg had already carried (a publisher's resend of a packet that had arrived),
    /// not sent again: the receiver would drop them as replays (one per leg).
    pub(crate) dropped_duplicate: AtomicU64,
    /// Packets of a leg's layer from before its switch to that layer (or too late to send).
    pub(crate) dropped_late: AtomicU64,
}

/// A published track, as subscribers find it.
#[derive(Clone)]
pub(crate) struct Forward {
    /// The room it is published in (legs are added only from the same room).
    pub(crate) room: RoomId,
    /// The publisher's codec; each leg is offered the same one.
    pub(crate) codec: RTCRtpCodec,
    /// The publisher's track, to ask for key frames.
    pub(crate) remote: Arc<dyn TrackRemote>,
    legs: Arc<Mutex<Vec<Leg>>>,
    /// Muted by the core: nothing is forwarded (shared with a replacing track's reader).
    muted: Arc<AtomicBool>,
    counters: Arc<ForwardCounters>,
    /// The track's simulcast streams (rids) in layer order; empty without simulcast.
    rids: Arc<[String]>,
    /// The SSRC of each layer's stream that has arrived (what key-frame requests name).
    layer_ssrcs: Arc<Mutex<Vec<(Layer, u32)>>>,
    /// What each layer costs now (shared with a replacing track's reader).
    rates: Arc<LayerRates>,
    /// Packets expected and received (shared with a replacing track's reader).
    packets: Arc<super::packet_count::PacketCount>,
    /// The audio-level header extension's id on the track's packets, if they carry it.
    audio_level: Option<u8>,
    /// Where the reader reports what it reads of the track (each layer's size).
    reporter: Reporter,
}

/// Reports about one published track, to the core.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub(crate) reports: mpsc::UnboundedSender<MediaReport>,
    pub(crate) from: MediaKey,
    pub(crate) source: TrackSource,
}

impl Reporter {
    fn send(&self, fact: MediaFact) {
        let _ = self.reports.send(MediaReport {
            from: self.from.clone(),
            fact,
        });
    }
}

/// One subscriber's copy of the track.
struct Leg {
    subscriber: MediaId,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    /// Known once the subscriber has answered an offer that carries the leg.
    payload_type: Option<u8>,
    /// The publisher's header extensions this leg carries, under its own ids.
    extensions: ExtensionMap,
    /// Paused at the subscriber's request (kept negotiated).
    paused: bool,
    /// The simulcast layer the core chose for it.
    layer: Layer,
    /// How far up its receiver's bandwidth lets it go (`None`: not limited).
    budget: Option<Budget>,
    /// Which packets it forwards, and their numbers on it.
    selector: LegSelector,
    /// Packets forwarded on it.
    forwarded: u64,
    /// The numbers it carried and never carried (what its publisher lost before the server).
    gaps: super::gap_log::GapLog,
}

impl Forward {
    /// Starts forwarding `remote`; the reader task ends when the track does (or is aborted).
    pub(crate) fn start(
        room: RoomId,
        codec: RTCRtpCodec,
        remote: Arc<dyn TrackRemote>,
        counters: Arc<ForwardCounters>,
        rids: Vec<String>,
        audio_level: Option<u8>,
        reporter: Reporter,
    ) -> (Self, JoinHandle<()>) {
        let forward = Forward {
            room,
            codec,
            remote,
            legs: Arc::new(Mutex::new(Vec::new())),
            muted: Arc::new(AtomicBool::new(false)),
            counters,
            rids: rids.into(),
            layer_ssrcs: Arc::default(),
            rates: Arc::default(),
            packets: Arc::default(),
            audio_level,
            reporter,
        };
        forward.begin()
    }

    /// Starts forwarding `remote` to the legs of `old`, which it replaces (the publisher sent the
    /// source again on a new track): its subscribers keep receiving without a new negotiation.
    pub(crate) fn replace(
        old: &Forward,
        remote: Arc<dyn TrackRemote>,
        rids: Vec<String>,
        audio_level: Option<u8>,
    ) -> (Self, JoinHandle<()>) {
        // New numbers from the publisher: each leg goes on from its next key frame.
        for leg in lock(&old.legs).iter_mut() {
            leg.selector.source_changed();
        }
        Forward {
            remote,
            rids: rids.into(),
            layer_ssrcs: Arc::default(),
            audio_level,
            ..old.clone()
        }
        .begin()
    }

    fn begin(self) -> (Self, JoinHandle<()>) {
        let reader = tokio::spawn(
            Reader {
                vp8: self.codec.mime_type.eq_ignore_ascii_case("video/vp8"),
                streams: Vec::new(),
                sequences: Vec::new(),
                layers: Vec::new(),
                level: self
                    .audio_level
                    .map(|id| (id, super::audio_level::LevelMeter::default())),
                forward: self.clone(),
            }
            .run(),
        );
        (self, reader)
    }

    /// Adds a subscriber's leg; packets flow once its payload type is set.
    pub(crate) fn add_leg(&self, subscriber: MediaId, track: Arc<TrackLocalStaticRTP>, ssrc: u32) {
        let mut legs = lock(&self.legs);
        legs.retain(|leg| leg.subscriber != subscriber);
        legs.push(Leg {
            subscriber,
            track,
            ssrc,
            payload_type: None,
            extensions: ExtensionMap::default(),
            paused: false,
            layer: 0,
            budget: None,
            selector: LegSelector::new(self.codec.clock_rate, Some(0)),
            forwarded: 0,
            gaps: Default::default(),
        });
    }

    /// Starts a subscriber's leg with what was negotiated on it: its payload type and which
    /// header extensions it carries under which ids.
    pub(crate) fn start_leg(
        &self,
        subscriber: MediaId,
        payload_type: u8,
        extensions: ExtensionMap,
    ) {
        if let Some(leg) = lock(&self.legs)
            .iter_mut()
            .find(|leg| leg.subscriber == subscriber)
        {
            leg.payload_type = Some(payload_type);
            leg.extensions = extensions;
        }
    }

    /// Pauses or resumes a subscriber's leg; returns whether it was paused before.
    pub(crate) fn set_paused(&self, subscriber: MediaId, paused: bool) -> bool {
        let muted = self.muted.load(Ordering::Relaxed);
        self.with_leg(subscriber, |leg| {
            let was = std::mem::replace(&mut leg.paused, paused);
            leg.retarget(muted, false);
            was
        })
        .unwrap_or(false)
    }

    /// Has a subscriber's leg forward simulcast layer `layer` (from its next key frame).
    pub(crate) fn set_layer(&self, subscriber: MediaId, layer: Layer) {
        let muted = self.muted.load(Ordering::Relaxed);
        self.with_leg(subscriber, |leg| {
            leg.layer = layer;
            leg.retarget(muted, false);
        });
    }

    /// Caps `subscriber`'s leg at what its bandwidth allows: up from the next key frame of the
    /// layer it moves to, down at once (the layer above stops; see
    /// [`LegSelector::set_target_at_once`]).
    pub(crate) fn set_budget(&self, subscriber: MediaId, budget: Budget) {
        let muted = self.muted.load(Ordering::Relaxed);
        self.with_leg(subscriber, |leg| {
            leg.budget = Some(budget);
            leg.retarget(muted, true);
        });
    }

    /// The layer the core chose for `subscriber`'s leg.
    pub(crate) fn layer_of(&self, subscriber: MediaId) -> Option<Layer> {
        self.with_leg(subscriber, |leg| leg.layer)
    }

    /// Of `subscriber`'s leg, if its SSRC is `ssrc`: how many numbers up to `seq` it never
    /// carried (see `gap_log.rs`).
    pub(crate) fn skipped_through(&self, subscriber: MediaId, ssrc: u32, seq: u16) -> Option<u64> {
        lock(&self.legs)
            .iter()
            .find(|leg| leg.subscriber == subscriber && leg.ssrc == ssrc)
            .map(|leg| leg.gaps.skipped_through(seq))
    }

    /// Each leg's subscriber, the layer it forwards now, and the packets it forwarded.
    pub(crate) fn legs_view(&self) -> Vec<(MediaId, Option<Layer>, u64)> {
        lock(&self.legs)
            .iter()
            .map(|leg| (leg.subscriber, leg.selector.forwarding(), leg.forwarded))
            .collect()
    }

    /// Packets of the track expected and received since it started (muted ones not counted).
    pub(crate) fn packets(&self) -> (u64, u64) {
        self.packets.read()
    }

    /// Each layer's rate now, in bits per second.
    pub(crate) fn rates(&self, now: std::time::Instant) -> [u64; super::rates::LAYERS] {
        self.rates.rates(now)
    }

    /// The SSRC to ask for a key frame of what `subscriber`'s leg forwards: its layer's
    /// stream (`None` without simulcast: the track's only stream; or when the layer's stream has
    /// not arrived).
    pub(crate) fn keyframe_ssrc(&self, subscriber: MediaId) -> Option<u32> {
        let layer = self.with_leg(subscriber, |leg| leg.selector.forwarding())??;
        self.ssrc_of(layer)
    }

    fn ssrc_of(&self, layer: Layer) -> Option<u32> {
        lock(&self.layer_ssrcs)
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, ssrc)| *ssrc)
    }

    /// How many simulcast layers the track has (0 without simulcast).
    pub(crate) fn layers(&self) -> usize {
        self.rids.len().min(super::rates::LAYERS)
    }

    /// Whether the track is sent with simulcast.
    pub(crate) fn simulcast(&self) -> bool {
        !self.rids.is_empty()
    }

    fn with_leg<R>(&self, subscriber: MediaId, f: impl FnOnce(&mut Leg) -> R) -> Option<R> {
        lock(&self.legs)
            .iter_mut()
            .find(|leg| leg.subscriber == subscriber)
            .map(f)
    }

    /// Mutes or unmutes the track for every leg, present and future (an unmuted leg goes on
    /// from a key frame, numbered on).
    pub(crate) fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
        for leg in lock(&self.legs).iter_mut() {
            leg.retarget(muted, false);
        }
    }

    /// Removes a subscriber's leg.
    pub(crate) fn remove_leg(&self, subscriber: MediaId) {
        lock(&self.legs).retain(|leg| leg.subscriber != subscriber);
    }
}

impl Leg {
    /// Tells the selector what the leg forwards now: its layer within its budget, or nothing
    /// while paused, muted, or without the bandwidth for any layer. `at_once`: a step down stops
    /// the layer above now rather than at the lower layer's key frame.
    fn retarget(&mut self, muted: bool, at_once: bool) {
        let target = match self.budget {
            _ if muted || self.paused => None,
            None => Some(self.layer),
            Some(Budget::UpTo(cap)) => Some(self.layer.min(cap)),
            Some(Budget::Paused) => None,
        };
        if at_once {
            self.selector.set_target_at_once(target);
        } else {
            self.selector.set_target(target);
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An RTP header without extensions, counted with each payload for the layers' rates.
const RTP_HEADER_BYTES: usize = 12;

/// Most simulcast streams (SSRCs) a reader tells apart; packets of others are dropped.
const MAX_STREAMS: usize = 8;

/// How often at most a layer's new size is reported (a publisher cannot flood the core by
/// changing sizes on every key frame).
const SIZE_REPORT_EVERY_MS: u64 = 500;

/// A layer with no packet for this long, while another layer's packets arrive, has stopped
/// (the publisher's encoder dropped it, or was asked to).
const LAYER_STOPPED_AFTER_MS: u64 = 1_000;

/// What the reader knows of one layer.
#[derive(Clone, Copy, Debug, Default)]
struct LayerSeen {
    /// The size last reported and when (`None`: none since the layer started or stopped).
    reported: Option<((u16, u16), u64)>,
    /// The size its key frames had, kept when it stops: a layer that comes back (a publisher
    /// sending it again after dynacast paused it) is reported at once with it, without
    /// waiting for a key frame nobody would ask for.
    known: Option<(u16, u16)>,
    /// When its last packet came.
    last_ms: u64,
}

/// The task that reads a published track and writes each packet to the legs.
struct Reader {
    /// VP8: key frames and their sizes are read from the payload (any audio packet starts
    /// cleanly).
    vp8: bool,
    /// Each SSRC the track arrived on, with its layer (`None`: a stream that is no layer).
    streams: Vec<(u32, Option<Layer>)>,
    /// Each layer's stream's sequence numbers, by SSRC (what its packets make expected).
    sequences: Vec<(u32, super::packet_count::Sequence)>,
    /// Per layer of a simulcast track: what was reported of it, and when it was last seen.
    layers: Vec<LayerSeen>,
    /// A microphone whose packets carry their level: the extension's id, and its windows.
    level: Option<(u8, super::audio_level::LevelMeter)>,
    forward: Forward,
}

impl Reader {
    async fn run(mut self) {
        let started = tokio::time::Instant::now();
        let remote = self.forward.remote.clone();
        while let Some(event) = remote.poll().await {
            match event {
                TrackRemoteEvent::OnRtpPacket(_) if self.forward.muted.load(Ordering::Relaxed) => {
                    let counters = &self.forward.counters;
                    counters.dropped_muted.fetch_add(1, Ordering::Relaxed);
                }
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    let at_ms = started.elapsed().as_millis() as u64;
                    if let Some((id, meter)) = &mut self.level
                        && let Some(level) = packet
                            .header
                            .get_extension(*id)
                            .and_then(|e| super::audio_level::level_of(&e))
                        && let Some(level_dbov) = meter.packet(at_ms, level)
                    {
                        self.forward.reporter.send(MediaFact::AudioLevel {
                            source: self.forward.reporter.source,
                            level_dbov,
                        });
                    }
                    let Some(layer) = self.layer_of(packet.header.ssrc).await else {
                        continue;
                    };
                    let (keyframe, size) = if self.vp8 {
                        super::vp8::parse(&packet.payload)
                            .map_or((false, None), |info| (info.keyframe, info.size))
                    } else {
                        (true, None)
                    };
                    self.seen(layer, size, at_ms);
                    self.count(packet.header.ssrc, packet.header.sequence_number);
                    self.forward
                        .rates
                        .add(layer, packet.payload.len() + RTP_HEADER_BYTES);
                    let incoming = Incoming {
                        layer,
                        seq: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        keyframe,
                        at_ms,
                    };
                    let asks = write_legs(&self.forward, packet, &incoming);
                    for layer in 0..8 {
                        if asks & (1 << layer) != 0 {
                            self.ask_keyframe(layer);
                        }
                    }
                }
                TrackRemoteEvent::OnOpen(init) => {
                    if let Some(rid) = init.rid {
                        self.learn(init.ssrc, &rid);
                    }
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
    }

    /// The layer of the stream `ssrc`: 0 without simulcast, else by its rid (asked of the
    /// track the first time a stream is seen).
    async fn layer_of(&mut self, ssrc: u32) -> Option<Layer> {
        if self.forward.rids.is_empty() {
            return Some(0);
        }
        if let Some((_, layer)) = self.streams.iter().find(|(s, _)| *s == ssrc) {
            return *layer;
        }
        let rid = self.forward.remote.rid(ssrc).await.unwrap_or_default();
        self.learn(ssrc, &rid)
    }

    /// Stream `ssrc` carries the stream named `rid`.
    fn learn(&mut self, ssrc: u32, rid: &str) -> Option<Layer> {
        let layer = self
            .forward
            .rids
            .iter()
            .position(|r| r == rid)
            .map(|i| i as Layer);
        if let Some(known) = self.streams.iter_mut().find(|(s, _)| *s == ssrc) {
            known.1 = layer;
        } else if self.streams.len() < MAX_STREAMS {
            self.streams.push((ssrc, layer));
        }
        if let Some(layer) = layer {
            let mut ssrcs = lock(&self.forward.layer_ssrcs);
            ssrcs.retain(|(l, _)| *l != layer);
            ssrcs.push((layer, ssrc));
        }
        layer
    }

    /// A packet of `layer` came (a key frame showing `size`, if that is known): a new size is
    /// reported (at most every [`SIZE_REPORT_EVERY_MS`]), and so are layers that stopped.
    /// Counts a packet of stream `ssrc` (see `packet_count.rs`).
    fn count(&mut self, ssrc: u32, seq: u16) {
        let i = match self.sequences.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            // A track has a stream per layer; a publisher inventing more is not counted.
            None if self.sequences.len() >= super::rates::LAYERS => return,
            None => {
                self.sequences.push((ssrc, Default::default()));
                self.sequences.len() - 1
            }
        };
        let expected = self.sequences[i].1.advance(seq);
        self.forward.packets.add(expected);
    }

    fn seen(&mut self, layer: Layer, size: Option<(u16, u16)>, at_ms: u64) {
        let slot = usize::from(layer);
        if self.layers.len() <= slot {
            self.layers.resize(slot + 1, LayerSeen::default());
        }
        self.layers[slot].last_ms = at_ms;
        let report = |layer: usize, size: Option<(u16, u16)>| MediaFact::LayerSize {
            source: self.forward.reporter.source,
            layer: layer as Layer,
            size: size.map(|(w, h)| VideoSize::new(u32::from(w), u32::from(h))),
        };
        for (other, seen) in self.layers.iter_mut().enumerate() {
            if other != slot
                && seen.reported.is_some()
                && at_ms.saturating_sub(seen.last_ms) >= LAYER_STOPPED_AFTER_MS
            {
                seen.reported = None;
                self.forward.reporter.send(report(other, None));
            }
        }
        let seen = &mut self.layers[slot];
        let Some(size) = size.or(seen.known.filter(|_| seen.reported.is_none())) else {
            return;
        };
        seen.known = Some(size);
        if let Some((last, at)) = seen.reported
            && (last == size || at_ms.saturating_sub(at) < SIZE_REPORT_EVERY_MS)
        {
            return;
        }
        seen.reported = Some((size, at_ms));
        self.forward.reporter.send(report(slot, Some(size)));
    }

    /// Asks the publisher for a key frame of `layer` (of its only stream without simulcast). The
    /// ask goes out on a task of its own: the reader never waits on the publisher's connection
    /// (its queue may be full), or every leg would lose packets meanwhile.
    fn ask_keyframe(&self, layer: Layer) {
        let ssrc = self.forward.ssrc_of(layer);
        // A layer whose stream has not arrived yet: nothing to ask.
        if self.forward.simulcast() && ssrc.is_none() {
            return;
        }
        let remote = self.forward.remote.clone();
        tokio::spawn(async move { super::actor::request_keyframe(&remote, ssrc).await });
    }
}

/// Writes `packet` to `leg` with its numbers on it; false when the leg's driver queue is full
/// (or the leg is being rebound) and the leg loses the packet.
fn send(leg: &Leg, mut packet: RtpPacket, seq: u16, timestamp: u32) -> bool {
    let Some(payload_type) = leg.payload_type else {
        return false;
    };
    packet.header.ssrc = leg.ssrc;
    packet.header.payload_type = payload_type;
    packet.header.sequence_number = seq;
    packet.header.timestamp = timestamp;
    super::extensions::rewrite(&mut packet.header, &leg.extensions);
    // Written, encrypted and sent from this task when the leg's connection is free (no hop to
    // its driver); through the driver's queue otherwise.
    let Err(packet) = leg.track.write_rtp_direct(packet) else {
        return true;
    };
    if leg.track.write_rtp(packet).now_or_never().is_none() {
        tracing::trace!(
            subscriber = leg.subscriber,
            "forwarding queue full; packet dropped"
        );
        return false;
    }
    true
}

/// Writes one packet to every flowing leg (the last one gets the packet itself, no copy), each
/// with the numbers its selector gives. Returns the layers (a bit each) whose key frame a leg
/// waits for and the publisher is to be asked for now.
fn write_legs(forward: &Forward, packet: RtpPacket, incoming: &Incoming) -> u8 {
    let counters = &forward.counters;
    let mut legs = lock(&forward.legs);
    let size = packet.payload.len() as u64 + 12;
    let (mut written, mut full, mut duplicates, mut late) = (0u64, 0u64, 0u64, 0u64);
    let waiting = legs.iter().filter(|leg| leg.payload_type.is_none()).count() as u64;
    let mut asks = 0u8;
    // A leg's send waits until the next one is known, so the last leg sent to gets the packet
    // itself and the others a clone (no list of sends per packet).
    let mut pending: Option<(usize, u16, u32)> = None;
    for i in 0..legs.len() {
        let leg = &mut legs[i];
        if leg.payload_type.is_none() {
            continue;
        }
        let verdict = leg.selector.packet(incoming);
        if let Some(layer) = leg.selector.keyframe_wanted(incoming.at_ms, ASSUMED_RTT_MS) {
            asks |= 1u8.checked_shl(u32::from(layer)).unwrap_or(0);
        }
        let Verdict::Forward { seq, timestamp } = verdict else {
            if verdict == Verdict::Drop(super::layers::Dropped::BeforeSwitch) {
                late += 1;
            }
            continue;
        };
        if !leg.gaps.admit(seq) {
            duplicates += 1;
            continue;
        }
        if let Some((j, seq, timestamp)) = pending.replace((i, seq, timestamp)) {
            if send(&legs[j], packet.clone(), seq, timestamp) {
                legs[j].forwarded += 1;
                written += 1;
            } else {
                full += 1;
            }
        }
    }
    if let Some((j, seq, timestamp)) = pending {
        if send(&legs[j], packet, seq, timestamp) {
            legs[j].forwarded += 1;
            written += 1;
        } else {
            full += 1;
        }
    }
    if late > 0 {
        counters.dropped_late.fetch_add(late, Ordering::Relaxed);
    }
    if duplicates > 0 {
        counters
            .dropped_duplicate
            .fetch_add(duplicates, Ordering::Relaxed);
    }
    drop(legs);
    if written > 0 {
        counters.packets.fetch_add(written, Ordering::Relaxed);
        counters.bytes.fetch_add(written * size, Ordering::Relaxed);
    }
    if full > 0 {
        counters
            .dropped_queue_full
            .fetch_add(full, Ordering::Relaxed);
    }
    if waiting > 0 {
        counters
            .dropped_not_negotiated
            .fetch_add(waiting, Ordering::Relaxed);
    }
    asks
}

//! Forwarding one published track: a reader task takes each RTP packet the publisher sends and
//! writes it to every subscriber's leg itself, in the same wakeup. Each leg has its own SSRC,
//! the payload type and the header-extension ids negotiated on it (the crate drops packets
//! that carry anything else), so the reader rewrites all three per leg.
//!
//! A write never waits: it hands the packet to the leg's peer-connection driver if the driver's
//! queue has room and drops it for that leg otherwise, so one slow subscriber cannot hold up the
//! others (a receiver recovers with NACKs and key-frame requests, as after any loss).
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

use super::layers::{Incoming, LegSelector, Verdict};
use crate::media::RtpPacket;
use crate::model::RoomId;
use crate::server::hub::io::{ExtensionMap, MediaId};

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
    /// Which packets it forwards, and their numbers on it.
    selector: LegSelector,
}

impl Forward {
    /// Starts forwarding `remote`; the reader task ends when the track does (or is aborted).
    pub(crate) fn start(
        room: RoomId,
        codec: RTCRtpCodec,
        remote: Arc<dyn TrackRemote>,
        counters: Arc<ForwardCounters>,
    ) -> (Self, JoinHandle<()>) {
        let forward = Forward {
            room,
            codec,
            remote,
            legs: Arc::new(Mutex::new(Vec::new())),
            muted: Arc::new(AtomicBool::new(false)),
            counters,
        };
        forward.begin()
    }

    /// Starts forwarding `remote` to the legs of `old`, which it replaces (the publisher sent the
    /// source again on a new track): its subscribers keep receiving without a new negotiation.
    pub(crate) fn replace(old: &Forward, remote: Arc<dyn TrackRemote>) -> (Self, JoinHandle<()>) {
        // New numbers from the publisher: each leg goes on from its next key frame.
        for leg in lock(&old.legs).iter_mut() {
            leg.selector.source_changed();
        }
        Forward {
            remote,
            ..old.clone()
        }
        .begin()
    }

    fn begin(self) -> (Self, JoinHandle<()>) {
        let reader = tokio::spawn(read(
            self.remote.clone(),
            self.legs.clone(),
            self.muted.clone(),
            self.counters.clone(),
            Reading {
                vp8: self.codec.mime_type.eq_ignore_ascii_case("video/vp8"),
            },
        ));
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
            selector: LegSelector::new(self.codec.clock_rate, Some(0)),
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
        lock(&self.legs)
            .iter_mut()
            .find(|leg| leg.subscriber == subscriber)
            .map(|leg| {
                leg.selector.set_target((!paused && !muted).then_some(0));
                std::mem::replace(&mut leg.paused, paused)
            })
            .unwrap_or(false)
    }

    /// Mutes or unmutes the track for every leg, present and future (an unmuted leg goes on
    /// from a key frame, numbered on).
    pub(crate) fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
        for leg in lock(&self.legs).iter_mut() {
            leg.selector
                .set_target((!muted && !leg.paused).then_some(0));
        }
    }

    /// Removes a subscriber's leg.
    pub(crate) fn remove_leg(&self, subscriber: MediaId) {
        lock(&self.legs).retain(|leg| leg.subscriber != subscriber);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the reader knows of the stream it reads.
#[derive(Clone, Copy)]
struct Reading {
    /// VP8: key frames are read from the payload descriptor (any audio packet starts cleanly).
    vp8: bool,
}

async fn read(
    remote: Arc<dyn TrackRemote>,
    legs: Arc<Mutex<Vec<Leg>>>,
    muted: Arc<AtomicBool>,
    counters: Arc<ForwardCounters>,
    reading: Reading,
) {
    let started = tokio::time::Instant::now();
    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(_) if muted.load(Ordering::Relaxed) => {
                counters.dropped_muted.fetch_add(1, Ordering::Relaxed);
            }
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let at_ms = started.elapsed().as_millis() as u64;
                if write_legs(&legs, packet, &counters, reading, at_ms) {
                    super::request_keyframe(&remote).await;
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
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
/// with the numbers its selector gives. True when a leg waits for a key frame and the
/// publisher is to be asked for one now.
fn write_legs(
    legs: &Mutex<Vec<Leg>>,
    packet: RtpPacket,
    counters: &ForwardCounters,
    reading: Reading,
    at_ms: u64,
) -> bool {
    let mut legs = lock(legs);
    let size = packet.payload.len() as u64 + 12;
    let (mut written, mut full) = (0u64, 0u64);
    let waiting = legs.iter().filter(|leg| leg.payload_type.is_none()).count() as u64;
    let incoming = Incoming {
        layer: 0,
        seq: packet.header.sequence_number,
        timestamp: packet.header.timestamp,
        keyframe: !reading.vp8
            || super::vp8::parse(&packet.payload).is_some_and(|info| info.keyframe),
        at_ms,
    };
    let mut ask = false;
    // A leg's send waits until the next one is known, so the last leg sent to gets the packet
    // itself and the others a clone (no list of sends per packet).
    let mut pending: Option<(usize, u16, u32)> = None;
    for i in 0..legs.len() {
        let leg = &mut legs[i];
        if leg.payload_type.is_none() {
            continue;
        }
        let verdict = leg.selector.packet(&incoming);
        ask |= leg
            .selector
            .keyframe_wanted(at_ms, ASSUMED_RTT_MS)
            .is_some();
        if let Verdict::Forward { seq, timestamp } = verdict
            && let Some((j, seq, timestamp)) = pending.replace((i, seq, timestamp))
        {
            if send(&legs[j], packet.clone(), seq, timestamp) {
                written += 1;
            } else {
                full += 1;
            }
        }
    }
    if let Some((j, seq, timestamp)) = pending {
        if send(&legs[j], packet, seq, timestamp) {
            written += 1;
        } else {
            full += 1;
        }
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
    ask
}

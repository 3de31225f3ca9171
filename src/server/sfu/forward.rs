//! Forwarding one published track: a reader task takes each RTP packet the publisher sends and
//! writes it to every subscriber's leg itself, in the same wakeup. Each leg has its own SSRC,
//! the payload type and the header-extension ids negotiated on it (the crate drops packets
//! that carry anything else), so the reader rewrites all three per leg.
//!
//! A write never waits: it hands the packet to the leg's peer-connection driver if the driver's
//! queue has room and drops it for that leg otherwise, so one slow subscriber cannot hold up the
//! others (a receiver recovers with NACKs and key-frame requests, as after any loss).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::media::RtpPacket;
use crate::model::RoomId;
use crate::server::hub::io::{ExtensionMap, MediaId};

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
        lock(&self.legs)
            .iter_mut()
            .find(|leg| leg.subscriber == subscriber)
            .map(|leg| std::mem::replace(&mut leg.paused, paused))
            .unwrap_or(false)
    }

    /// Mutes or unmutes the track for every leg, present and future.
    pub(crate) fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    /// Removes a subscriber's leg.
    pub(crate) fn remove_leg(&self, subscriber: MediaId) {
        lock(&self.legs).retain(|leg| leg.subscriber != subscriber);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn read(
    remote: Arc<dyn TrackRemote>,
    legs: Arc<Mutex<Vec<Leg>>>,
    muted: Arc<AtomicBool>,
    counters: Arc<ForwardCounters>,
) {
    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(_) if muted.load(Ordering::Relaxed) => {
                counters.dropped_muted.fetch_add(1, Ordering::Relaxed);
            }
            TrackRemoteEvent::OnRtpPacket(packet) => write_legs(&legs, packet, &counters),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Writes one packet to every flowing leg (the last one gets the packet itself, no copy).
fn write_legs(legs: &Mutex<Vec<Leg>>, packet: RtpPacket, counters: &ForwardCounters) {
    let legs = lock(legs);
    let size = packet.payload.len() as u64 + 12;
    let (mut written, mut full) = (0u64, 0u64);
    let waiting = legs.iter().filter(|leg| leg.payload_type.is_none()).count() as u64;
    let mut flowing = legs
        .iter()
        .filter_map(|leg| Some((leg, leg.payload_type.filter(|_| !leg.paused)?)))
        .peekable();
    let mut packet = Some(packet);
    while let Some((leg, payload_type)) = flowing.next() {
        let mut copy = if flowing.peek().is_some() {
            packet.clone().expect("kept until the last leg")
        } else {
            packet.take().expect("kept until the last leg")
        };
        copy.header.ssrc = leg.ssrc;
        copy.header.payload_type = payload_type;
        super::extensions::rewrite(&mut copy.header, &leg.extensions);
        // Not ready at once: the leg's driver queue is full (or the leg is being rebound);
        // this leg loses this packet.
        if leg.track.write_rtp(copy).now_or_never().is_none() {
            full += 1;
            tracing::trace!(
                subscriber = leg.subscriber,
                "forwarding queue full; packet dropped"
            );
        } else {
            written += 1;
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
}

//! What a receiver that estimates its own bandwidth needs from a sending connection: an
//! interceptor that stamps each packet of such a receiver's streams with its send time (the
//! abs-send-time header extension, which receive-side estimators measure delay with) and reads
//! the receiver's estimate back (RTCP REMB).
//!
//! Browsers negotiate transport-wide feedback, and the connection's own estimator (GCC) works
//! from that; but some receivers (aiortc) only send REMB, and only when packets carry
//! abs-send-time. Streams negotiated with transport-wide feedback are not stamped (they need no
//! second clock), so this costs browsers nothing but an `a=extmap` line.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::sansio::Protocol;

/// Where in the chain it goes: before the key-frame interceptor, which drops the RTCP it does
/// not deliver.
pub(crate) const SLOT: usize = 13_000;

/// The header extension's URI.
pub(crate) const ABS_SEND_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// The receiver's latest REMB estimate, in bits per second (0: none yet), shared with the
/// connection's owner.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReceiverEstimate(Arc<AtomicU64>);

impl ReceiverEstimate {
    /// The latest estimate, if the receiver sent one.
    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&bps| bps > 0)
    }
}

/// The abs-send-time value of `elapsed` seconds: 6.18 fixed point, 24 bits, big-endian (it
/// wraps every 64 s; receivers only use differences).
fn abs_send_time(elapsed: std::time::Duration) -> [u8; 3] {
    let value = (elapsed.as_nanos() << 18) / 1_000_000_000;
    let bytes = (value as u32 & 0x00ff_ffff).to_be_bytes();
    [bytes[1], bytes[2], bytes[3]]
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Remb {
    estimate: ReceiverEstimate,
    /// The streams to stamp: SSRC → the extension's id on them.
    stamped: HashMap<u32, u8>,
    /// The clock origin of the stamps.
    started: Option<Instant>,
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl Remb {
    /// An interceptor whose readings go to `estimate`.
    pub(crate) fn new(estimate: ReceiverEstimate) -> Self {
        Remb {
            estimate,
            ..Remb::default()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Remb {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(remb) = packet
                    .as_any()
                    .downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                {
                    let bps = if remb.bitrate.is_finite() {
                        remb.bitrate.max(1.0) as u64
                    } else {
                        u64::MAX
                    };
                    self.estimate.0.store(bps, Ordering::Relaxed);
                }
            }
        }
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if !self.stamped.is_empty()
            && let Packet::Rtp(packet) = &mut msg.message.packet
            && let Some(&id) = self.stamped.get(&packet.header.ssrc)
        {
            let started = *self.started.get_or_insert(msg.now);
            let stamp = abs_send_time(msg.now.saturating_duration_since(started));
            // A packet whose extensions cannot take one more goes unstamped.
            let _ = packet
                .header
                .set_extension(id, Bytes::copy_from_slice(&stamp));
        }
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }
}

impl Interceptor for Remb {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let transport_wide = info.rtcp_feedback.iter().any(|fb| fb.typ == "transport-cc");
        let id = info
            .rtp_header_extensions
            .iter()
            .find(|e| e.uri == ABS_SEND_TIME_URI)
            .map(|e| e.id);
        if let (false, Some(id)) = (transport_wide, id)
            && let Ok(id) = u8::try_from(id)
        {
            self.stamped.insert(info.ssrc, id);
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.stamped.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn send_times_are_six_point_eighteen_seconds_in_24_bits() {
        assert_eq!(abs_send_time(Duration::ZERO), [0, 0, 0]);
        // One second is 1 << 18; half a second 1 << 17.
        assert_eq!(abs_send_time(Duration::from_secs(1)), [0x04, 0x00, 0x00]);
        assert_eq!(
            abs_send_time(Duration::from_millis(500)),
            [0x02, 0x00, 0x00]
        );
        // 64 s wraps to 0.
        assert_eq!(abs_send_time(Duration::from_secs(64)), [0, 0, 0]);
        assert_eq!(abs_send_time(Duration::from_secs(65)), [0x04, 0x00, 0x00]);
    }
}

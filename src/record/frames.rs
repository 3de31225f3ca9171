//! From RTP packets to media frames, without decoding: VP8 frames are reassembled from their
//! packets (RFC 7741), Opus packets are frames already (RFC 7587). Each frame gets a time on
//! the recording's timeline: the arrival of the track's first packet, plus its RTP timestamp's
//! distance from that packet's. Sans-IO: the caller says when each packet arrived.

use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

use crate::media::RtpPacket;

/// A whole frame of one track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Milliseconds on the recording's timeline.
    pub(crate) at_ms: u64,
    /// A VP8 key frame (audio frames are never key frames here).
    pub(crate) keyframe: bool,
    /// The encoded frame.
    pub(crate) data: Vec<u8>,
}

/// The codec a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Vp8,
    Opus,
}

impl Codec {
    fn clock_rate(self) -> u64 {
        match self {
            Codec::Vp8 => 90_000,
            Codec::Opus => 48_000,
        }
    }
}

/// Turns one track's packets into frames.
#[derive(Debug)]
pub(crate) struct FrameAssembler {
    codec: Codec,
    /// The first packet's arrival (timeline ms) and RTP timestamp, extended.
    anchor: Option<(u64, i64)>,
    /// The last RTP timestamp seen, extended past wrap-arounds.
    last_ts: i64,
    /// The next expected sequence number.
    next_seq: Option<u16>,
    /// The frame being put together: its RTP timestamp and bytes so far.
    partial: Option<(i64, Vec<u8>)>,
    /// A packet was lost since the last key frame: frames are dropped until the next one.
    broken: bool,
    /// Frames dropped (incomplete, or waiting for a key frame).
    pub(crate) dropped: u64,
}

impl FrameAssembler {
    pub(crate) fn new(codec: Codec) -> Self {
        FrameAssembler {
            codec,
            anchor: None,
            last_ts: 0,
            next_seq: None,
            partial: None,
            // Video starts at a key frame.
            broken: codec == Codec::Vp8,
            dropped: 0,
        }
    }

    /// Takes a packet that arrived at `arrival_ms` on the timeline; returns the frame it
    /// completes, if any.
    pub(crate) fn push(&mut self, packet: &RtpPacket, arrival_ms: u64) -> Option<Frame> {
        if let Some(next) = self.next_seq
            && (packet.header.sequence_number.wrapping_sub(next) as i16) < 0
        {
            // A repeat, or a packet later than the ones after it: already counted as lost.
            return None;
        }
        let ts = self.extend(packet.header.timestamp);
        let (anchor_ms, anchor_ts) = *self.anchor.get_or_insert((arrival_ms, ts));
        let at = |ts: i64| {
            let delta = (ts - anchor_ts).max(0) as u64;
            anchor_ms + delta * 1000 / self.codec.clock_rate()
        };
        let seq = packet.header.sequence_number;
        let lost = self.next_seq.is_some_and(|next| next != seq);
        self.next_seq = Some(seq.wrapping_add(1));
        match self.codec {
            Codec::Opus => {
                if packet.payload.is_empty() {
                    return None;
                }
                Some(Frame {
                    at_ms: at(ts),
                    keyframe: false,
                    data: packet.payload.to_vec(),
                })
            }
            Codec::Vp8 => {
                if lost {
                    self.broken = true;
                    if self.partial.take().is_some() {
                        self.dropped += 1;
                    }
                }
                let mut depacketizer = Vp8Packet::default();
                let Ok(part) = depacketizer.depacketize(&packet.payload) else {
                    self.broken = true;
                    return None;
                };
                let starts = depacketizer.s == 1 && depacketizer.pid == 0;
                if starts {
                    if self.partial.take().is_some() {
                        // A frame that never saw its marker.
                        self.dropped += 1;
                    }
                    self.partial = Some((ts, Vec::new()));
                }
                let (frame_ts, bytes) = self.partial.as_mut()?;
                if *frame_ts != ts {
                    self.partial = None;
                    self.dropped += 1;
                    return None;
                }
                bytes.extend_from_slice(&part);
                if !packet.header.marker {
                    return None;
                }
                let (frame_ts, data) = self.partial.take()?;
                // Bit 0 of a VP8 frame's first byte is 0 for a key frame.
                let keyframe = data.first().is_some_and(|b| b & 1 == 0);
                if keyframe {
                    self.broken = false;
                }
                if self.broken {
                    self.dropped += 1;
                    return None;
                }
                Some(Frame {
                    at_ms: at(frame_ts),
                    keyframe,
                    data,
                })
            }
        }
    }

    /// Whether video frames are being dropped until the next key frame (ask the publisher for
    /// one).
    pub(crate) fn needs_keyframe(&self) -> bool {
        self.codec == Codec::Vp8 && self.broken
    }

    /// Extends a 32-bit RTP timestamp past wrap-arounds (to the nearest of its aliases).
    fn extend(&mut self, ts: u32) -> i64 {
        let extended = if self.anchor.is_none() {
            i64::from(ts)
        } else {
            let last = self.last_ts;
            let delta = i64::from(ts.wrapping_sub(last as u32) as i32);
            last + delta
        };
        self.last_ts = extended;
        extended
    }
}

/// The width and height a VP8 key frame announces (RFC 6386, 9.1).
pub(crate) fn vp8_size(keyframe: &[u8]) -> Option<(u32, u32)> {
    if keyframe.len() < 10 || keyframe[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([keyframe[6], keyframe[7]]) & 0x3fff;
    let height = u16::from_le_bytes([keyframe[8], keyframe[9]]) & 0x3fff;
    Some((u32::from(width), u32::from(height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.payload = payload.to_vec().into();
        p
    }

    /// A VP8 payload descriptor (S bit as given, partition 0) and the bytes.
    fn vp8(start: bool, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(bytes);
        v
    }

    const KEY: [u8; 10] = [0x00, 0, 0, 0x9d, 0x01, 0x2a, 160, 0, 120, 0];

    #[test]
    fn vp8_frames_are_reassembled_from_a_key_frame_on() {
        let mut a = FrameAssembler::new(Codec::Vp8);
        // A delta frame first: dropped (no key frame yet).
        assert_eq!(
            a.push(&packet(1, 0, true, &vp8(true, &[1, 0, 0, 0])), 100),
            None
        );
        // A key frame in two packets.
        assert_eq!(
            a.push(&packet(2, 3000, false, &vp8(true, &KEY[..5])), 133),
            None
        );
        let f = a
            .push(&packet(3, 3000, true, &vp8(false, &KEY[5..])), 134)
            .unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, KEY);
        assert_eq!(vp8_size(&f.data), Some((160, 120)));
        // The track's anchor is its first packet: 3,000 ticks later is 33 ms later.
        assert_eq!(f.at_ms, 133);
        // A lost packet drops frames until the next key frame.
        assert_eq!(
            a.push(&packet(5, 6000, true, &vp8(true, &[1, 0, 0, 0])), 166),
            None
        );
        assert_eq!(
            a.push(&packet(6, 9000, true, &vp8(true, &[1, 0, 0, 0])), 200),
            None
        );
        let f = a
            .push(&packet(7, 12000, true, &vp8(true, &KEY)), 233)
            .unwrap();
        assert_eq!(f.at_ms, 100 + 12000 / 90);
        assert_eq!(a.dropped, 3);
        // A repeated packet is ignored, not taken for a loss.
        assert_eq!(a.push(&packet(7, 12000, true, &vp8(true, &KEY)), 240), None);
        assert!(!a.needs_keyframe());
        assert!(
            a.push(&packet(8, 15000, true, &vp8(true, &[1, 0, 0, 0])), 266)
                .is_some()
        );
    }

    #[test]
    fn opus_packets_are_frames_and_timestamps_wrap() {
        let mut a = FrameAssembler::new(Codec::Opus);
        let f = a
            .push(&packet(1, u32::MAX - 959, false, &[0xF8]), 10)
            .unwrap();
        assert_eq!(f.at_ms, 10);
        let f = a.push(&packet(2, 0, false, &[0xF8]), 30).unwrap();
        assert_eq!(f.at_ms, 30);
        assert!(a.push(&packet(3, 960, false, &[]), 50).is_none());
    }
}

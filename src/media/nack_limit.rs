//! An interceptor that keeps retransmissions from swamping a congested link: it thins the
//! receiver's NACKs before the `rtc` crate's NACK responder, which resends every packet asked
//! for, every time it is asked for. A receiver behind a congested link loses many packets and
//! asks for each again every round trip; measured on a 300 kbit/s link, the unthinned
//! responder sent 32 Mbit/s of retransmissions, all lost, which kept the bandwidth estimate at
//! its floor and starved audio. Here a packet is passed on at most once per second, and at most
//! [`MAX_PER_SECOND`] a second in all (about 2 Mbit/s of 1,200-byte packets), and not at all
//! once it was first sent more than [`MAX_AGE`] ago: a retransmission that late only adds to
//! the queue it was lost in (measured on the same link: a receiver stepped down from the full
//! layer kept asking for the full layer's lost packets, and their resends held the link at
//! twice its rate for as long as the test ran). The rest is left to key-frame requests and the
//! bandwidth allocation, which moves the receiver to a layer its link carries. (The same bound
//! on age is used by mediasoup for video: 2 s; here 1 s, as a frame waiting that long for a
//! packet is already frozen.)

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;

/// Where in the chain it goes: on the way in, before the NACK responder (4,000).
pub(crate) const SLOT: usize = 3_500;

/// How long after passing a request for a packet another request for it is dropped.
const RESEND_EVERY: Duration = Duration::from_secs(1);

/// Most retransmission requests passed on per second, for the whole connection.
pub(crate) const MAX_PER_SECOND: usize = 200;

/// A packet first sent longer ago than this is not sent again.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// How many recent packets of each stream the limiter remembers the first send of (a power of
/// two; a packet older than that many is too old to send again).
const SENT_WINDOW: usize = 1_024;

/// When each of a stream's recent packets was first sent: slot `seq % SENT_WINDOW` holds the
/// sequence number and milliseconds since the limiter started (0: empty; 8 KB per stream).
struct SentLog(Box<[(u16, u32)]>);

impl SentLog {
    fn new() -> Self {
        SentLog(vec![(0, 0); SENT_WINDOW].into_boxed_slice())
    }

    fn index(seq: u16) -> usize {
        usize::from(seq) % SENT_WINDOW
    }

    /// `seq` went out at `ms`; a resend (the same number again) keeps its first time.
    fn sent(&mut self, seq: u16, ms: u32) {
        let slot = &mut self.0[Self::index(seq)];
        if slot.0 != seq || slot.1 == 0 {
            *slot = (seq, ms);
        }
    }

    /// When `seq` was first sent, if it is among the stream's recent packets.
    fn first_sent(&self, seq: u16) -> Option<u32> {
        let (at_seq, ms) = self.0[Self::index(seq)];
        (at_seq == seq && ms != 0).then_some(ms)
    }
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct NackLimiter {
    /// The limiter's clock origin (for [`SentLog`]'s milliseconds).
    started: Option<Instant>,
    /// Each local stream that answers NACKs, by SSRC.
    sent: HashMap<u32, SentLog>,
    /// Requests passed on in the last [`RESEND_EVERY`], oldest first, and when.
    passed: VecDeque<(Instant, u32, u16)>,
    /// The same, for lookups: (SSRC, sequence number) → when.
    index: HashMap<(u32, u16), Instant>,
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl NackLimiter {
    /// Milliseconds since the limiter started, at `now`, plus one (0 marks an empty slot).
    fn ms(&mut self, now: Instant) -> u32 {
        let started = *self.started.get_or_insert(now);
        (now.saturating_duration_since(started).as_millis() as u32).wrapping_add(1)
    }

    /// Forgets requests older than [`RESEND_EVERY`].
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, ssrc, seq)) = self.passed.front() {
            if now.saturating_duration_since(at) < RESEND_EVERY {
                break;
            }
            self.passed.pop_front();
            if self.index.get(&(ssrc, seq)) == Some(&at) {
                self.index.remove(&(ssrc, seq));
            }
        }
    }

    /// The part of `nack` to pass on now (`None`: nothing).
    fn thin(&mut self, now: Instant, nack: &TransportLayerNack) -> Option<TransportLayerNack> {
        let now_ms = self.ms(now);
        let max_age = MAX_AGE.as_millis() as u32;
        let mut keep = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let fresh = self
                    .sent
                    .get(&nack.media_ssrc)
                    .and_then(|log| log.first_sent(seq))
                    .is_some_and(|at| now_ms.wrapping_sub(at) <= max_age);
                if !fresh
                    || self.index.contains_key(&(nack.media_ssrc, seq))
                    || self.passed.len() >= MAX_PER_SECOND
                {
                    continue;
                }
                self.index.insert((nack.media_ssrc, seq), now);
                self.passed.push_back((now, nack.media_ssrc, seq));
                keep.push(seq);
            }
        }
        (!keep.is_empty()).then(|| TransportLayerNack {
            sender_ssrc: nack.sender_ssrc,
            media_ssrc: nack.media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(&keep),
        })
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackLimiter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets
                .iter()
                .any(|p| p.as_any().is::<TransportLayerNack>())
        {
            self.expire(msg.now);
            let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
            for packet in packets {
                match packet.as_any().downcast_ref::<TransportLayerNack>() {
                    Some(nack) => {
                        if let Some(thinned) = self.thin(msg.now, nack) {
                            kept.push(Box::new(thinned));
                        }
                    }
                    None => kept.push(packet.clone()),
                }
            }
            msg.message.packet = Packet::Rtcp(kept);
        }
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet
            && !self.sent.is_empty()
        {
            let ms = self.ms(msg.now);
            if let Some(log) = self.sent.get_mut(&packet.header.ssrc) {
                log.sent(packet.header.sequence_number, ms);
            }
        }
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }
}

impl Interceptor for NackLimiter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        // The streams the NACK responder answers for (the same test as its own).
        if info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty())
        {
            self.sent.insert(info.ssrc, SentLog::new());
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.sent.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(ssrc: u32, seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        }
    }

    fn asked(n: Option<TransportLayerNack>) -> Vec<u16> {
        n.map_or_else(Vec::new, |n| {
            n.nacks.iter().flat_map(|p| p.packet_list()).collect()
        })
    }

    /// A limiter whose streams `ssrcs` sent packets `seqs` at `at`.
    fn sent(ssrcs: &[u32], seqs: std::ops::Range<u16>, at: Instant) -> NackLimiter {
        let mut limiter = NackLimiter::default();
        let ms = limiter.ms(at);
        for &ssrc in ssrcs {
            let mut log = SentLog::new();
            for seq in seqs.clone() {
                log.sent(seq, ms);
            }
            limiter.sent.insert(ssrc, log);
        }
        limiter
    }

    #[test]
    fn a_packet_is_asked_for_at_most_once_a_second_and_the_total_is_capped() {
        let t0 = Instant::now();
        let mut limiter = sent(&[7, 8, 9], 0..1_024, t0);
        assert_eq!(
            asked(limiter.thin(t0, &nack(7, &[10, 11, 12]))),
            [10, 11, 12]
        );
        // Asked again within the second: only the new one; another stream is apart.
        assert_eq!(asked(limiter.thin(t0, &nack(7, &[11, 13]))), [13]);
        assert_eq!(asked(limiter.thin(t0, &nack(8, &[11]))), [11]);
        // A second later (and no older than MAX_AGE), again.
        limiter.expire(t0 + RESEND_EVERY);
        assert_eq!(
            asked(limiter.thin(t0 + RESEND_EVERY, &nack(7, &[11]))),
            [11]
        );
        // The cap: a flood is cut at MAX_PER_SECOND within a second.
        let mut limiter = sent(&[9], 0..1_024, t0);
        let flood: Vec<u16> = (100..100 + 2 * MAX_PER_SECOND as u16).collect();
        assert_eq!(
            asked(limiter.thin(t0, &nack(9, &flood))).len(),
            MAX_PER_SECOND
        );
        assert_eq!(limiter.thin(t0, &nack(9, &[900])), None);
    }

    #[test]
    fn a_packet_sent_too_long_ago_or_never_is_not_asked_for() {
        let t0 = Instant::now();
        let mut limiter = sent(&[7], 0..100, t0);
        // A resend of packet 5 later does not make it younger.
        let later = t0 + MAX_AGE / 2;
        let ms = limiter.ms(later);
        let log = limiter.sent.get_mut(&7).unwrap();
        log.sent(5, ms);
        log.sent(200, ms);
        let late = t0 + MAX_AGE + Duration::from_millis(1);
        assert_eq!(asked(limiter.thin(late, &nack(7, &[5, 6, 200]))), [200]);
        // Never sent, of another stream, or pushed out of the window by newer packets.
        assert_eq!(limiter.thin(late, &nack(7, &[300])), None);
        assert_eq!(limiter.thin(late, &nack(8, &[200])), None);
        let ms = limiter.ms(late);
        let log = limiter.sent.get_mut(&7).unwrap();
        log.sent(301, ms);
        log.sent(301 + SENT_WINDOW as u16, ms);
        assert_eq!(limiter.thin(late, &nack(7, &[301])), None);
    }
}

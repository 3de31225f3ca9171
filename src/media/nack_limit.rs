//! An interceptor that keeps retransmissions from swamping a congested link: it thins the
//! receiver's NACKs before the `rtc` crate's NACK responder, which resends every packet asked
//! for, every time it is asked for. A receiver behind a congested link loses many packets and
//! asks for each again every round trip; measured on a 300 kbit/s link, the unthinned
//! responder sent 32 Mbit/s of retransmissions, all lost, which kept the bandwidth estimate at
//! its floor and starved audio. Here a packet is passed on at most once per second, and at most
//! [`MAX_PER_SECOND`] a second in all (about 2 Mbit/s of 1,200-byte packets); the rest is left
//! to key-frame requests and the bandwidth allocation, which moves the receiver to a layer its
//! link carries.

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

/// See the module docs.
#[derive(Default)]
pub(crate) struct NackLimiter {
    /// Requests passed on in the last [`RESEND_EVERY`], oldest first, and when.
    passed: VecDeque<(Instant, u32, u16)>,
    /// The same, for lookups: (SSRC, sequence number) → when.
    index: HashMap<(u32, u16), Instant>,
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl NackLimiter {
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
        let mut keep = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                if self.index.contains_key(&(nack.media_ssrc, seq))
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
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.outbound.pop_front()
    }
}

impl Interceptor for NackLimiter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
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

    #[test]
    fn a_packet_is_asked_for_at_most_once_a_second_and_the_total_is_capped() {
        let mut limiter = NackLimiter::default();
        let t0 = Instant::now();
        assert_eq!(
            asked(limiter.thin(t0, &nack(7, &[10, 11, 12]))),
            [10, 11, 12]
        );
        // Asked again within the second: only the new one; another stream is apart.
        assert_eq!(asked(limiter.thin(t0, &nack(7, &[11, 13]))), [13]);
        assert_eq!(asked(limiter.thin(t0, &nack(8, &[11]))), [11]);
        // A second later, again.
        limiter.expire(t0 + RESEND_EVERY);
        assert_eq!(
            asked(limiter.thin(t0 + RESEND_EVERY, &nack(7, &[11]))),
            [11]
        );
        // The cap: a flood is cut at MAX_PER_SECOND within a second.
        let t1 = t0 + RESEND_EVERY * 3;
        limiter.expire(t1);
        let flood: Vec<u16> = (1000..1000 + 2 * MAX_PER_SECOND as u16).collect();
        assert_eq!(
            asked(limiter.thin(t1, &nack(9, &flood))).len(),
            MAX_PER_SECOND
        );
        assert_eq!(limiter.thin(t1, &nack(9, &[5000])), None);
    }
}

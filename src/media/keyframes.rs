//! An interceptor that lets key-frame requests (PLI, FIR) through to the application.
//!
//! Inbound RTCP normally ends inside the `webrtc` crate's interceptor chain: reports and NACKs are
//! consumed there. Key-frame requests are different — only whoever produces the video can answer
//! them (for the SFU: by asking the publisher) — so this interceptor, placed last, marks them for
//! delivery to the track and drops the rest of the inbound RTCP it sees (the interceptors before it
//! have already acted on that), but for the bandwidth estimate some of it carries.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;

/// Where in the chain it goes: after the default interceptors.
pub(crate) const SLOT: usize = 14_000;

/// Whether an RTCP packet asks for a key frame.
pub(crate) fn asks_for_keyframe(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The stream (SSRC) an RTCP packet asks a key frame of, if it asks for one (a FIR names its
/// first entry's).
pub(crate) fn keyframe_asked_of(packet: &dyn rtc::rtcp::Packet) -> Option<u32> {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return Some(pli.media_ssrc);
    }
    let fir = any.downcast_ref::<FullIntraRequest>()?;
    Some(fir.fir.first().map_or(fir.media_ssrc, |entry| entry.ssrc))
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| asks_for_keyframe(p.as_ref()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                // A bandwidth estimate riding on the packet (send-side congestion control) goes
                // on, on an empty carrier, to the connection's statistics.
                if msg
                    .message
                    .attributes
                    .iter()
                    .any(|a| matches!(a, Attribute::TargetBitrateChanged { .. }))
                {
                    msg.message.packet = Packet::Rtcp(Vec::new());
                    self.inbound.push_back(msg);
                }
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
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

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

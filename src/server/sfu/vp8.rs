//! What a forwarder needs to know of a VP8 packet, read from its payload descriptor (RFC 7741,
//! section 4.2) and the first bytes of the VP8 payload header: whether it starts a key frame,
//! its picture id, `TL0PICIDX` and temporal layer when the publisher sends them, and a key
//! frame's size. Pure and
//! allocation-free; a payload too short for what its flags announce reads as `None`.

/// The descriptor's fields a forwarder uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vp8Info {
    /// The packet starts a key frame (the first packet of partition 0 of an intra frame).
    pub(crate) keyframe: bool,
    /// The first packet of a VP8 partition (`S`), partition 0 (`PID == 0`).
    pub(crate) starts_frame: bool,
    /// The picture id and whether it is the 15-bit form.
    pub(crate) picture_id: Option<(u16, bool)>,
    /// The temporal-layer-zero picture index.
    pub(crate) tl0_pic_idx: Option<u8>,
    /// The temporal layer id.
    pub(crate) temporal_id: Option<u8>,
    /// A key frame's size in pixels (width, height), from its frame header when the packet
    /// carries it whole.
    pub(crate) size: Option<(u16, u16)>,
}

/// Reads the descriptor at the start of a VP8 RTP payload; `None` when it is cut short.
pub(crate) fn parse(payload: &[u8]) -> Option<Vp8Info> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    let mut at = 1;
    let mut info = Vp8Info::default();
    if extended {
        let flags = *payload.get(at)?;
        at += 1;
        let (has_picture_id, has_tl0, has_tid, has_key_idx) = (
            flags & 0x80 != 0,
            flags & 0x40 != 0,
            flags & 0x20 != 0,
            flags & 0x10 != 0,
        );
        if has_picture_id {
            let high = *payload.get(at)?;
            if high & 0x80 != 0 {
                let low = *payload.get(at + 1)?;
                info.picture_id = Some((u16::from(high & 0x7f) << 8 | u16::from(low), true));
                at += 2;
            } else {
                info.picture_id = Some((u16::from(high), false));
                at += 1;
            }
        }
        if has_tl0 {
            info.tl0_pic_idx = Some(*payload.get(at)?);
            at += 1;
        }
        if has_tid || has_key_idx {
            let byte = *payload.get(at)?;
            if has_tid {
                info.temporal_id = Some(byte >> 6);
            }
            at += 1;
        }
    }
    info.starts_frame = start && partition == 0;
    if info.starts_frame {
        // The VP8 payload header's first bit `P` is 0 for a key frame (RFC 6386, 9.1).
        let header = *payload.get(at)?;
        info.keyframe = header & 0x01 == 0;
        // A key frame's header: the 3-byte frame tag, the start code 9d 01 2a, then width and
        // height as 14-bit little-endian numbers (the top two bits are the scaling).
        if info.keyframe
            && let Some(h) = payload.get(at + 3..at + 10)
            && h[..3] == [0x9d, 0x01, 0x2a]
        {
            let side = |lo: u8, hi: u8| u16::from_le_bytes([lo, hi]) & 0x3fff;
            info.size = Some((side(h[3], h[4]), side(h[5], h[6])));
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_frames_and_the_extended_fields() {
        // X=1, S=1, PID=0; I, L, T; 15-bit picture id 0x1234; TL0PICIDX 7; TID 2; key frame.
        let key = [0x90, 0xe0, 0x80 | 0x12, 0x34, 7, 0x80, 0x00];
        assert_eq!(
            parse(&key),
            Some(Vp8Info {
                keyframe: true,
                starts_frame: true,
                picture_id: Some((0x1234, true)),
                tl0_pic_idx: Some(7),
                temporal_id: Some(2),
                size: None,
            })
        );
        // A key frame with its frame header: 640×360 (and a scaling bit on the height).
        let sized = [
            0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x41,
        ];
        assert_eq!(parse(&sized).unwrap().size, Some((640, 360)));
        // The frame header cut short: a key frame without a size.
        assert_eq!(parse(&sized[..9]).unwrap().size, None);
        // A delta frame with a 7-bit picture id.
        let delta = [0x90, 0x80, 0x05, 0x01];
        let info = parse(&delta).unwrap();
        assert!(!info.keyframe && info.starts_frame);
        assert_eq!(info.picture_id, Some((5, false)));
        // A later packet of a key frame does not start it.
        assert!(!parse(&[0x80, 0x80, 0x05, 0x00]).unwrap().keyframe);
        // The shortest descriptor (what the test publishers send) starting a key frame.
        assert!(parse(&[0x10, 0x00]).unwrap().keyframe);
    }

    #[test]
    fn a_payload_cut_short_is_none_never_a_panic() {
        for payload in [
            &[][..],
            &[0x90],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x85],
            &[0x10],
        ] {
            assert_eq!(parse(payload), None, "{payload:?}");
        }
    }
}

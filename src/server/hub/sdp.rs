//! What the core reads in session descriptions: each media line's kind, mid, direction, track
//! id, codecs and header extensions, and the candidates a description already carries. A line-based reader of the
//! parts of SDP (RFC 8866) that jrtc's decisions need; the media shell's stack does the rest.
//! Pure and total: any text gives a [`Description`] (possibly empty), never a panic.

use crate::model::MediaKind;

/// Most header extensions read from one media line (browsers offer about a dozen); the rest are
/// ignored, so a description cannot make the core keep much.
const MAX_EXTENSIONS: usize = 32;

/// Most simulcast streams one line may send (the seed's four layers).
pub(crate) const MAX_RIDS: usize = 4;

/// How a media line sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `a=sendrecv` (the default when none is given).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// Whether the side that wrote the description sends on this line.
    pub(crate) fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// One codec of a media line: its payload type and encoding name (`VP8`, `opus`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Codec {
    pub payload_type: u8,
    pub name: String,
}

/// One `m=` line and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaLine {
    /// `audio`, `video` or anything else (`application` for data channels).
    pub kind: Option<MediaKind>,
    /// Port 0 without `a=bundle-only`: the line is rejected or stopped. (A line with port 0
    /// and `a=bundle-only` is not rejected: it shares the bundle's transport, RFC 8843; a
    /// browser bundling at most one transport marks every line after the first so.)
    pub rejected: bool,
    pub mid: Option<String>,
    pub direction: Direction,
    /// The `a=msid:<stream> <track>` stream id, if any.
    pub stream_id: Option<String>,
    /// The `a=msid:<stream> <track>` track id, if any.
    pub track_id: Option<String>,
    /// In the order of the `m=` line's format list.
    pub codecs: Vec<Codec>,
    /// The RTP header extensions (`a=extmap:<id> <uri>`), as (id, URI).
    pub extensions: Vec<(u8, String)>,
    /// The simulcast streams the line sends (`a=rid:<id> send`), in the order of its
    /// `a=simulcast:send` list when it has one (at most [`MAX_RIDS`] + 1 are kept, so a check
    /// can tell "too many").
    pub rids: Vec<String>,
}

impl MediaLine {
    /// The payload type of the first codec named `name` (case-insensitive).
    pub(crate) fn payload_type_of(&self, name: &str) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.payload_type)
    }
}

/// A session description, as far as the core reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Description {
    pub media: Vec<MediaLine>,
    /// `a=msid-semantic` is present at session level.
    pub msid_semantic: bool,
    /// The `a=candidate:` values (without the `a=` prefix), at any level.
    pub candidates: Vec<String>,
}

impl Description {
    /// Reads `sdp`. Lines it does not know are skipped.
    pub(crate) fn parse(sdp: &str) -> Description {
        let mut description = Description::default();
        // Each line's `a=simulcast` send list, to order its rids by.
        let mut orders: Vec<Vec<String>> = Vec::new();
        for line in sdp.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(m) = line.strip_prefix("m=") {
                description.media.push(media_line(m));
                orders.push(Vec::new());
                continue;
            }
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            if attribute.starts_with("candidate:") {
                description.candidates.push(attribute.to_owned());
                continue;
            }
            let Some(media) = description.media.last_mut() else {
                if attribute.starts_with("msid-semantic") {
                    description.msid_semantic = true;
                }
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            match name {
                "mid" => media.mid = Some(value.to_owned()),
                "sendrecv" => media.direction = Direction::SendRecv,
                "sendonly" => media.direction = Direction::SendOnly,
                "recvonly" => media.direction = Direction::RecvOnly,
                "inactive" => media.direction = Direction::Inactive,
                "bundle-only" => media.rejected = false,
                "extmap" => {
                    // `<id>[/<direction>] <uri> [<attributes>]`
                    let mut parts = value.split_whitespace();
                    let id = parts
                        .next()
                        .and_then(|id| id.split('/').next())
                        .and_then(|id| id.parse::<u8>().ok());
                    if let (Some(id), Some(uri)) = (id, parts.next())
                        && (1..=255).contains(&id)
                        && media.extensions.len() < MAX_EXTENSIONS
                    {
                        media.extensions.push((id, uri.to_owned()));
                    }
                }
                "rid" => {
                    // `<id> send|recv [<restrictions>]`
                    let mut parts = value.split_whitespace();
                    if let (Some(id), Some("send")) = (parts.next(), parts.next())
                        && media.rids.len() <= MAX_RIDS
                        && !media.rids.iter().any(|r| r == id)
                    {
                        media.rids.push(id.to_owned());
                    }
                }
                "simulcast" => {
                    if let Some(order) = orders.last_mut() {
                        *order = simulcast_send_order(value);
                    }
                }
                "msid" => {
                    let mut parts = value.split_whitespace();
                    media.stream_id = parts.next().map(str::to_owned);
                    media.track_id = parts.next().map(str::to_owned);
                }
                "rtpmap" => {
                    let Some((pt, encoding)) = value.split_once(' ') else {
                        continue;
                    };
                    let (Ok(pt), Some(name)) = (pt.parse::<u8>(), encoding.split('/').next())
                    else {
                        continue;
                    };
                    if let Some(codec) = media.codecs.iter_mut().find(|c| c.payload_type == pt) {
                        codec.name = name.to_owned();
                    }
                }
                _ => {}
            }
        }
        for (media, order) in description.media.iter_mut().zip(&orders) {
            media
                .rids
                .sort_by_key(|rid| order.iter().position(|o| o == rid).unwrap_or(usize::MAX));
        }
        description
    }

    /// The line whose mid is `mid`.
    pub(crate) fn line(&self, mid: &str) -> Option<&MediaLine> {
        self.media.iter().find(|m| m.mid.as_deref() == Some(mid))
    }

    /// The first line's mid: the one a bundled transport's candidates belong to.
    pub(crate) fn first_mid(&self) -> Option<&str> {
        self.media.first().and_then(|m| m.mid.as_deref())
    }

    /// Whether the description already carries this candidate (`candidate:…`).
    pub(crate) fn has_candidate(&self, candidate: &str) -> bool {
        let candidate = candidate.strip_prefix("a=").unwrap_or(candidate);
        self.candidates.iter().any(|c| c == candidate)
    }
}

/// `sdp` without its candidate lines (`a=candidate:`, `a=end-of-candidates`), and the
/// candidates it had (without the `a=`), in order.
pub(crate) fn without_candidates(sdp: &str) -> (String, Vec<String>) {
    let mut kept = String::with_capacity(sdp.len());
    let mut candidates = Vec::new();
    for line in sdp.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if let Some(candidate) = bare.strip_prefix("a=") {
            if candidate.starts_with("candidate:") {
                candidates.push(candidate.to_owned());
                continue;
            }
            if candidate == "end-of-candidates" {
                continue;
            }
        }
        kept.push_str(line);
    }
    (kept, candidates)
}

/// `m=<kind> <port> <proto> <fmt> …`
fn media_line(m: &str) -> MediaLine {
    let mut parts = m.split_whitespace();
    let kind = match parts.next() {
        Some("audio") => Some(MediaKind::Audio),
        Some("video") => Some(MediaKind::Video),
        _ => None,
    };
    let rejected = parts.next() == Some("0");
    let _proto = parts.next();
    let codecs = parts
        .filter_map(|pt| pt.parse::<u8>().ok())
        .map(|payload_type| Codec {
            payload_type,
            name: String::new(),
        })
        .collect();
    MediaLine {
        kind,
        rejected,
        mid: None,
        direction: Direction::SendRecv,
        stream_id: None,
        track_id: None,
        codecs,
        extensions: Vec::new(),
        rids: Vec::new(),
    }
}

/// The send list of an `a=simulcast` value (`send q;h;f recv …`), first choice of each
/// alternative, without the paused mark (`~`); at most [`MAX_RIDS`] + 1 entries.
fn simulcast_send_order(value: &str) -> Vec<String> {
    let mut parts = value.split_whitespace();
    while let Some(direction) = parts.next() {
        let list = parts.next().unwrap_or("");
        if direction == "send" {
            return list
                .split(';')
                .filter_map(|alternatives| alternatives.split(',').next())
                .map(|rid| rid.trim_start_matches('~').to_owned())
                .take(MAX_RIDS + 1)
                .collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1\r\na=msid-semantic: WMS *\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=msid:alice camera\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
        a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
        m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn reads_lines_codecs_directions_and_candidates() {
        let d = Description::parse(OFFER);
        assert!(d.msid_semantic);
        assert_eq!(d.media.len(), 2);
        let video = &d.media[0];
        assert_eq!(video.kind, Some(MediaKind::Video));
        assert!(!video.rejected);
        assert_eq!(video.mid.as_deref(), Some("0"));
        assert_eq!(video.direction, Direction::SendOnly);
        assert_eq!(video.track_id.as_deref(), Some("camera"));
        assert_eq!(video.stream_id.as_deref(), Some("alice"));
        assert_eq!(video.payload_type_of("vp8"), Some(96));
        assert_eq!(video.payload_type_of("H264"), Some(102));
        let audio = d.line("1").unwrap();
        assert!(audio.rejected);
        assert_eq!(audio.direction, Direction::RecvOnly);
        assert_eq!(audio.payload_type_of("opus"), Some(111));
        assert_eq!(d.first_mid(), Some("0"));
        assert!(d.has_candidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"));
        assert!(d.has_candidate("a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"));
        assert!(!d.has_candidate("candidate:2 1 udp 1 127.0.0.1 5001 typ host"));
    }

    #[test]
    fn reads_the_simulcast_streams_a_line_sends_in_the_simulcast_order() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
                   a=rid:f send\r\na=rid:x recv\r\na=rid:q send max-width=320\r\na=rid:h send\r\n\
                   a=rid:q send\r\na=simulcast:send q;~h,x;f recv x\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:b send\r\na=rid:a send\r\n";
        let d = Description::parse(sdp);
        assert_eq!(d.media[0].rids, ["q", "h", "f"]);
        // No simulcast list: the order of the rid lines.
        assert_eq!(d.media[1].rids, ["b", "a"]);
        // A long list is cut one past the limit, so a check sees too many.
        let many: String = (0..20).map(|i| format!("a=rid:r{i} send\r\n")).collect();
        let d = Description::parse(&format!("m=video 9 RTP 96\r\n{many}"));
        assert_eq!(d.media[0].rids.len(), MAX_RIDS + 1);
    }

    /// Firefox with max-bundle: lines after the first have port 0 and `a=bundle-only`.
    const BUNDLE_ONLY: &str = "v=0\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:0\r\na=sendrecv\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=extmap:3/sendrecv urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=msid:{s} microphone\r\na=rtpmap:109 opus/48000/2\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=bundle-only\r\na=mid:1\r\na=sendrecv\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:toffset\r\n\
        a=msid:{s} camera\r\na=rtpmap:120 VP8/90000\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=mid:2\r\na=inactive\r\na=rtpmap:120 VP8/90000\r\n";

    #[test]
    fn a_bundle_only_line_is_not_rejected_and_extensions_are_read() {
        let d = Description::parse(BUNDLE_ONLY);
        assert!(!d.media[0].rejected);
        assert!(
            !d.media[1].rejected,
            "bundle-only is not rejected (RFC 8843)"
        );
        assert!(d.media[2].rejected, "port 0 alone is");
        assert_eq!(
            d.media[0].extensions,
            [
                (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_owned()),
                (3, "urn:ietf:params:rtp-hdrext:sdes:mid".to_owned())
            ]
        );
        assert_eq!(
            d.media[1].extensions,
            [(4, "urn:ietf:params:rtp-hdrext:toffset".to_owned())]
        );
        // Bad extmap lines are skipped.
        let d = Description::parse(
            "m=audio 9 X 1\na=extmap:0 a\na=extmap:x b\na=extmap:300 c\na=extmap:2\n",
        );
        assert!(d.media[0].extensions.is_empty());
    }

    #[test]
    fn candidates_are_taken_out_and_listed() {
        let (kept, candidates) = without_candidates(OFFER);
        assert_eq!(
            candidates,
            ["candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"]
        );
        assert!(!kept.contains("candidate"));
        assert_eq!(Description::parse(&kept).media.len(), 2);
    }

    #[test]
    fn any_text_reads_without_panic() {
        for text in [
            "",
            "m=",
            "a=rtpmap:",
            "m=video x\na=rtpmap:999 VP8",
            "a=msid:",
            "\u{0}",
        ] {
            let _ = Description::parse(text);
        }
        assert!(Description::parse("garbage").media.is_empty());
    }
}

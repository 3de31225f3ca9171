//! What the media shell changes in session descriptions so that the `webrtc` crate and browsers
//! understand each other. Pure text transforms, each for one known difference.

/// The answer with every media line that the offer does not send on (`inactive`, `recvonly`)
/// made `inactive`: the server only receives on a publishing connection, and the `webrtc`
/// crate answers such a line `recvonly`, which browsers refuse ("incompatible send
/// direction"). A client leaves a line it no longer sends on, or one the server refused,
/// `inactive`.
pub(super) fn inactive_where_not_sent(offer: &str, answer: &str) -> String {
    let sending: Vec<bool> = offer
        .split("\nm=")
        .skip(1)
        .map(|section| {
            !section
                .lines()
                .any(|line| matches!(line.trim_end(), "a=inactive" | "a=recvonly"))
        })
        .collect();
    let mut out = String::with_capacity(answer.len());
    let mut index: Option<usize> = None;
    for line in answer.split_inclusive('\n') {
        if line.starts_with("m=") {
            index = Some(index.map_or(0, |i| i + 1));
        }
        let silent = index.is_some_and(|i| sending.get(i) == Some(&false));
        let direction = matches!(line.trim_end(), "a=sendrecv" | "a=sendonly" | "a=recvonly");
        if silent && direction {
            out.push_str("a=inactive\r\n");
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The first description of a connection lacks `a=msid-semantic` in the `webrtc` crate (later
/// ones have it); standard stacks ignore `a=msid` without it, so it is added.
pub(super) fn with_msid_semantic(sdp: &str) -> String {
    if sdp.contains("a=msid-semantic") {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len() + 26);
    let mut added = false;
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        if !added && line.starts_with("t=") {
            out.push_str("a=msid-semantic: WMS *\r\n");
            added = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{inactive_where_not_sent, with_msid_semantic};

    #[test]
    fn lines_the_offer_does_not_send_on_are_answered_inactive() {
        let offer = "v=0\r\nt=0 0\r\nm=video 9 UDP 96\r\na=mid:0\r\na=inactive\r\n\
                     m=audio 9 UDP 111\r\na=mid:1\r\na=sendonly\r\n\
                     m=video 9 UDP 96\r\na=mid:2\r\na=recvonly\r\n";
        let answer = "v=0\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\nm=video 9 UDP 96\r\na=mid:0\r\na=recvonly\r\n\
                      m=audio 9 UDP 111\r\na=mid:1\r\na=recvonly\r\n\
                      m=video 9 UDP 96\r\na=mid:2\r\na=recvonly\r\n";
        assert_eq!(
            inactive_where_not_sent(offer, answer),
            "v=0\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\nm=video 9 UDP 96\r\na=mid:0\r\na=inactive\r\n\
             m=audio 9 UDP 111\r\na=mid:1\r\na=recvonly\r\n\
             m=video 9 UDP 96\r\na=mid:2\r\na=inactive\r\n"
        );
    }

    #[test]
    fn msid_semantic_is_added_once_after_the_timing_line() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP 96\r\n";
        let fixed = with_msid_semantic(sdp);
        assert_eq!(
            fixed,
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=msid-semantic: WMS *\r\nm=video 9 UDP 96\r\n"
        );
        assert_eq!(with_msid_semantic(&fixed), fixed);
    }
}

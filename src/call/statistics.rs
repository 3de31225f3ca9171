//! [`Call::statistics`]: what the call's two peer connections count of each track (their
//! `get_stats`: packets, bytes, losses and jitter from the receiver reports both ways,
//! retransmission and key-frame requests, the ICE round trip), with the frames the call wrote
//! and read, the room's net and volume statuses, and bitrates since the previous call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rtc::statistics::StatsSelector;
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};
use webrtc::peer_connection::PeerConnection;

use super::Call;
use crate::model::{
    CallStatistics, ConnectionStatistics, MediaConnection, ParticipantStatistics, Publication,
    TrackStatistics,
};

impl Call {
    /// What the call's media did so far, from its peer connections' own counters: each track
    /// it publishes and receives (packets, bytes, bitrate since the previous call of this,
    /// loss, jitter, round trip, frames, key-frame and retransmission requests, simulcast
    /// layers sent), each member of the room (its net and volume status, and what this call
    /// receives of it), and each connection. Empty before any media.
    pub async fn statistics(&self) -> CallStatistics {
        let media = &self.inner.media;
        let [publisher, subscriber] = media
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut stats = CallStatistics::default();
        let me = self.user_id().clone();
        if let Some(pc) = publisher {
            let report = report_of(&pc).await;
            let connection = connection_of(MediaConnection::Publish, &report);
            for (source, track) in media.published() {
                let ssrcs = track.ssrcs();
                let mut t = empty(Publication::new(me.clone(), source), connection.rtt_ms);
                t.frames = (t.kind == crate::model::MediaKind::Video).then(|| track.frames());
                t.layers = (ssrcs.len() > 1).then(|| track.layers_sent() as u8);
                for entry in report.iter() {
                    match entry {
                        RTCStatsReportEntry::OutboundRtp(s)
                            if ssrcs.contains(&s.sent_rtp_stream_stats.rtp_stream_stats.ssrc) =>
                        {
                            t.packets += s.sent_rtp_stream_stats.packets_sent;
                            t.bytes += s.sent_rtp_stream_stats.bytes_sent;
                            t.nacks += u64::from(s.nack_count);
                            t.keyframe_requests += u64::from(s.pli_count + s.fir_count);
                            if s.target_bitrate > 0.0 {
                                t.bandwidth_estimate_bps = Some(s.target_bitrate as u64);
                            }
                        }
                        RTCStatsReportEntry::RemoteInboundRtp(s)
                            if ssrcs
                                .contains(&s.received_rtp_stream_stats.rtp_stream_stats.ssrc)
                                && s.round_trip_time_measurements > 0 =>
                        {
                            let received = &s.received_rtp_stream_stats;
                            t.packets_lost += received.packets_reported_as_lost;
                            raise(&mut t.jitter_ms, jitter_ms(t.kind, received.jitter));
                        }
                        _ => {}
                    }
                }
                t.loss_percent = percent(t.packets_lost, t.packets);
                stats.published.push(t);
            }
            stats.connections.push(connection);
        }
        if let Some(pc) = subscriber {
            let report = report_of(&pc).await;
            let connection = connection_of(MediaConnection::Subscribe, &report);
            let remote: HashMap<String, crate::RemoteTrack> = self
                .remote_tracks()
                .into_iter()
                .map(|t| (t.publication().id.clone(), t))
                .collect();
            let mut received: HashMap<String, TrackStatistics> = HashMap::new();
            for entry in report.iter() {
                let RTCStatsReportEntry::InboundRtp(s) = entry else {
                    continue;
                };
                // Track ids are `<publication id>#<n>` (docs/protocol.md, Media).
                let id = s
                    .track_identifier
                    .rsplit_once('#')
                    .map_or(s.track_identifier.as_str(), |(id, _)| id);
                let Some(track) = remote.get(id) else {
                    continue;
                };
                let t = received
                    .entry(id.to_owned())
                    .or_insert_with(|| empty(track.publication().clone(), connection.rtt_ms));
                let r = &s.received_rtp_stream_stats;
                t.packets += r.packets_received;
                t.bytes += s.bytes_received;
                t.packets_lost += r.packets_lost.max(0) as u64;
                raise(&mut t.jitter_ms, jitter_ms(t.kind, r.jitter));
                t.nacks += u64::from(s.nack_count);
                t.keyframe_requests += u64::from(s.pli_count + s.fir_count);
                if t.kind == crate::model::MediaKind::Video {
                    t.frames = Some(track.frames());
                }
            }
            let mut received: Vec<TrackStatistics> = received.into_values().collect();
            received.sort_by(|a, b| a.publication.cmp(&b.publication));
            for t in &mut received {
                t.loss_percent = percent(t.packets_lost, t.packets + t.packets_lost);
            }
            stats.received = received;
            stats.connections.push(connection);
        }
        bitrates(media, &mut stats);
        if let Some(room) = self.room() {
            stats.participants = room
                .participants
                .iter()
                .map(|p| {
                    let theirs = stats.received.iter().filter(|t| t.participant == p.user_id);
                    ParticipantStatistics {
                        user_id: p.user_id.clone(),
                        net: p.net,
                        volume: p.volume,
                        tracks: theirs.clone().count(),
                        bitrate_bps: theirs.clone().map(|t| t.bitrate_bps).sum(),
                        packets_lost: theirs.map(|t| t.packets_lost).sum(),
                    }
                })
                .collect();
        }
        stats
    }
}

async fn report_of(pc: &Arc<dyn PeerConnection>) -> RTCStatsReport {
    pc.get_stats(Instant::now(), StatsSelector::None).await
}

/// A track's statistics with nothing counted yet.
fn empty(publication: Publication, rtt_ms: Option<f64>) -> TrackStatistics {
    TrackStatistics {
        kind: publication.kind,
        source: publication.source,
        participant: publication.participant,
        publication: publication.id,
        packets: 0,
        bytes: 0,
        bitrate_bps: 0,
        packets_lost: 0,
        loss_percent: 0.0,
        jitter_ms: None,
        rtt_ms,
        frames: None,
        keyframe_requests: 0,
        nacks: 0,
        layers: None,
        bandwidth_estimate_bps: None,
    }
}

/// A connection's statistics: its busiest candidate pair (the one in use).
fn connection_of(connection: MediaConnection, report: &RTCStatsReport) -> ConnectionStatistics {
    let pair = report
        .iter()
        .filter_map(|entry| match entry {
            RTCStatsReportEntry::IceCandidatePair(p) => Some(p),
            _ => None,
        })
        .max_by_key(|p| p.bytes_received + p.bytes_sent);
    let remote = pair.and_then(|pair| {
        report.iter().find_map(|entry| match entry {
            // The crate names a pair's candidate by the candidate's id, and the candidate's
            // statistics by that id with a prefix.
            RTCStatsReportEntry::RemoteCandidate(c)
                if c.stats.id.ends_with(pair.remote_candidate_id.as_str()) =>
            {
                Some(c)
            }
            _ => None,
        })
    });
    ConnectionStatistics {
        connection,
        rtt_ms: pair
            .filter(|p| p.current_round_trip_time > 0.0)
            .map(|p| p.current_round_trip_time * 1_000.0),
        packets_sent: pair.map_or(0, |p| p.packets_sent),
        packets_received: pair.map_or(0, |p| p.packets_received),
        bytes_sent: pair.map_or(0, |p| p.bytes_sent),
        bytes_received: pair.map_or(0, |p| p.bytes_received),
        remote_address: remote.and_then(|c| {
            let ip = c.address.as_deref()?;
            Some(std::net::SocketAddr::new(ip.parse().ok()?, c.port).to_string())
        }),
        protocol: remote.map(|c| c.protocol.to_ascii_lowercase()),
    }
}

/// Fills in each track's bitrate since the call's previous statistics (0 the first time).
fn bitrates(media: &super::media::ClientMedia, stats: &mut CallStatistics) {
    let now = Instant::now();
    let mut last = media.last_bytes.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = HashMap::new();
    let tracks = (stats
        .published
        .iter_mut()
        .map(|t| (MediaConnection::Publish, t)))
    .chain(
        stats
            .received
            .iter_mut()
            .map(|t| (MediaConnection::Subscribe, t)),
    );
    for (connection, t) in tracks {
        let key = (connection, t.publication.clone());
        if let Some((at, bytes)) = last.get(&key) {
            let ms = now.saturating_duration_since(*at).as_millis() as u64;
            if let Some(bps) = (t.bytes.saturating_sub(*bytes) * 8 * 1_000).checked_div(ms) {
                t.bitrate_bps = bps;
            }
        }
        next.insert(key, (now, t.bytes));
    }
    *last = next;
}

/// Jitter in RTP timestamp units as milliseconds (Opus's clock is 48 kHz, VP8's 90 kHz).
fn jitter_ms(kind: crate::model::MediaKind, units: f64) -> f64 {
    match kind {
        crate::model::MediaKind::Audio => units / 48.0,
        crate::model::MediaKind::Video => units / 90.0,
    }
}

/// Keeps the larger of a track's streams' jitters.
fn raise(jitter: &mut Option<f64>, ms: f64) {
    *jitter = Some(jitter.map_or(ms, |j| j.max(ms)));
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

//! The index of a WebM file, kept while it is written and put in the file when it closes:
//! the Cues (one CuePoint per Cluster a player can start decoding at — each Cluster that starts
//! with a video key frame, on the video track; on the audio track, every Cluster of an
//! audio-only file and those of a video file that start while its video is off) and the
//! SeekHead that tells players where the Cues are. The Cues go at the end of the file; the
//! SeekHead goes in the room (a Void) reserved at the start of the Segment, when the
//! destination can seek back. Positions count from the start of the Segment's data, as
//! Matroska wants.

use webm_iterable::matroska_spec::{Master, MatroskaSpec};

/// Bytes reserved for the SeekHead at the start of the Segment (a Void until it is written).
/// The SeekHead takes at most 68 (three entries whose positions take 8 bytes each); what it
/// leaves is a Void again, which needs 2 bytes at least.
pub(crate) const SEEK_HEAD_ROOM: usize = 80;

/// EBML IDs the SeekHead points to.
const INFO_ID: u32 = 0x1549_A966;
const TRACKS_ID: u32 = 0x1654_AE6B;
const CUES_ID: u32 = 0x1C53_BB6B;
const SEEK_HEAD_ID: u32 = 0x114D_9B74;
const SEEK_ID: u32 = 0x4DBB;
const SEEK_ID_ID: u32 = 0x53AB;
const SEEK_POSITION_ID: u32 = 0x53AC;
const VOID_ID: u32 = 0xEC;

/// A file's index as it grows (see the module docs).
#[derive(Debug)]
pub(crate) struct Index {
    /// Where the Info and the Tracks are.
    info: u64,
    tracks: u64,
    /// (time in ms, track, position of the Cluster).
    points: Vec<(u64, u64, u64)>,
}

impl Index {
    /// The index of a file whose Info and Tracks are at `info` and `tracks`.
    pub(crate) fn new(info: u64, tracks: u64) -> Self {
        Index {
            info,
            tracks,
            points: Vec::new(),
        }
    }

    /// A player can start decoding track `track` at the Cluster at `position`, whose time is
    /// `time_ms`.
    pub(crate) fn add(&mut self, time_ms: u64, track: u64, position: u64) {
        self.points.push((time_ms, track, position));
    }

    /// The Cues element, or `None` without a CuePoint (Cues must have one).
    pub(crate) fn cues(&self) -> Option<MatroskaSpec> {
        if self.points.is_empty() {
            return None;
        }
        let points = self
            .points
            .iter()
            .map(|&(time, track, cluster)| {
                MatroskaSpec::CuePoint(Master::Full(vec![
                    MatroskaSpec::CueTime(time),
                    MatroskaSpec::CueTrackPositions(Master::Full(vec![
                        MatroskaSpec::CueTrack(track),
                        MatroskaSpec::CueClusterPosition(cluster),
                    ])),
                ]))
            })
            .collect();
        Some(MatroskaSpec::Cues(Master::Full(points)))
    }

    /// Exactly [`SEEK_HEAD_ROOM`] bytes: a SeekHead pointing to the Info, the Tracks and the
    /// Cues at `cues` (if written), then a Void for the rest.
    pub(crate) fn seek_head(&self, cues: Option<u64>) -> Vec<u8> {
        let mut seeks = Vec::new();
        let entries = [(INFO_ID, Some(self.info)), (TRACKS_ID, Some(self.tracks))];
        for (id, position) in entries.into_iter().chain([(CUES_ID, cues)]) {
            let Some(position) = position else { continue };
            let mut seek = element(SEEK_ID_ID, &id.to_be_bytes());
            seek.extend(element(SEEK_POSITION_ID, &uint(position)));
            seeks.extend(element(SEEK_ID, &seek));
        }
        let mut bytes = element(SEEK_HEAD_ID, &seeks);
        let rest = SEEK_HEAD_ROOM - bytes.len();
        debug_assert!(rest >= 2, "a Void needs two bytes");
        bytes.extend(element(VOID_ID, &vec![0; rest - 2]));
        bytes
    }
}

/// An EBML element: its ID (without leading zero bytes), its size (one byte below 127 bytes of
/// data, eight otherwise), its data.
pub(crate) fn element(id: u32, data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    match u8::try_from(data.len()) {
        Ok(n) if n < 0x7F => out.push(0x80 | n),
        _ => {
            out.push(0x01);
            out.extend_from_slice(&(data.len() as u64).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(data);
    out
}

/// An unsigned integer's big-endian bytes, without leading zeros (one byte at least).
fn uint(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seek_head_fills_its_room_exactly() {
        for (info, tracks, cues) in [
            (80, 140, Some(0)),
            (80, 140, Some(u64::MAX)),
            (80, 140, None),
            (u64::MAX, u64::MAX, Some(u64::MAX)),
        ] {
            let bytes = Index::new(info, tracks).seek_head(cues);
            assert_eq!(bytes.len(), SEEK_HEAD_ROOM);
            assert_eq!(bytes[..4], SEEK_HEAD_ID.to_be_bytes());
        }
        // One entry: Seek { SeekID (4 bytes), SeekPosition }.
        let bytes = Index::new(80, 0x1234).seek_head(None);
        let tracks_entry = [
            0x4D, 0xBB, 0x8C, 0x53, 0xAB, 0x84, 0x16, 0x54, 0xAE, 0x6B, 0x53, 0xAC, 0x82, 0x12,
            0x34,
        ];
        assert!(
            bytes.windows(tracks_entry.len()).any(|w| w == tracks_entry),
            "{bytes:02x?}"
        );
    }

    #[test]
    fn cues_name_the_track_and_each_cluster() {
        let mut index = Index::new(80, 120);
        assert_eq!(index.cues(), None);
        index.add(0, 1, 300);
        index.add(5_000, 2, 9_000);
        let Some(MatroskaSpec::Cues(Master::Full(points))) = index.cues() else {
            panic!("Cues");
        };
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[1],
            MatroskaSpec::CuePoint(Master::Full(vec![
                MatroskaSpec::CueTime(5_000),
                MatroskaSpec::CueTrackPositions(Master::Full(vec![
                    MatroskaSpec::CueTrack(2),
                    MatroskaSpec::CueClusterPosition(9_000),
                ])),
            ]))
        );
        assert_eq!(uint(0), [0]);
        assert_eq!(uint(0x1_0000), [1, 0, 0]);
    }
}

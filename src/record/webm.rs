//! A WebM writer for one participant's tracks (VP8 video, Opus audio), on the pure-Rust
//! `webm-iterable` crate (EBML by tag, no C++ build).
//!
//! The file is written as it goes: the Segment and each Cluster have "unknown size" (as live
//! recorders write them), so every block is in the file as soon as it is written and a file
//! cut short by a crash or a full disk is still read up to its last whole block. A Cluster
//! starts at each video key frame (a player can start there) and after 5 s without one.
//!
//! A file closed normally ([`WebmWriter::finish`]) ends with its Cues: one CuePoint per Cluster
//! that starts with a video key frame (every Cluster of an audio-only file), so a player seeks
//! to the key frame before the time asked and decodes from there. While a video file has no
//! video (the camera muted or stopped for longer than a Cluster spans), its Clusters start
//! with audio and get CuePoints on the audio track, so that a seek into such a stretch starts
//! near the time asked rather than at the last key frame before it. The header has room (Voids)
//! for a SeekHead at the start of the Segment and for the Info's Duration:
//! [`WebmWriter::finish_with_header`] also gives what to write there when the destination can
//! seek back, for players that find the Cues only through the SeekHead (FFmpeg) or need the
//! duration to offer seeking at all (browsers). Until then, and in a file cut short, those
//! rooms are Voids that readers skip.
//!
//! Once a write has failed (a full disk…), the file may end in a torn block: the writer takes
//! nothing more, and closing it writes neither the Cues nor the header, so the file stays a
//! file cut short, which plays up to its last whole block.
//!
//! Opus tracks say their codec delay (the 312-sample pre-skip of the `OpusHead`, 6.5 ms) and
//! their seek pre-roll (80 ms: decoding restarts that long before a seek target, as RFC 7845
//! advises), so players trim the decoder's start-up samples and seek without a glitch.

use std::io::Write;

use thiserror::Error;
use webm_iterable::errors::TagWriterError;
use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};
use webm_iterable::{WebmWriter as TagWriter, WriteOptions};

use super::cues::{Index, SEEK_HEAD_ROOM, element};

/// Milliseconds a Cluster may span: Matroska's advice (5 s at most), well inside the limit of
/// a block's offset (a signed 16-bit number of ms). Without video key frames (an audio-only
/// file), this is also how far apart its CuePoints are; a video file whose last video frame is
/// older than this is without video (its Clusters get CuePoints on the audio track).
const MAX_CLUSTER_SPAN_MS: u64 = 5_000;
/// The Opus pre-skip the `OpusHead` announces, in 48 kHz samples.
const OPUS_PRE_SKIP: u16 = 312;
/// The same, as Matroska's `CodecDelay` (ns): 6.5 ms.
const OPUS_CODEC_DELAY_NS: u64 = OPUS_PRE_SKIP as u64 * 1_000_000_000 / 48_000;
/// Matroska's `SeekPreRoll` for Opus (ns): 80 ms (RFC 7845, 4.6).
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;
/// Bytes reserved for the Info's Duration: its ID (2 bytes), size (1) and a 64-bit float.
const DURATION_ROOM: usize = 11;
/// The Info's ID and size (its content is under 127 bytes): where its first child starts.
const INFO_HEADER: u64 = 5;

/// Why a recording could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Writing to the file failed (a full disk, a size limit, a closed pipe…).
    #[error("writing the recording failed: {0}")]
    Write(#[source] TagWriterError),
    /// Flushing the file failed.
    #[error("flushing the recording failed: {0}")]
    Flush(#[source] std::io::Error),
    /// An earlier write failed: the file ends there and takes nothing more.
    #[error("an earlier write of the recording failed: the file ends there")]
    Failed,
    /// A frame for a track the file does not have.
    #[error("the recording has no {0:?} track")]
    NoSuchTrack(RecordTrack),
    /// A frame older than the last one written (blocks are written in time order).
    #[error("a frame at {at_ms} ms comes after one at {last_ms} ms")]
    OutOfOrder {
        /// The frame's time.
        at_ms: u64,
        /// The last time written.
        last_ms: u64,
    },
}

/// One of the tracks a recording file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordTrack {
    /// VP8 video.
    Video,
    /// Opus audio (48 kHz).
    Audio,
}

/// Writes VP8 and Opus frames into a WebM file as they come (see the module docs).
pub struct WebmWriter<W: Write> {
    tags: TagWriter<Position<W>>,
    video: bool,
    audio: bool,
    /// The open Cluster's time, in ms.
    cluster: Option<u64>,
    last_ms: u64,
    /// The last video frame's time, in ms (0 before the first).
    last_video_ms: u64,
    /// A write failed: the file may end in a torn block, and takes nothing more.
    failed: bool,
    /// Where the Segment's data starts in the file (the index's positions count from there).
    segment: u64,
    /// Where the room for the Duration is in the file.
    duration_room: u64,
    index: Index,
}

/// A write into the header of a file closed normally ([`WebmWriter::finish_with_header`]):
/// `bytes` to write at byte `offset` of the file, over a room (a Void) reserved there when the
/// file started — the SeekHead, for players to find the Cues without reading the whole file,
/// or the Info's Duration. A file left without them is valid and plays the same. Offsets count
/// from the first byte the writer wrote: its destination must start at offset 0 of an empty
/// file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderPatch {
    /// Where the room is, in bytes from the start of the file (the writer's first byte).
    pub offset: u64,
    /// What goes there: exactly as long as the room.
    pub bytes: Vec<u8>,
}

/// Counts the bytes that reach the destination (the positions the index keeps).
struct Position<W> {
    inner: W,
    at: u64,
    /// A write failed: later bytes are dropped, so that none follow a torn block.
    sealed: bool,
}

impl<W: Write> Write for Position<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.sealed {
            return Ok(buf.len());
        }
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for WebmWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebmWriter")
            .field("video", &self.video)
            .field("audio", &self.audio)
            .field("last_ms", &self.last_ms)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<W: Write> WebmWriter<W> {
    /// Starts a file with a VP8 track of `video` (width, height) and/or an Opus track with
    /// `audio_channels` channels; writes its header at once.
    pub fn new(
        dest: W,
        video: Option<(u32, u32)>,
        audio_channels: Option<u8>,
    ) -> Result<Self, RecordError> {
        let mut tags = TagWriter::new(Position {
            inner: dest,
            at: 0,
            sealed: false,
        });
        let write = |tags: &mut TagWriter<Position<W>>, tag: &MatroskaSpec| {
            tags.write(tag).map_err(RecordError::Write)
        };
        write(&mut tags, &ebml_header())?;
        tags.write_advanced(
            &MatroskaSpec::Segment(Master::Start),
            WriteOptions::is_unknown_sized_element(),
        )
        .map_err(RecordError::Write)?;
        // Room for the SeekHead, filled in when the file is closed (if it can be).
        write(&mut tags, &MatroskaSpec::Void(vec![0; SEEK_HEAD_ROOM - 2]))?;
        let segment = tags.get_ref().at - SEEK_HEAD_ROOM as u64;
        let info_at = tags.get_ref().at - segment;
        let info = MatroskaSpec::Info(Master::Full(vec![
            // Room for the Duration, first so that its place is known.
            MatroskaSpec::Void(vec![0; DURATION_ROOM - 2]),
            // Block times in milliseconds.
            MatroskaSpec::TimestampScale(1_000_000),
            MatroskaSpec::MuxingApp("jrtc".into()),
            MatroskaSpec::WritingApp("jrtc".into()),
        ]));
        write(&mut tags, &info)?;
        let tracks_at = tags.get_ref().at - segment;
        write(&mut tags, &tracks(video, audio_channels))?;
        Ok(WebmWriter {
            tags,
            video: video.is_some(),
            audio: audio_channels.is_some(),
            cluster: None,
            last_ms: 0,
            last_video_ms: 0,
            failed: false,
            segment,
            duration_room: segment + info_at + INFO_HEADER,
            index: Index::new(info_at, tracks_at),
        })
    }

    /// Writes one frame of `track` at `at_ms` (ms from the start of the recording; frames in
    /// time order across tracks). `keyframe` for a VP8 key frame (a Cluster starts there).
    /// After a failed write, every frame is refused ([`RecordError::Failed`]).
    pub fn write_frame(
        &mut self,
        track: RecordTrack,
        at_ms: u64,
        keyframe: bool,
        data: &[u8],
    ) -> Result<(), RecordError> {
        let has = match track {
            RecordTrack::Video => self.video,
            RecordTrack::Audio => self.audio,
        };
        if self.failed {
            return Err(RecordError::Failed);
        }
        if !has {
            return Err(RecordError::NoSuchTrack(track));
        }
        if at_ms < self.last_ms {
            return Err(RecordError::OutOfOrder {
                at_ms,
                last_ms: self.last_ms,
            });
        }
        let video_key = track == RecordTrack::Video && keyframe;
        let start = match self.cluster {
            None => true,
            Some(cluster) => video_key || at_ms - cluster > MAX_CLUSTER_SPAN_MS,
        };
        if start {
            // A player starts decoding video at a key frame; audio anywhere, which is where
            // it starts when there is no video to decode (an audio-only file, or video off).
            let video_off = !self.video || at_ms - self.last_video_ms > MAX_CLUSTER_SPAN_MS;
            let cue = match track {
                RecordTrack::Video if keyframe => Some(RecordTrack::Video),
                RecordTrack::Audio if video_off => Some(RecordTrack::Audio),
                _ => None,
            };
            self.start_cluster(at_ms, cue)?;
        }
        let offset = (at_ms - self.cluster.unwrap_or(at_ms)) as i16;
        let keyframe = track == RecordTrack::Audio || keyframe;
        let block = SimpleBlock::new_uncheked(
            data,
            track_number(track),
            offset,
            false,
            None,
            false,
            keyframe,
        );
        self.put(&MatroskaSpec::from(block), false)?;
        self.last_ms = at_ms;
        if track == RecordTrack::Video {
            self.last_video_ms = at_ms;
        }
        Ok(())
    }

    /// Writes `tag` (a Master start of unknown size if `unknown_size`); a failure is the
    /// file's last write: nothing reaches the destination after it.
    fn put(&mut self, tag: &MatroskaSpec, unknown_size: bool) -> Result<(), RecordError> {
        let written = if unknown_size {
            let options = WriteOptions::is_unknown_sized_element();
            self.tags.write_advanced(tag, options)
        } else {
            self.tags.write(tag)
        };
        if written.is_err() {
            self.failed = true;
            self.tags.get_mut().sealed = true;
        }
        written.map_err(RecordError::Write)
    }

    /// Ends the open Cluster and starts one at `at_ms`; `cue`: a player can start decoding
    /// that track there.
    fn start_cluster(&mut self, at_ms: u64, cue: Option<RecordTrack>) -> Result<(), RecordError> {
        if self.cluster.is_some() {
            self.put(&MatroskaSpec::Cluster(Master::End), false)?;
        }
        // Every write so far reached the destination: the Cluster starts here.
        let position = self.tags.get_ref().at - self.segment;
        self.put(&MatroskaSpec::Cluster(Master::Start), true)?;
        self.put(&MatroskaSpec::Timestamp(at_ms), false)?;
        self.cluster = Some(at_ms);
        if let Some(track) = cue {
            self.index.add(at_ms, track_number(track), position);
        }
        Ok(())
    }

    /// Ends the file: writes its Cues after the last Cluster (the unknown-size elements need
    /// nothing more) and returns the destination. The rooms in the header stay Voids: see
    /// [`WebmWriter::finish_with_header`]. After a failed write, it writes nothing.
    pub fn finish(self) -> Result<W, RecordError> {
        self.finish_with_header().map(|(dest, _)| dest)
    }

    /// Ends the file as [`WebmWriter::finish`] does, and returns what to write over the rooms
    /// reserved in its header, if the destination can seek back (a file that can also be left
    /// as it is): the SeekHead, and the Duration if a frame was written.
    ///
    /// After a failed write, nothing is written: the file may end in a torn block, which Cues
    /// after it would not mend (and a SeekHead to them would point into the tear). It stays a
    /// file cut short, without patches.
    pub fn finish_with_header(mut self) -> Result<(W, Vec<HeaderPatch>), RecordError> {
        if self.failed {
            // The destination is sealed: whatever the tag writer still holds is dropped.
            let dest = self.tags.into_inner().map_err(RecordError::Write)?;
            return Ok((dest.inner, Vec::new()));
        }
        let mut patches = Vec::new();
        if self.cluster.take().is_some() {
            self.tags
                .write(&MatroskaSpec::Cluster(Master::End))
                .map_err(RecordError::Write)?;
            // In ms (the TimestampScale): to the last block's time.
            patches.push(HeaderPatch {
                offset: self.duration_room,
                bytes: element(0x4489, &(self.last_ms as f64).to_be_bytes()),
            });
        }
        let cues_at = match self.index.cues() {
            Some(cues) => {
                let at = self.tags.get_ref().at - self.segment;
                self.tags.write(&cues).map_err(RecordError::Write)?;
                Some(at)
            }
            None => None,
        };
        patches.insert(
            0,
            HeaderPatch {
                offset: self.segment,
                bytes: self.index.seek_head(cues_at),
            },
        );
        let dest = self.tags.into_inner().map_err(RecordError::Write)?;
        Ok((dest.inner, patches))
    }
}

fn track_number(track: RecordTrack) -> u64 {
    match track {
        RecordTrack::Video => 1,
        RecordTrack::Audio => 2,
    }
}

/// The EBML header of a WebM file.
fn ebml_header() -> MatroskaSpec {
    MatroskaSpec::Ebml(Master::Full(vec![
        MatroskaSpec::EbmlVersion(1),
        MatroskaSpec::EbmlReadVersion(1),
        MatroskaSpec::EbmlMaxIdLength(4),
        MatroskaSpec::EbmlMaxSizeLength(8),
        MatroskaSpec::DocType("webm".into()),
        MatroskaSpec::DocTypeVersion(4),
        MatroskaSpec::DocTypeReadVersion(2),
    ]))
}

/// The Tracks: VP8 of `video` (width, height), Opus with `audio_channels` channels.
fn tracks(video: Option<(u32, u32)>, audio_channels: Option<u8>) -> MatroskaSpec {
    let mut entries = Vec::new();
    if let Some((width, height)) = video {
        entries.push(MatroskaSpec::TrackEntry(Master::Full(vec![
            MatroskaSpec::TrackNumber(track_number(RecordTrack::Video)),
            MatroskaSpec::TrackUID(track_number(RecordTrack::Video)),
            MatroskaSpec::TrackType(1),
            MatroskaSpec::CodecID("V_VP8".into()),
            MatroskaSpec::Video(Master::Full(vec![
                MatroskaSpec::PixelWidth(u64::from(width)),
                MatroskaSpec::PixelHeight(u64::from(height)),
            ])),
        ])));
    }
    if let Some(channels) = audio_channels {
        entries.push(MatroskaSpec::TrackEntry(Master::Full(vec![
            MatroskaSpec::TrackNumber(track_number(RecordTrack::Audio)),
            MatroskaSpec::TrackUID(track_number(RecordTrack::Audio)),
            MatroskaSpec::TrackType(2),
            MatroskaSpec::CodecID("A_OPUS".into()),
            MatroskaSpec::CodecPrivate(opus_head(channels)),
            MatroskaSpec::CodecDelay(OPUS_CODEC_DELAY_NS),
            MatroskaSpec::SeekPreRoll(OPUS_SEEK_PRE_ROLL_NS),
            MatroskaSpec::Audio(Master::Full(vec![
                MatroskaSpec::SamplingFrequency(48_000.0),
                MatroskaSpec::Channels(u64::from(channels)),
            ])),
        ])));
    }
    MatroskaSpec::Tracks(Master::Full(entries))
}

/// The Opus identification header (RFC 7845, 5.1): Matroska's `CodecPrivate` for `A_OPUS`.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes()); // 6.5 ms at 48 kHz
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0 (mono or stereo)
    head
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use webm_iterable::WebmIterator;

    use super::*;

    /// What a reader finds in a file: positions count from the Segment's data.
    #[derive(Debug, Default)]
    struct Read {
        /// (position, time) of each Cluster, and whether its first block is a key frame.
        clusters: Vec<(u64, u64, bool)>,
        /// (time, track, Cluster position) of each CuePoint.
        cues: Vec<(u64, u64, u64)>,
        /// Where the Cues, the Info and the Tracks are.
        cues_at: Option<u64>,
        info_at: u64,
        tracks_at: u64,
        /// (ID, position) of each SeekHead entry.
        seeks: Vec<(Vec<u8>, u64)>,
        /// The Opus track's CodecDelay and SeekPreRoll.
        opus: (Option<u64>, Option<u64>),
        duration: Option<f64>,
    }

    fn read(bytes: &[u8]) -> Read {
        let mut tags = WebmIterator::new(Cursor::new(bytes), &[]);
        let mut r = Read::default();
        let (mut segment, mut seek_id, mut cue) = (0, Vec::new(), (0, 0));
        let mut first_block = false;
        while let Some(tag) = tags.next() {
            let at = tags.last_emitted_tag_offset() as u64;
            match tag.unwrap() {
                // An unknown-size Segment: its ID and an 8-byte size.
                MatroskaSpec::Segment(Master::Start) => segment = at + 12,
                MatroskaSpec::Info(Master::Start) => r.info_at = at - segment,
                MatroskaSpec::Tracks(Master::Start) => r.tracks_at = at - segment,
                MatroskaSpec::Cues(Master::Start) => r.cues_at = Some(at - segment),
                MatroskaSpec::Cluster(Master::Start) => {
                    r.clusters.push((at - segment, 0, false));
                    first_block = true;
                }
                MatroskaSpec::Timestamp(t) => r.clusters.last_mut().unwrap().1 = t,
                MatroskaSpec::SimpleBlock(data) if first_block => {
                    let block: SimpleBlock = (&data).try_into().unwrap();
                    r.clusters.last_mut().unwrap().2 = block.keyframe && block.track == 1;
                    first_block = false;
                }
                MatroskaSpec::SeekID(id) => seek_id = id,
                MatroskaSpec::SeekPosition(p) => r.seeks.push((seek_id.clone(), p)),
                MatroskaSpec::CueTime(t) => cue.0 = t,
                MatroskaSpec::CueTrack(t) => cue.1 = t,
                MatroskaSpec::CueClusterPosition(p) => r.cues.push((cue.0, cue.1, p)),
                MatroskaSpec::CodecDelay(ns) => r.opus.0 = Some(ns),
                MatroskaSpec::SeekPreRoll(ns) => r.opus.1 = Some(ns),
                MatroskaSpec::Duration(ms) => r.duration = Some(ms),
                _ => {}
            }
        }
        r
    }

    const KEY: [u8; 10] = [0x00, 0, 0, 0x9d, 0x01, 0x2a, 160, 0, 120, 0];
    const DELTA: [u8; 4] = [0x01, 0, 0, 0];

    /// 3 s: video at 10 fps with key frames at 0, 1.2 and 2.4 s; 20 ms audio frames.
    fn record() -> (Vec<u8>, Vec<HeaderPatch>) {
        let mut w = WebmWriter::new(Vec::new(), Some((160, 120)), Some(1)).unwrap();
        for ms in (0..3_000).step_by(20) {
            if ms % 100 == 0 {
                let key = ms % 1_200 == 0;
                let data: &[u8] = if key { &KEY } else { &DELTA };
                w.write_frame(RecordTrack::Video, ms, key, data).unwrap();
            }
            w.write_frame(RecordTrack::Audio, ms, false, &[0xF8])
                .unwrap();
        }
        w.finish_with_header().unwrap()
    }

    #[test]
    fn a_closed_file_has_cues_at_its_key_frames_and_room_for_a_seek_head() {
        let (mut file, patches) = record();
        let before = read(&file);
        // Cues at the end: one per Cluster that starts at a key frame, for the video track.
        let keyed: Vec<_> = before.clusters.iter().filter(|c| c.2).collect();
        assert_eq!(keyed.len(), 3, "{:?}", before.clusters);
        let cues: Vec<_> = keyed.iter().map(|c| (c.1, 1, c.0)).collect();
        assert_eq!(before.cues, cues);
        assert_eq!(
            before.cues.iter().map(|c| c.0).collect::<Vec<_>>(),
            [0, 1_200, 2_400]
        );
        assert!(before.cues_at.unwrap() > before.clusters.last().unwrap().0);
        // The rooms are Voids until the SeekHead and the Duration are written over them.
        assert!(before.seeks.is_empty());
        assert_eq!(before.duration, None);
        assert_eq!(patches.len(), 2);
        for patch in &patches {
            let at = patch.offset as usize;
            assert_eq!(file[at], 0xEC);
            assert_eq!(usize::from(file[at + 1] & 0x7F) + 2, patch.bytes.len());
            file[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
        }
        let after = read(&file);
        assert_eq!(after.duration, Some(2_980.0));
        assert_eq!(after.cues, before.cues);
        assert_eq!(
            after.seeks,
            [
                (vec![0x15, 0x49, 0xA9, 0x66], after.info_at),
                (vec![0x16, 0x54, 0xAE, 0x6B], after.tracks_at),
                (vec![0x1C, 0x53, 0xBB, 0x6B], after.cues_at.unwrap()),
            ]
        );
        // Opus: the OpusHead's pre-skip as the codec delay, and the seek pre-roll.
        assert_eq!(after.opus, (Some(6_500_000), Some(80_000_000)));
    }

    #[test]
    fn an_audio_only_file_has_a_cue_per_cluster() {
        let mut w = WebmWriter::new(Vec::new(), None, Some(2)).unwrap();
        for ms in (0..12_000).step_by(20) {
            w.write_frame(RecordTrack::Audio, ms, false, &[0xF8])
                .unwrap();
        }
        let r = read(&w.finish().unwrap());
        assert_eq!(r.clusters.len(), 3, "{:?}", r.clusters);
        let cues: Vec<_> = r.clusters.iter().map(|c| (c.1, 2, c.0)).collect();
        assert_eq!(r.cues, cues);
        assert_eq!(r.cues[1].0, 5_020);
        // No frame, no Cues (a Cues element needs a CuePoint).
        let empty = WebmWriter::new(Vec::new(), None, Some(1)).unwrap();
        let r = read(&empty.finish().unwrap());
        assert_eq!((r.cues_at, r.clusters.len()), (None, 0));
    }

    #[test]
    fn clusters_while_the_video_is_off_get_cues_on_the_audio_track() {
        // Video (a key frame at 0) for 2 s, then audio only until the camera comes back with
        // a key frame at 20 s.
        let mut w = WebmWriter::new(Vec::new(), Some((160, 120)), Some(1)).unwrap();
        for ms in (0..22_000).step_by(20) {
            if ms % 100 == 0 && !(2_000..20_000).contains(&ms) {
                let key = ms == 0 || ms == 20_000;
                let data: &[u8] = if key { &KEY } else { &DELTA };
                w.write_frame(RecordTrack::Video, ms, key, data).unwrap();
            }
            w.write_frame(RecordTrack::Audio, ms, false, &[0xF8])
                .unwrap();
        }
        let r = read(&w.finish().unwrap());
        let times: Vec<_> = r.clusters.iter().map(|c| c.1).collect();
        assert_eq!(
            times,
            [0, 5_020, 10_040, 15_060, 20_000],
            "{:?}",
            r.clusters
        );
        // The Cluster at 5.02 s follows video by less than a Cluster's span: no cue (a seek
        // there starts at the key frame at 0); those after it are cues on the audio track.
        let at = |i: usize| r.clusters[i].0;
        assert_eq!(
            r.cues,
            [
                (0, 1, at(0)),
                (10_040, 2, at(2)),
                (15_060, 2, at(3)),
                (20_000, 1, at(4)),
            ]
        );
    }

    /// A destination that takes `room` bytes, tears the write that goes past them, fails it,
    /// then takes everything again (the disk had room again).
    struct Flaky {
        bytes: Vec<u8>,
        room: usize,
        failed: bool,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let left = self.room.saturating_sub(self.bytes.len());
            if self.failed || buf.len() <= left {
                self.bytes.extend_from_slice(buf);
                return Ok(buf.len());
            }
            if left == 0 {
                self.failed = true;
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.bytes.extend_from_slice(&buf[..left]);
            Ok(left)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_failed_write_the_file_ends_there() {
        let dest = Flaky {
            bytes: Vec::new(),
            room: 1_000,
            failed: false,
        };
        let mut w = WebmWriter::new(dest, Some((160, 120)), Some(1)).unwrap();
        let mut error = None;
        for ms in (0..3_000).step_by(20) {
            let frame = &[0xF8; 40];
            if let Err(e) = w.write_frame(RecordTrack::Audio, ms, false, frame) {
                error = Some(e);
                break;
            }
        }
        assert!(matches!(error, Some(RecordError::Write(_))), "{error:?}");
        // The disk has room again, but nothing follows the torn block: no more frames, no
        // Cues at the close, no header to write.
        assert!(matches!(
            w.write_frame(RecordTrack::Video, 3_000, true, &KEY),
            Err(RecordError::Failed)
        ));
        let (dest, patches) = w.finish_with_header().unwrap();
        assert!(dest.failed);
        assert_eq!(dest.bytes.len(), 1_000);
        assert_eq!(patches, []);
    }
}

//! A WebM writer for one participant's tracks (VP8 video, Opus audio), on the pure-Rust
//! `webm-iterable` crate (EBML by tag, no C++ build).
//!
//! The file is written as it goes: the Segment and each Cluster have "unknown size" (as live
//! recorders write them), so every block is in the file as soon as it is written, nothing is
//! patched at the end, and a file cut short by a crash or a full disk is still read up to its
//! last whole block. A Cluster starts at each video key frame (a player can start there) and
//! whenever a block's time would no longer fit a Cluster's 16-bit offset.

use std::io::Write;

use thiserror::Error;
use webm_iterable::errors::TagWriterError;
use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};
use webm_iterable::{WebmWriter as TagWriter, WriteOptions};

/// Milliseconds a Cluster may span (a block's offset is a signed 16-bit number of ticks).
const MAX_CLUSTER_SPAN_MS: u64 = 30_000;

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
    tags: TagWriter<W>,
    video: bool,
    audio: bool,
    /// The open Cluster's time, in ms.
    cluster: Option<u64>,
    last_ms: u64,
}

impl<W: Write> std::fmt::Debug for WebmWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebmWriter")
            .field("video", &self.video)
            .field("audio", &self.audio)
            .field("last_ms", &self.last_ms)
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
        let mut tags = TagWriter::new(dest);
        let header = MatroskaSpec::Ebml(Master::Full(vec![
            MatroskaSpec::EbmlVersion(1),
            MatroskaSpec::EbmlReadVersion(1),
            MatroskaSpec::EbmlMaxIdLength(4),
            MatroskaSpec::EbmlMaxSizeLength(8),
            MatroskaSpec::DocType("webm".into()),
            MatroskaSpec::DocTypeVersion(4),
            MatroskaSpec::DocTypeReadVersion(2),
        ]));
        let write = |tags: &mut TagWriter<W>, tag: &MatroskaSpec| {
            tags.write(tag).map_err(RecordError::Write)
        };
        write(&mut tags, &header)?;
        tags.write_advanced(
            &MatroskaSpec::Segment(Master::Start),
            WriteOptions::is_unknown_sized_element(),
        )
        .map_err(RecordError::Write)?;
        let info = MatroskaSpec::Info(Master::Full(vec![
            // Block times in milliseconds.
            MatroskaSpec::TimestampScale(1_000_000),
            MatroskaSpec::MuxingApp("jrtc".into()),
            MatroskaSpec::WritingApp("jrtc".into()),
        ]));
        write(&mut tags, &info)?;
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
                MatroskaSpec::Audio(Master::Full(vec![
                    MatroskaSpec::SamplingFrequency(48_000.0),
                    MatroskaSpec::Channels(u64::from(channels)),
                ])),
            ])));
        }
        write(&mut tags, &MatroskaSpec::Tracks(Master::Full(entries)))?;
        Ok(WebmWriter {
            tags,
            video: video.is_some(),
            audio: audio_channels.is_some(),
            cluster: None,
            last_ms: 0,
        })
    }

    /// Writes one frame of `track` at `at_ms` (ms from the start of the recording; frames in
    /// time order across tracks). `keyframe` for a VP8 key frame (a Cluster starts there).
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
            if self.cluster.is_some() {
                self.tags
                    .write(&MatroskaSpec::Cluster(Master::End))
                    .map_err(RecordError::Write)?;
            }
            self.tags
                .write_advanced(
                    &MatroskaSpec::Cluster(Master::Start),
                    WriteOptions::is_unknown_sized_element(),
                )
                .map_err(RecordError::Write)?;
            self.tags
                .write(&MatroskaSpec::Timestamp(at_ms))
                .map_err(RecordError::Write)?;
            self.cluster = Some(at_ms);
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
        self.tags
            .write(&MatroskaSpec::from(block))
            .map_err(RecordError::Write)?;
        self.last_ms = at_ms;
        Ok(())
    }

    /// Ends the file (its unknown-size elements need nothing written) and returns the
    /// destination.
    pub fn finish(self) -> Result<W, RecordError> {
        self.tags.into_inner().map_err(RecordError::Write)
    }
}

fn track_number(track: RecordTrack) -> u64 {
    match track {
        RecordTrack::Video => 1,
        RecordTrack::Audio => 2,
    }
}

/// The Opus identification header (RFC 7845, 5.1): Matroska's `CodecPrivate` for `A_OPUS`.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip: 6.5 ms at 48 kHz
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0 (mono or stereo)
    head
}

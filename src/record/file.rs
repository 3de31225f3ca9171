//! One recording file: a participant's camera and microphone together, or one screen share.
//! Frames from its tracks arrive slightly out of order (each track has its own path), so they
//! wait a moment in a reorder buffer and are written in time order. The file opens once it
//! knows its tracks: at the first video key frame (it gives the picture size) and first audio
//! frame, or a second after the first frame, with what has come by then. A track that shows up
//! after that starts a new part (`name@1.webm`, …). A part closed normally gets its index (the
//! Cues, and the SeekHead to them when the storage can seek back).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::frames::{Frame, vp8_size};
use super::storage::Dest;
use super::webm::{RecordError, RecordTrack, WebmWriter};
use crate::model::{RecordedFile, TrackSource, UserId};

/// How long frames wait to be put in time order, in ms of the timeline.
const REORDER_MS: u64 = 300;
/// How long a file waits for its tracks' first frames before it opens with what it has.
const OPEN_WAIT_MS: u64 = 1_000;

/// Counts the bytes that reach the destination (for the size limit and the manifest).
pub(crate) struct Counted {
    inner: Dest,
    /// This file's bytes.
    written: Arc<AtomicU64>,
    /// The recording's bytes.
    total: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Opens the destination of a file part.
pub(crate) type Opener<'a> = dyn FnMut(&str) -> std::io::Result<Dest> + 'a;

/// What went wrong writing a file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("cannot create {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: RecordError,
    },
}

struct Open {
    writer: WebmWriter<Counted>,
    written: Arc<AtomicU64>,
    name: String,
    tracks: Vec<RecordTrack>,
    /// Timeline ms of the file's time zero.
    base_ms: u64,
    first_ms: Option<u64>,
    last_ms: u64,
}

/// One file (in parts) of one participant.
pub(crate) struct RecordingFile {
    stem: String,
    participant: UserId,
    sources: Vec<TrackSource>,
    /// Tracks the participant publishes that this file records.
    expected: Vec<RecordTrack>,
    /// Frames in time order, waiting (keyed by time, then arrival).
    queue: BTreeMap<(u64, u64), (RecordTrack, Frame)>,
    arrivals: u64,
    newest_ms: u64,
    open: Option<Open>,
    parts: Vec<RecordedFile>,
    first_part: usize,
    total: Arc<AtomicU64>,
}

impl RecordingFile {
    /// A file `stem.webm` (or, from part `first_part` on, `stem.N.webm`).
    pub(crate) fn new(
        stem: String,
        participant: UserId,
        total: Arc<AtomicU64>,
        first_part: usize,
    ) -> Self {
        RecordingFile {
            stem,
            participant,
            sources: Vec::new(),
            expected: Vec::new(),
            queue: BTreeMap::new(),
            arrivals: 0,
            newest_ms: 0,
            open: None,
            parts: Vec::new(),
            first_part,
            total,
        }
    }

    /// The participant publishes `source` (recorded here as `track`).
    pub(crate) fn expect(&mut self, source: TrackSource, track: RecordTrack) {
        if !self.sources.contains(&source) {
            self.sources.push(source);
        }
        if !self.expected.contains(&track) {
            self.expected.push(track);
        }
    }

    /// Takes a frame of `track`; writes what is due.
    pub(crate) fn push(
        &mut self,
        track: RecordTrack,
        frame: Frame,
        open: &mut Opener<'_>,
    ) -> Result<(), FileError> {
        self.newest_ms = self.newest_ms.max(frame.at_ms);
        self.arrivals += 1;
        self.queue
            .insert((frame.at_ms, self.arrivals), (track, frame));
        self.write_due(false, open)
    }

    /// Writes every waiting frame and closes the file; returns its parts.
    pub(crate) fn finish(
        mut self,
        open: &mut Opener<'_>,
    ) -> (Vec<RecordedFile>, Option<FileError>) {
        let error = self.write_due(true, open).err();
        let closing = self.close_part().err();
        (self.parts, error.or(closing))
    }

    /// The parts closed so far, and the open one as it stands.
    pub(crate) fn files(&self) -> Vec<RecordedFile> {
        let mut files = self.parts.clone();
        if let Some(open) = &self.open {
            files.push(self.describe(open));
        }
        files
    }

    fn write_due(&mut self, all: bool, open: &mut Opener<'_>) -> Result<(), FileError> {
        if self.open.is_none() && !all && !self.ready() {
            return Ok(());
        }
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if !all && at + REORDER_MS > self.newest_ms {
                break;
            }
            let (track, frame) = entry.remove();
            self.write(track, frame, open)?;
        }
        Ok(())
    }

    /// Whether the file knows its tracks: a key frame and an audio frame have come (those it
    /// expects), or it has waited long enough.
    fn ready(&self) -> bool {
        let has = |t: RecordTrack| {
            self.queue
                .values()
                .any(|(track, f)| *track == t && (t == RecordTrack::Audio || f.keyframe))
        };
        let first = self.queue.keys().next().map_or(self.newest_ms, |k| k.0);
        self.expected.iter().all(|t| has(*t)) || self.newest_ms >= first + OPEN_WAIT_MS
    }

    fn write(
        &mut self,
        track: RecordTrack,
        frame: Frame,
        open: &mut Opener<'_>,
    ) -> Result<(), FileError> {
        let fits = self
            .open
            .as_ref()
            .is_some_and(|o| o.tracks.contains(&track));
        if !fits {
            if track == RecordTrack::Video && !frame.keyframe {
                // Video starts at a key frame.
                return Ok(());
            }
            self.close_part()?;
            self.open_part(&frame, track, open)?;
        }
        let o = self.open.as_mut().expect("opened above");
        let at = frame.at_ms.saturating_sub(o.base_ms).max(o.last_ms);
        o.writer
            .write_frame(track, at, frame.keyframe, &frame.data)
            .map_err(|source| FileError::Write {
                name: o.name.clone(),
                source,
            })?;
        o.first_ms.get_or_insert(at);
        o.last_ms = at;
        Ok(())
    }

    /// Opens a new part with the tracks known now (`frame` of `track` comes first).
    fn open_part(
        &mut self,
        frame: &Frame,
        track: RecordTrack,
        open: &mut Opener<'_>,
    ) -> Result<(), FileError> {
        let key_in_queue = self
            .queue
            .values()
            .find(|(t, f)| *t == RecordTrack::Video && f.keyframe)
            .map(|(_, f)| f.data.clone());
        let size = match track {
            RecordTrack::Video => vp8_size(&frame.data),
            _ => key_in_queue.as_deref().and_then(vp8_size),
        };
        let video = size
            .filter(|_| track == RecordTrack::Video || self.expected.contains(&RecordTrack::Video));
        let audio = track == RecordTrack::Audio
            || self.expected.contains(&RecordTrack::Audio)
                && self.queue.values().any(|(t, _)| *t == RecordTrack::Audio);
        let part = self.first_part + self.parts.len();
        let name = match part {
            0 => format!("{}.webm", self.stem),
            n => format!("{}@{n}.webm", self.stem),
        };
        let dest = open(&name).map_err(|source| FileError::Create {
            name: name.clone(),
            source,
        })?;
        let written = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: dest,
            written: written.clone(),
            total: self.total.clone(),
        };
        let writer = WebmWriter::new(counted, video, audio.then_some(1)).map_err(|source| {
            FileError::Write {
                name: name.clone(),
                source,
            }
        })?;
        let mut tracks = Vec::new();
        if video.is_some() {
            tracks.push(RecordTrack::Video);
        }
        if audio {
            tracks.push(RecordTrack::Audio);
        }
        self.open = Some(Open {
            writer,
            written,
            name,
            tracks,
            base_ms: frame.at_ms,
            first_ms: None,
            last_ms: 0,
        });
        Ok(())
    }

    fn describe(&self, open: &Open) -> RecordedFile {
        let sources = self
            .sources
            .iter()
            .copied()
            .filter(|s| {
                open.tracks.contains(&match s.kind() {
                    crate::model::MediaKind::Audio => RecordTrack::Audio,
                    _ => RecordTrack::Video,
                })
            })
            .collect();
        RecordedFile {
            name: open.name.clone(),
            participant: self.participant.clone(),
            sources,
            bytes: open.written.load(Ordering::Relaxed),
            duration_ms: open.last_ms - open.first_ms.unwrap_or(open.last_ms),
            start_ms: open.base_ms,
        }
    }

    /// Closes the open part (flushing its destination).
    fn close_part(&mut self) -> Result<(), FileError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let mut file = self.describe(&open);
        let name = open.name.clone();
        let written = open.written.clone();
        let result = open
            .writer
            .finish_with_header()
            .and_then(|(mut dest, patches)| {
                dest.flush().map_err(RecordError::Flush)?;
                // Without them the file is whole: players find the Cues by reading it through.
                for patch in patches {
                    match dest.inner.write_at(patch.offset, &patch.bytes) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(file = %name, error = %e, "cannot complete the header");
                            break;
                        }
                    }
                }
                Ok(())
            })
            .map_err(|source| FileError::Write { name, source });
        file.bytes = written.load(Ordering::Relaxed);
        self.parts.push(file);
        result
    }
}

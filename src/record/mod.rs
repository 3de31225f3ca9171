//! Recording: a [`Recorder`] joins a room in the `recorder` role, receives every track and
//! writes the RTP it receives to WebM files without decoding or re-encoding it — one file per
//! participant (camera and microphone in sync on one timeline) and one per screen share —
//! plus a JSON manifest, into a [`Storage`] ([`LocalDir`] by default). Files are written as
//! they go, so whatever was recorded before a failure stays playable.
//!
//! Hosts start and stop recordings with [`Call::start_recording`](crate::Call::start_recording)
//! and [`Call::stop_recording`](crate::Call::stop_recording); members hear about them as
//! [`RecordingEvent`](crate::RecordingEvent)s.

mod cues;
mod file;
mod frames;
mod job;
mod keyframes;
mod recorder;
mod storage;
mod webm;

pub use job::MANIFEST;
pub use recorder::{Recorder, RecorderOptions};
pub use storage::{LocalDir, SeekWrite, Storage};
pub use webm::{HeaderPatch, RecordError, RecordTrack, WebmWriter};

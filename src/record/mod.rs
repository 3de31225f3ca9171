//! Recording: writing received media to files without decoding or re-encoding it. So far, the
//! container: [`WebmWriter`] writes VP8 video and Opus audio frames into a WebM (Matroska) file
//! incrementally, so that whatever was written before a failure stays playable.

mod webm;

pub use webm::{RecordError, RecordTrack, WebmWriter};

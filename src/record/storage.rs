//! Where recordings go: the [`Storage`] trait, and [`LocalDir`], a directory on this machine
//! (the default). An uploader (S3 and the like) implements the trait.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::model::RecordingId;

/// Somewhere recording files are written. Files are written as they go (so a recording cut
/// short keeps what it had); the manifest is written whole, and again when it changes.
pub trait Storage: Send + Sync + 'static {
    /// Opens file `name` of recording `recording` for writing, from empty.
    fn create(&self, recording: &RecordingId, name: &str) -> io::Result<Box<dyn Write + Send>>;
    /// Writes small file `name` (the manifest) of recording `recording` whole, replacing it.
    fn put(&self, recording: &RecordingId, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Where the recording's files are, for people (a directory, a URL prefix).
    fn location(&self, recording: &RecordingId) -> String;
}

/// A directory on this machine: each recording in a subdirectory named by its id.
#[derive(Clone, Debug)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Recordings under `root` (made when the first recording starts).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    /// The directory recording `recording` is written to.
    pub fn dir_of(&self, recording: &RecordingId) -> PathBuf {
        self.root.join(recording.as_str())
    }

    fn path(&self, recording: &RecordingId, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a recording file name is one plain path component",
            ));
        }
        let dir = self.dir_of(recording);
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(name))
    }
}

impl Storage for LocalDir {
    fn create(&self, recording: &RecordingId, name: &str) -> io::Result<Box<dyn Write + Send>> {
        Ok(Box::new(std::fs::File::create(
            self.path(recording, name)?,
        )?))
    }

    fn put(&self, recording: &RecordingId, name: &str, bytes: &[u8]) -> io::Result<()> {
        // Written aside and renamed, so a reader never sees half a manifest.
        let path = self.path(recording, name)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    fn location(&self, recording: &RecordingId) -> String {
        display(&self.dir_of(recording))
    }
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

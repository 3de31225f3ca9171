//! Where recordings go: the [`Storage`] trait, and [`LocalDir`], a directory on this machine
//! (the default). An uploader (S3 and the like) implements the trait.

use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use crate::model::RecordingId;

/// Somewhere recording files are written. Files are written as they go (so a recording cut
/// short keeps what it had); the manifest is written whole, and again when it changes.
pub trait Storage: Send + Sync + 'static {
    /// Opens file `name` of recording `recording` for writing, from empty.
    fn create(&self, recording: &RecordingId, name: &str) -> io::Result<Box<dyn Write + Send>>;
    /// Opens file `name` as [`Storage::create`] does, on a destination that can also seek back
    /// (a local file); `Ok(None)`, the default, when this storage only appends (an upload),
    /// and [`Storage::create`] is used. With one, the recorder writes each file's SeekHead
    /// when it closes it, in the room left for it at the start, so that players find the Cues
    /// (the index at the end) without reading the whole file. The rest is written in order
    /// either way: a file cut short plays the same.
    ///
    /// The writer must be at offset 0 of a new, empty file (as [`std::fs::File::create`]
    /// leaves it): the recorder writes back into the header at offsets counted from the first
    /// byte it wrote ([`HeaderPatch::offset`](super::HeaderPatch::offset)), seeking with
    /// [`SeekFrom::Start`](io::SeekFrom::Start). A writer that is not (its file already has
    /// bytes) fails the file's creation, rather than have the header written over the wrong
    /// bytes.
    fn create_seekable(
        &self,
        recording: &RecordingId,
        name: &str,
    ) -> io::Result<Option<Box<dyn SeekWrite>>> {
        let _ = (recording, name);
        Ok(None)
    }
    /// Writes small file `name` (the manifest) of recording `recording` whole, replacing it.
    fn put(&self, recording: &RecordingId, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Where the recording's files are, for people (a directory, a URL prefix).
    fn location(&self, recording: &RecordingId) -> String;
}

/// A destination that can seek back ([`Storage::create_seekable`]): any `Write + Seek + Send`.
/// Its offsets are the file's: it starts at offset 0 of a new, empty file, so that
/// [`SeekFrom::Start(n)`](io::SeekFrom::Start) is the `n`th byte the recorder wrote.
pub trait SeekWrite: Write + Seek + Send {}

impl<T: Write + Seek + Send> SeekWrite for T {}

/// Where a recording file is written.
pub(crate) enum Dest {
    /// Only appended to.
    Append(Box<dyn Write + Send>),
    /// Can also seek back.
    Seekable(Box<dyn SeekWrite>),
}

impl Dest {
    /// Opens file `name` of `recording` in `storage`, seekable if it can be. A seekable
    /// destination must be an empty file (its header is written back by offset from its start).
    pub(crate) fn open(
        storage: &dyn Storage,
        recording: &RecordingId,
        name: &str,
    ) -> io::Result<Dest> {
        Ok(match storage.create_seekable(recording, name)? {
            Some(mut dest) => {
                if dest.seek(io::SeekFrom::End(0))? != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a seekable recording file must start empty, at offset 0",
                    ));
                }
                Dest::Seekable(dest)
            }
            None => Dest::Append(storage.create(recording, name)?),
        })
    }

    /// Writes `bytes` at `offset` (from the file's start, which is the first byte written)
    /// and comes back to the end; `false` if it cannot seek.
    pub(crate) fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<bool> {
        let Dest::Seekable(dest) = self else {
            return Ok(false);
        };
        dest.seek(io::SeekFrom::Start(offset))?;
        dest.write_all(bytes)?;
        dest.seek(io::SeekFrom::End(0))?;
        dest.flush()?;
        Ok(true)
    }
}

impl Write for Dest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dest::Append(dest) => dest.write(buf),
            Dest::Seekable(dest) => dest.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dest::Append(dest) => dest.flush(),
            Dest::Seekable(dest) => dest.flush(),
        }
    }
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

    fn create_seekable(
        &self,
        recording: &RecordingId,
        name: &str,
    ) -> io::Result<Option<Box<dyn SeekWrite>>> {
        Ok(Some(Box::new(std::fs::File::create(
            self.path(recording, name)?,
        )?)))
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

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Mutex;

    use super::*;

    /// Gives seekable destinations holding `existing` bytes already.
    struct Preset {
        existing: Vec<u8>,
        /// The append-only files made.
        created: Mutex<usize>,
    }

    impl Storage for Preset {
        fn create(&self, _: &RecordingId, _: &str) -> io::Result<Box<dyn Write + Send>> {
            *self.created.lock().unwrap() += 1;
            Ok(Box::new(Vec::new()))
        }
        fn create_seekable(
            &self,
            _: &RecordingId,
            _: &str,
        ) -> io::Result<Option<Box<dyn SeekWrite>>> {
            Ok(Some(Box::new(Cursor::new(self.existing.clone()))))
        }
        fn put(&self, _: &RecordingId, _: &str, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn location(&self, _: &RecordingId) -> String {
            String::new()
        }
    }

    #[test]
    fn a_seekable_destination_must_be_an_empty_file() {
        let recording = RecordingId::from("rec");
        let empty = Preset {
            existing: Vec::new(),
            created: Mutex::new(0),
        };
        let dest = Dest::open(&empty, &recording, "a.webm").unwrap();
        assert!(matches!(dest, Dest::Seekable(_)));
        // A file with bytes already: patches by offset would land on the wrong bytes.
        let used = Preset {
            existing: b"old".to_vec(),
            created: Mutex::new(0),
        };
        let error = Dest::open(&used, &recording, "a.webm").err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(*used.created.lock().unwrap(), 0);
    }
}

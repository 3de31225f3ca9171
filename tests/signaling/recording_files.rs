//! The recording container: VP8 and Opus frames written into WebM by `jrtc::record`, read back
//! by ffprobe (Debian's `ffmpeg`) and mkvinfo (`mkvtoolnix`); a file closed normally has its
//! index (Cues, and a SeekHead to them when its header is completed) and seeks by reading
//! little of it; a file cut short mid-way still reads up to where it ends; a destination
//! whose writes fail gives a typed error.

use std::path::PathBuf;
use std::process::Command;

use jrtc::record::{HeaderPatch, RecordError, RecordTrack, WebmWriter};
use serde_json::Value;

use crate::record_support::{cues, mkvinfo, opus_delays};

/// A VP8 frame: its time in ms, whether it is a key frame, its bytes.
type Frame = (u64, bool, Vec<u8>);

/// The VP8 fixture's frames, and its size.
fn fixture_frames() -> ((u32, u32), Vec<Frame>) {
    let ivf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/testsrc-160x120.ivf"
    ))
    .unwrap();
    let u16_at = |i: usize| u16::from_le_bytes([ivf[i], ivf[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(ivf[i..i + 4].try_into().unwrap());
    let size = (u32::from(u16_at(12)), u32::from(u16_at(14)));
    let (rate, scale) = (u64::from(u32_at(16)), u64::from(u32_at(20)));
    let mut frames = Vec::new();
    let mut at = 32;
    while at + 12 <= ivf.len() {
        let len = u32_at(at) as usize;
        let pts = u64::from_le_bytes(ivf[at + 4..at + 12].try_into().unwrap());
        let data = ivf[at + 12..at + 12 + len].to_vec();
        // VP8: bit 0 of the first byte is 0 for a key frame.
        frames.push((pts * scale * 1000 / rate, data[0] & 1 == 0, data));
        at += 12 + len;
    }
    (size, frames)
}

/// A file written by `record`.
struct Recorded {
    /// As an append-only destination leaves it: the rooms in its header are Voids.
    appended: Vec<u8>,
    /// With its header completed (a destination that seeks back).
    completed: Vec<u8>,
    /// Frames written: video (of which key frames), audio.
    video: usize,
    keyframes: usize,
    audio: usize,
}

/// `bytes` with `patches` written over them.
fn complete(bytes: &[u8], patches: &[HeaderPatch]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for patch in patches {
        let at = patch.offset as usize;
        bytes[at..at + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }
    bytes
}

/// Writes `seconds` of the fixture's video (looped: a key frame every second) and 20 ms Opus
/// frames, in time order, and closes the file.
fn record(seconds: u64) -> Recorded {
    let (size, frames) = fixture_frames();
    let span = frames.last().unwrap().0 + 1000 / 15;
    let mut video: Vec<(u64, bool, &[u8])> = Vec::new();
    for round in 0.. {
        let base = round * span;
        if base >= seconds * 1000 {
            break;
        }
        for (at, key, data) in &frames {
            if base + at < seconds * 1000 {
                video.push((base + at, *key, data));
            }
        }
    }
    // Opus "silence" frames (TOC: CELT full band, 20 ms, mono).
    let silence: &[u8] = &[0xF8, 0xFF, 0xFE];
    let audio: Vec<u64> = (0..seconds * 50).map(|i| i * 20).collect();
    let mut writer = WebmWriter::new(Vec::new(), Some(size), Some(1)).unwrap();
    let (mut v, mut a) = (0, 0);
    while v < video.len() || a < audio.len() {
        if a == audio.len() || (v < video.len() && video[v].0 <= audio[a]) {
            let (at, key, data) = video[v];
            writer
                .write_frame(RecordTrack::Video, at, key, data)
                .unwrap();
            v += 1;
        } else {
            writer
                .write_frame(RecordTrack::Audio, audio[a], false, silence)
                .unwrap();
            a += 1;
        }
    }
    let (appended, patches) = writer.finish_with_header().unwrap();
    Recorded {
        completed: complete(&appended, &patches),
        appended,
        video: video.len(),
        keyframes: video.iter().filter(|f| f.1).count(),
        audio: audio.len(),
    }
}

/// `bytes` in a temporary file named after `name` (removed when the value drops).
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8], name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jrtc-{}-{name}.webm", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// ffprobe's view of a file: per stream, (codec, packets read); and whether ffprobe succeeded.
fn probe(bytes: &[u8], name: &str) -> Vec<(String, u64)> {
    let file = TempFile::new(bytes, name);
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,nb_read_packets,width,height",
            "-of",
            "json",
        ])
        .arg(&file.0)
        .output()
        .expect("ffprobe runs (Debian package ffmpeg)");
    assert!(out.status.success(), "ffprobe: {out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap().to_owned(),
                s["nb_read_packets"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn frames_written_to_webm_are_read_back_by_ffprobe() {
    let r = record(5);
    for (file, name) in [(&r.completed, "whole"), (&r.appended, "appended")] {
        let streams = probe(file, name);
        assert_eq!(
            streams,
            [
                ("vp8".to_owned(), r.video as u64),
                ("opus".to_owned(), r.audio as u64)
            ]
        );
    }
    // Five seconds: 15 frames a second of video, 50 of audio.
    assert!((74..=76).contains(&r.video), "{}", r.video);
    assert_eq!(r.audio, 250);
}

/// Cues at the end (a CuePoint per key frame), a SeekHead to them once the header is completed,
/// the Opus track's codec delay and seek pre-roll, and a duration.
#[test]
fn a_closed_file_is_indexed() {
    let r = record(5);
    let completed = mkvinfo(&TempFile::new(&r.completed, "indexed").0);
    assert_eq!(cues(&completed), (r.keyframes, true), "{completed}");
    assert!(r.keyframes >= 5, "{}", r.keyframes);
    assert!(opus_delays(&completed), "{completed}");
    assert!(completed.contains("+ Duration: 00:00:04.9"), "{completed}");
    // Left as written: the same Cues, found by reading through; the rooms are Voids.
    let appended = mkvinfo(&TempFile::new(&r.appended, "unindexed").0);
    assert_eq!(cues(&appended), (r.keyframes, false));
    assert!(!appended.contains("+ Duration"));
}

/// What FFmpeg reads to show the video frame at `at` seconds: (bytes read, the first frame's
/// time and whether it is a key frame).
fn seek(bytes: &[u8], name: &str, at: f64) -> (u64, f64, bool) {
    let file = TempFile::new(bytes, name);
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "debug", "-ss", &at.to_string(), "-i"])
        .arg(&file.0)
        .args(["-frames:v", "1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs (Debian package ffmpeg)");
    assert!(out.status.success(), "ffmpeg: {out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    // "[AVIOContext @ …] Statistics: 66308 bytes read, 3 seeks"
    let read = log
        .lines()
        .find_map(|l| {
            l.split("Statistics: ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no statistics in {log}"));
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-read_intervals"])
        .arg(format!("{at}%+#1"))
        .args([
            "-show_entries",
            "frame=pts_time,key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(&file.0)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (key, pts) = text.trim().split_once(',').expect("a frame");
    (read, pts.parse().unwrap(), key == "1")
}

/// Seeking 40 s into a 45 s file lands on the key frame before and reads a fraction of the
/// file: the SeekHead leads FFmpeg to the Cues (without it, FFmpeg reads through to the time).
#[test]
fn seeking_in_a_closed_file_reads_little_of_it() {
    let r = record(45);
    let (read, pts, key) = seek(&r.completed, "seek", 40.5);
    let size = r.completed.len() as u64;
    // The fixture's key frames are a second apart (39.98 s is the one before 40.5 s).
    assert!(key && (39.5..=40.5).contains(&pts), "{pts} {key}");
    assert!(read < size / 4, "{read} bytes read of {size}");
    let (scanned, _, _) = seek(&r.appended, "scan", 40.5);
    println!("seek to 40.5 s of {size} bytes: {read} bytes read, {scanned} without the SeekHead");
}

#[test]
fn a_file_cut_short_still_reads_up_to_where_it_ends() {
    let r = record(5);
    // A writer killed mid-way: the file ends in the middle of a block. Whether or not its
    // header was completed (a SeekHead then points past the end).
    for (file, name) in [(&r.appended, "cut"), (&r.completed, "cut-indexed")] {
        let cut = &file[..file.len() * 3 / 5 + 7];
        let streams = probe(cut, name);
        let vp8 = streams
            .iter()
            .find(|(c, _)| c == "vp8")
            .expect("a VP8 stream")
            .1;
        assert!(
            vp8 > 0 && vp8 < r.video as u64,
            "{vp8} of {} VP8 frames",
            r.video
        );
        assert!(
            streams.iter().any(|(c, n)| c == "opus" && *n > 0),
            "{streams:?}"
        );
        // A seek finds no Cues and reads through to the time instead.
        let (_, pts, key) = seek(cut, name, 1.5);
        assert!(key && (1.0..1.5).contains(&pts), "{name}: {pts} {key}");
    }
}

/// A destination that takes `room` bytes, then fails as a file over its size limit does.
struct Full {
    room: usize,
}

impl std::io::Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::from_raw_os_error(27)); // EFBIG
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn failing_writes_and_bad_frames_are_typed_errors() {
    let (_, frames) = fixture_frames();
    let mut writer = WebmWriter::new(Full { room: 2_000 }, Some((160, 120)), None).unwrap();
    let mut error = None;
    for (at, key, data) in &frames {
        if let Err(e) = writer.write_frame(RecordTrack::Video, *at, *key, data) {
            error = Some(e);
            break;
        }
    }
    assert!(matches!(error, Some(RecordError::Write(_))), "{error:?}");
    let mut writer = WebmWriter::new(Vec::new(), Some((160, 120)), None).unwrap();
    assert!(matches!(
        writer.write_frame(RecordTrack::Audio, 0, false, &[1]),
        Err(RecordError::NoSuchTrack(RecordTrack::Audio))
    ));
    writer
        .write_frame(RecordTrack::Video, 100, true, &frames[0].2)
        .unwrap();
    assert!(matches!(
        writer.write_frame(RecordTrack::Video, 50, false, &frames[1].2),
        Err(RecordError::OutOfOrder { .. })
    ));
}

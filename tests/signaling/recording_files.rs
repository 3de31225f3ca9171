//! The recording container: VP8 and Opus frames written into WebM by `jrtc::record`, read back
//! by ffprobe (Debian's `ffmpeg`); a file cut short mid-way still reads up to where it ends;
//! a destination whose writes fail gives a typed error.

use std::process::Command;

use jrtc::record::{RecordError, RecordTrack, WebmWriter};
use serde_json::Value;

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

/// Writes `seconds` of the fixture's video (looped) and 20 ms Opus frames, in time order;
/// returns the file's bytes and the frames written of each kind.
fn record(seconds: u64) -> (Vec<u8>, usize, usize) {
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
    (writer.finish().unwrap(), video.len(), audio.len())
}

/// ffprobe's view of a file: per stream, (codec, packets read); and whether ffprobe succeeded.
fn probe(bytes: &[u8], name: &str) -> Vec<(String, u64)> {
    let path = std::env::temp_dir().join(format!("jrtc-{}-{name}.webm", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,nb_read_packets,width,height",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs (Debian package ffmpeg)");
    let _ = std::fs::remove_file(&path);
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
    let (file, video, audio) = record(5);
    let streams = probe(&file, "whole");
    assert_eq!(
        streams,
        [
            ("vp8".to_owned(), video as u64),
            ("opus".to_owned(), audio as u64)
        ]
    );
    // Five seconds: 15 frames a second of video, 50 of audio.
    assert!((74..=76).contains(&video), "{video}");
    assert_eq!(audio, 250);
}

#[test]
fn a_file_cut_short_still_reads_up_to_where_it_ends() {
    let (file, video, _) = record(5);
    // A writer killed mid-way: the file ends in the middle of a block.
    let cut = &file[..file.len() * 3 / 5 + 7];
    let streams = probe(cut, "cut");
    let vp8 = streams
        .iter()
        .find(|(c, _)| c == "vp8")
        .expect("a VP8 stream")
        .1;
    assert!(vp8 > 0 && vp8 < video as u64, "{vp8} of {video} VP8 frames");
    assert!(
        streams.iter().any(|(c, n)| c == "opus" && *n > 0),
        "{streams:?}"
    );
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

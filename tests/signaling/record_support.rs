//! Helpers of the recording tests (also used by the recorder-process tests of `jrtc-server`):
//! a sender of the VP8 fixture and of Opus frames in real time, and ffprobe's view of a file.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use jrtc::LocalTrack;
use jrtc::media::rtc::media::io::ivf_reader::IVFReader;
use jrtc::media::rtc::rtp::codec::vp8::Vp8Payloader;
use jrtc::media::rtc::rtp::packetizer::Payloader;

/// The VP8 fixture: 30 frames at 15 fps, key frames at 0 and 15.
pub fn vp8_frames() -> Vec<Bytes> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/testsrc-160x120.ivf"
    );
    let path = if Path::new(path).exists() {
        path.to_owned()
    } else {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/testsrc-160x120.ivf"
        )
        .to_owned()
    };
    let (mut reader, _) = IVFReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Ok((frame, _)) = reader.parse_next_frame() {
        frames.push(frame.freeze());
    }
    frames
}

/// A 20 ms Opus frame (TOC: CELT full band, 20 ms, mono; silence).
pub const OPUS_FRAME: &[u8] = &[0xF8, 0xFF, 0xFE];

/// Sends a participant's camera and microphone in real time, timestamps going on across calls.
pub struct MediaSender {
    camera: Option<LocalTrack>,
    mic: Option<LocalTrack>,
    frames: Vec<Bytes>,
    payloader: Vp8Payloader,
    /// RTP timestamps count from here, in real time (as an encoder's clock does).
    origin: tokio::time::Instant,
}

impl MediaSender {
    pub fn new(camera: Option<LocalTrack>, mic: Option<LocalTrack>) -> Self {
        MediaSender {
            camera,
            mic,
            frames: vp8_frames(),
            payloader: Vp8Payloader::default(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// The video (90 kHz) and audio (48 kHz) RTP timestamps of moment `at`.
    fn clock(&self, at: tokio::time::Instant) -> (u32, u32) {
        let ms = at.saturating_duration_since(self.origin).as_millis() as u64;
        ((ms * 90) as u32, (ms * 48) as u32)
    }

    /// Opens the tracks end to end without sending anything a recording keeps: the SFU takes
    /// a new track's first packets to open it, so each track first gets a few packets a
    /// recorder drops (a VP8 delta frame before any key frame, an empty Opus payload). Waits
    /// a moment after.
    pub async fn prime(&mut self) {
        for _ in 0..5 {
            let (video_ts, audio_ts) = self.clock(tokio::time::Instant::now());
            if let Some(camera) = &self.camera {
                // VP8 payload descriptor (start of partition 0), then a delta frame's first byte.
                camera
                    .write(
                        Bytes::from_static(&[0x10, 0x01, 0x00, 0x00]),
                        video_ts,
                        true,
                    )
                    .await
                    .unwrap();
            }
            if let Some(mic) = &self.mic {
                mic.write(Bytes::new(), audio_ts, true).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Sends `video_frames` frames of video from the fixture's start (a key frame), 15 a
    /// second, and the audio of the same span (20 ms frames); returns (video, audio) frames
    /// sent.
    pub async fn send(&mut self, video_frames: usize) -> (usize, usize) {
        let span_ms = video_frames as u64 * 1000 / 15;
        let audio_frames = (span_ms / 20) as usize;
        let start = tokio::time::Instant::now();
        let (mut v, mut a) = (0usize, 0usize);
        while v < video_frames || a < audio_frames {
            let video_at = v as u64 * 1000 / 15;
            let audio_at = a as u64 * 20;
            let video_next = v < video_frames && (a >= audio_frames || video_at <= audio_at);
            let at = if video_next { video_at } else { audio_at };
            let due = start + Duration::from_millis(at);
            tokio::time::sleep_until(due).await;
            let (video_ts, audio_ts) = self.clock(due);
            if video_next {
                if let Some(camera) = &self.camera {
                    let frame = &self.frames[v % self.frames.len()];
                    let packets = self.payloader.payload(1200, frame).unwrap();
                    let last = packets.len() - 1;
                    for (j, payload) in packets.into_iter().enumerate() {
                        camera.write(payload, video_ts, j == last).await.unwrap();
                    }
                }
                v += 1;
            } else {
                if let Some(mic) = &self.mic {
                    mic.write(Bytes::from_static(OPUS_FRAME), audio_ts, true)
                        .await
                        .unwrap();
                }
                a += 1;
            }
        }
        (
            if self.camera.is_some() { v } else { 0 },
            if self.mic.is_some() { a } else { 0 },
        )
    }
}

/// The next event of `call`'s stream `events` that `pick` takes, skipping the others; fails
/// the test if none comes within `wait`.
pub async fn until<T>(
    call: &jrtc::Call,
    events: &mut jrtc::EventStream,
    wait: Duration,
    mut pick: impl FnMut(jrtc::CallEvent) -> Option<T>,
) -> T {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("{}: the event did not come in time", call.user_id()))
            .expect("the stream is open");
        if let Some(t) = pick(ev) {
            return t;
        }
    }
}

/// One stream of a file, as ffprobe reads it.
#[derive(Debug, Clone)]
pub struct Stream {
    pub codec: String,
    pub packets: u64,
    /// First and last packet times, in seconds.
    pub first: f64,
    pub last: f64,
}

/// ffprobe's view of a file: its streams, or `None` when ffprobe cannot read it.
pub fn probe(path: &Path) -> Option<Vec<Stream>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=index,codec_name"])
        .args(["-show_entries", "packet=stream_index,pts_time"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian: apt-get install ffmpeg)");
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut streams: Vec<Stream> = v["streams"]
        .as_array()?
        .iter()
        .map(|s| Stream {
            codec: s["codec_name"].as_str().unwrap_or("?").to_owned(),
            packets: 0,
            first: f64::MAX,
            last: f64::MIN,
        })
        .collect();
    for p in v["packets"].as_array().into_iter().flatten() {
        let i = p["stream_index"].as_u64()? as usize;
        let t: f64 = p["pts_time"].as_str()?.parse().ok()?;
        let s = streams.get_mut(i)?;
        s.packets += 1;
        s.first = s.first.min(t);
        s.last = s.last.max(t);
    }
    Some(streams)
}

/// The stream of `codec` in `streams`.
pub fn stream<'a>(streams: &'a [Stream], codec: &str) -> &'a Stream {
    streams
        .iter()
        .find(|s| s.codec == codec)
        .unwrap_or_else(|| panic!("no {codec} stream in {streams:?}"))
}

/// A fresh directory for a test's recordings.
pub fn recording_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jrtc-rec-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

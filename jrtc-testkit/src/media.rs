//! Media for the recording tests (and the recorder-process tests and benchmarks of `jrtc-server`):
//! a sender of the VP8 fixture and of Opus frames in real time, and ffprobe's and mkvinfo's
//! views of a file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
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
    /// Key frames only when asked (and first), as a browser's encoder sends them.
    on_request: bool,
    /// The fixture's last delta frame sent (`on_request`).
    delta: usize,
    /// Key frames sent.
    pub keyframes_sent: usize,
}

impl MediaSender {
    pub fn new(camera: Option<LocalTrack>, mic: Option<LocalTrack>) -> Self {
        MediaSender {
            camera,
            mic,
            frames: vp8_frames(),
            payloader: Vp8Payloader::default(),
            origin: tokio::time::Instant::now(),
            on_request: false,
            delta: 0,
            keyframes_sent: 0,
        }
    }

    /// Sends a key frame first and then only when a receiver asks for one (a browser sends
    /// them about as rarely); the frames between are the fixture's delta frames, in a loop
    /// (not decodable as a picture, but whole VP8 frames for a recording).
    pub fn keyframes_on_request(mut self) -> Self {
        self.on_request = true;
        self
    }

    /// The next video frame: the fixture in order, or as `keyframes_on_request` says.
    fn next_frame(&mut self, v: usize) -> Bytes {
        let is_key = |f: &Bytes| f.first().is_some_and(|b| b & 1 == 0);
        let frame = if !self.on_request {
            self.frames[v % self.frames.len()].clone()
        } else {
            let mut asked = self.keyframes_sent == 0;
            // Every request waiting is answered by this one key frame.
            while let Some(camera) = &self.camera
                && let Some(Some(())) = camera.keyframe_requested().now_or_never()
            {
                asked = true;
            }
            if asked {
                self.frames[0].clone()
            } else {
                loop {
                    self.delta = (self.delta + 1) % self.frames.len();
                    if !is_key(&self.frames[self.delta]) {
                        break self.frames[self.delta].clone();
                    }
                }
            }
        };
        if is_key(&frame) {
            self.keyframes_sent += 1;
        }
        frame
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
                let frame = self.next_frame(v);
                if let Some(camera) = &self.camera {
                    let packets = self.payloader.payload(1200, &frame).unwrap();
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
    /// Packets flagged as key frames (Opus packets all are).
    pub keyframes: u64,
    /// First and last packet times, in seconds.
    pub first: f64,
    pub last: f64,
}

/// ffprobe's view of a file: its streams, or `None` when ffprobe cannot read it.
pub fn probe(path: &Path) -> Option<Vec<Stream>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=index,codec_name"])
        .args(["-show_entries", "packet=stream_index,pts_time,flags"])
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
            keyframes: 0,
            first: f64::MAX,
            last: f64::MIN,
        })
        .collect();
    for p in v["packets"].as_array().into_iter().flatten() {
        let i = p["stream_index"].as_u64()? as usize;
        let t: f64 = p["pts_time"].as_str()?.parse().ok()?;
        let s = streams.get_mut(i)?;
        s.packets += 1;
        if p["flags"].as_str().is_some_and(|f| f.starts_with('K')) {
            s.keyframes += 1;
        }
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

/// `mkvinfo --all`'s view of a file (every element, Clusters and Cues included), whether or not
/// it read the file to its end. Fails at once when mkvinfo is not installed.
pub fn mkvinfo(path: &Path) -> String {
    let out = match Command::new("mkvinfo").arg("--all").arg(path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("mkvinfo is not installed: apt-get install -y mkvtoolnix")
        }
        Err(e) => panic!("mkvinfo: {e}"),
    };
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a file's index reads in mkvinfo's view: CuePoints, and whether a SeekHead points to
/// the Cues.
pub fn cues(mkvinfo: &str) -> (usize, bool) {
    let points = mkvinfo.matches("+ Cue point").count();
    (points, mkvinfo.contains("(KaxCues)"))
}

/// Whether mkvinfo shows an Opus track's codec delay of 6.5 ms and seek pre-roll of 80 ms.
pub fn opus_delays(mkvinfo: &str) -> bool {
    mkvinfo.contains("Codec-inherent delay: 00:00:00.006500000")
        && mkvinfo.contains("Seek pre-roll: 00:00:00.080000000")
}

/// Writes 20 ms audio packets whose level is `level_dbov` (RFC 6464, as a speaking or silent
/// microphone would) until aborted, one per tick of a 20 ms clock, as an encoder makes them
/// (the pace of the media, not a wait for anything).
pub fn speak(track: LocalTrack, level_dbov: u8) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        for frame in 0u32.. {
            clock.tick().await;
            let ts = frame.wrapping_mul(960);
            let _ = track
                .write_with_level(Bytes::from_static(OPUS_FRAME), ts, level_dbov)
                .await;
        }
    })
}

/// Writes a 604-byte VP8-like key-frame packet every 10 ms until aborted (a camera's pace, not
/// a wait for anything); the SFU starts a leg at a key frame, so every packet is one.
pub fn film(track: LocalTrack) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        for i in 0u32.. {
            clock.tick().await;
            let mut payload = vec![0x10, 0, 0, 0];
            payload.extend_from_slice(&[0x5a; 600]);
            let _ = track.write(payload, i.wrapping_mul(900), true).await;
        }
    })
}

/// A STUN binding request (an ICE check) whose USERNAME is `username`, with a
/// MESSAGE-INTEGRITY of zeros when `integrity` is set (one that cannot be right). What a
/// stranger sends a media port: the tests of the port's routing and of forged checks use it.
pub fn stun_check(username: &str, integrity: bool) -> Vec<u8> {
    let mut attributes = vec![0x00, 0x06];
    attributes.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attributes.extend_from_slice(username.as_bytes());
    while attributes.len() % 4 != 0 {
        attributes.push(0);
    }
    if integrity {
        attributes.extend_from_slice(&[0x00, 0x08, 0x00, 20]);
        attributes.extend_from_slice(&[0; 20]);
    }
    let mut packet = vec![0x00, 0x01];
    packet.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    packet.extend_from_slice(&[9; 12]);
    packet.extend_from_slice(&attributes);
    packet
}

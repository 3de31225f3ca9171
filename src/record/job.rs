//! One recording job, on a call of its own: join the room as its recorder, receive every
//! track, write the files, keep the manifest, report to the server. The decisions (limits,
//! no media, what a failure is) are made here from what the call and the files say; the
//! reading of tracks runs in a task per track.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use super::file::{FileError, RecordingFile};
use super::frames::{Codec, FrameAssembler};
use super::keyframes::KeyframeRequests;
use super::recorder::RecorderContext;
use super::storage::Dest;
use super::webm::RecordTrack;
use crate::event::{CallEvent, MediaEvent, Outcome};
use crate::media::RtpPacket;
use crate::model::{
    AbortReason, MediaKind, Publication, RecordedFile, RecordingJob, RoomId, StopReason,
    TrackSource, UserId,
};
use crate::protocol::RecorderReport;
use crate::{Call, RecordingId};

/// The manifest's file name, beside the media files.
pub const MANIFEST: &str = "manifest.json";

/// How a job ended, as the manifest says.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "ended", content = "reason", rename_all = "snake_case")]
enum Ending {
    Recording,
    Stopped(StopReason),
    Aborted(AbortReason),
}

/// The manifest of a recording (`manifest.json`): written when it starts and again when it
/// ends, so a crash leaves one that lists the room and says `recording`.
#[derive(Serialize)]
struct Manifest<'a> {
    room: &'a RoomId,
    recording: &'a RecordingId,
    recorder: &'a UserId,
    /// Milliseconds since the Unix epoch.
    started_at: u64,
    stopped_at: Option<u64>,
    #[serde(flatten)]
    ending: Ending,
    participants: Vec<&'a UserId>,
    files: &'a [RecordedFile],
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The file a source goes to: camera and microphone share one, a screen share and each extra
/// camera or screen have their own (`alice@screen`, `alice@camera-slides`).
fn file_of(user: &UserId, source: TrackSource) -> (String, RecordTrack) {
    match source {
        // `@` is not in the user id alphabet: no user's file name is another's.
        TrackSource::Screen => (format!("{user}@screen"), RecordTrack::Video),
        TrackSource::Camera => (user.to_string(), RecordTrack::Video),
        TrackSource::ExtraCamera(name) => (format!("{user}@camera-{name}"), RecordTrack::Video),
        TrackSource::ExtraScreen(name) => (format!("{user}@screen-{name}"), RecordTrack::Video),
        _ => (user.to_string(), RecordTrack::Audio),
    }
}

struct Track {
    file: String,
    record: RecordTrack,
    frames: FrameAssembler,
    /// To ask its publisher for a key frame.
    remote: crate::RemoteTrack,
    /// When to ask (a video track's).
    keyframes: Option<KeyframeRequests>,
}

/// The job's state while it runs.
struct Job {
    ctx: Arc<RecorderContext>,
    job: RecordingJob,
    me: UserId,
    start: Instant,
    started_at: u64,
    tracks: HashMap<String, Track>,
    files: HashMap<String, RecordingFile>,
    participants: BTreeSet<UserId>,
    /// Files closed while recording (their participant left or stopped publishing).
    closed: Vec<RecordedFile>,
    /// Parts used so far per file name, so a file made again goes on numbering.
    parts: HashMap<String, usize>,
    total: Arc<AtomicU64>,
    last_packet: Instant,
    /// The publications recorded, and whether each is muted (for the no-media rule).
    publications: HashMap<String, bool>,
    /// Frames lost by tracks no longer received.
    dropped: u64,
}

/// Runs job `job` until it stops (`stop` says why, or is dropped when the recorder goes).
pub(crate) async fn run(
    ctx: Arc<RecorderContext>,
    control: Call,
    job: RecordingJob,
    mut stop: mpsc::Receiver<StopReason>,
) {
    let recording = job.recording.clone();
    let call = match ctx.connect().await {
        Ok(call) => call,
        Err(e) => {
            tracing::warn!(%recording, error = %e, "the recorder cannot connect for a job");
            // Said on the session that took the job, so the members hear it now.
            let report = RecorderReport::Failed {
                reason: AbortReason::RecorderFailed,
                message: e.to_string(),
            };
            let _ = control.report_recording(recording, report).await;
            return;
        }
    };
    let mut events = call.events();
    let joined = match call.recorder_join(recording.clone()).await {
        Ok(op) => call.outcome(op).await,
        Err(e) => Err(e),
    };
    let snapshot = match joined {
        Ok(Outcome::Joined(snapshot)) => snapshot,
        other => {
            tracing::warn!(%recording, outcome = ?other, "the recorder could not join");
            let report = RecorderReport::Failed {
                reason: AbortReason::RecorderFailed,
                message: format!("{other:?}"),
            };
            let _ = call.report_recording(recording, report).await;
            call.close().await;
            return;
        }
    };
    let total = Arc::new(AtomicU64::new(0));
    let mut state = Job {
        ctx,
        me: call.user_id().clone(),
        job,
        start: Instant::now(),
        started_at: unix_ms(),
        tracks: HashMap::new(),
        files: HashMap::new(),
        participants: BTreeSet::new(),
        closed: Vec::new(),
        parts: HashMap::new(),
        total,
        last_packet: Instant::now(),
        publications: HashMap::new(),
        dropped: 0,
    };
    for publication in &snapshot.publications {
        state.published(publication);
    }
    let (packets_tx, mut packets) = mpsc::channel::<(String, Instant, RtpPacket)>(1024);
    // Tracks that arrived while the join was answered.
    for track in call.remote_tracks() {
        state.subscribed(&call, track.publication().clone(), &packets_tx);
    }
    state.write_manifest(Ending::Recording, None);
    tracing::info!(
        %recording,
        room = %state.job.room,
        location = %state.ctx.storage.location(&recording),
        "recording"
    );
    let _ = call
        .report_recording(recording.clone(), RecorderReport::Recording)
        .await;
    let deadline = state
        .job
        .options
        .max_duration_ms
        .map(|ms| state.start + Duration::from_millis(ms));
    let mut watchdog = tokio::time::interval(Duration::from_millis(500));
    let ending = loop {
        let limit = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // No sender: the recorder lost the server (which aborted the job as `recorder_lost`).
            reason = stop.recv() => break reason.map_or(Ending::Aborted(AbortReason::RecorderLost), Ending::Stopped),
            () = limit => break Ending::Stopped(StopReason::LimitReached),
            Some((id, at, packet)) = packets.recv() => {
                if let Err(e) = state.packet(&id, at, &packet) {
                    tracing::warn!(%recording, error = %e, "a recording write failed");
                    break Ending::Aborted(AbortReason::StorageFailed);
                }
                if state.job.options.max_bytes.is_some_and(|max| state.total.load(Ordering::Relaxed) >= max) {
                    break Ending::Stopped(StopReason::LimitReached);
                }
            }
            event = events.next() => match event {
                Some(CallEvent::Media(MediaEvent::Published { publication, .. })) => state.published(&publication),
                Some(CallEvent::Media(MediaEvent::Unpublished { publication, .. })) => {
                    if let Err(e) = state.unpublished(&publication) {
                        tracing::warn!(%recording, error = %e, "closing a recording file failed");
                        break Ending::Aborted(AbortReason::StorageFailed);
                    }
                }
                Some(CallEvent::Media(MediaEvent::Subscribed { publication })) => {
                    state.subscribed(&call, publication, &packets_tx);
                }
                Some(CallEvent::Media(MediaEvent::Muted { publication, .. })) => state.muted(&publication, true),
                Some(CallEvent::Media(MediaEvent::Unmuted { publication, .. })) => state.muted(&publication, false),
                Some(CallEvent::Left { .. }) => break Ending::Stopped(StopReason::RoomEnded),
                None => break Ending::Aborted(AbortReason::RecorderLost),
                Some(_) => {}
            },
            _ = watchdog.tick() => {
                // Packets waiting in the queue arrived in time: a busy recorder is not a
                // silent one (their arrival times are taken in when they are read).
                if state.starved() && packets.is_empty() {
                    break Ending::Aborted(AbortReason::NoMedia);
                }
            }
        }
    };
    // What already arrived is recorded too.
    let mut ending = ending;
    if let Ending::Stopped(_) = ending {
        while let Ok((id, at, packet)) = packets.try_recv() {
            if state.packet(&id, at, &packet).is_err() {
                ending = Ending::Aborted(AbortReason::StorageFailed);
                break;
            }
        }
    }
    drop(packets);
    let (files, error) = state.finish();
    let ending = match (ending, error) {
        (Ending::Stopped(_), Some(e)) => {
            tracing::warn!(%recording, error = %e, "closing the recording failed");
            Ending::Aborted(AbortReason::StorageFailed)
        }
        (ending, _) => ending,
    };
    state.write_manifest(ending, Some(&files));
    let report = match ending {
        Ending::Stopped(reason) => RecorderReport::Stopped { reason, files },
        Ending::Aborted(reason) => RecorderReport::Failed {
            reason,
            message: String::new(),
        },
        Ending::Recording => unreachable!("the loop ends the recording"),
    };
    // Frames lost on the way (incomplete, or waiting for a key frame after a loss).
    let dropped = state.dropped + state.tracks.values().map(|t| t.frames.dropped).sum::<u64>();
    tracing::info!(%recording, ?ending, dropped, "recording ended");
    let _ = call.report_recording(recording, report).await;
    if let Ok(op) = call.leave().await {
        let _ = tokio::time::timeout(Duration::from_secs(2), call.outcome(op)).await;
    }
    call.close().await;
}

impl Job {
    fn wanted(&self, publication: &Publication) -> bool {
        publication.participant != self.me
            && match publication.kind {
                MediaKind::Audio => self.job.options.audio,
                _ => self.job.options.video,
            }
    }

    /// A track is published: its file expects it.
    fn published(&mut self, publication: &Publication) {
        if !self.wanted(publication) {
            return;
        }
        let (stem, record) = file_of(&publication.participant, publication.source);
        if !self.publications.contains_key(&publication.id) {
            self.publications
                .insert(publication.id.clone(), publication.muted);
            // The no-media timeout runs from the publication.
            self.last_packet = Instant::now();
        }
        self.participants.insert(publication.participant.clone());
        let total = self.total.clone();
        let first_part = self.parts.get(&stem).copied().unwrap_or(0);
        self.files
            .entry(stem.clone())
            .or_insert_with(|| {
                RecordingFile::new(stem, publication.participant.clone(), total, first_part)
            })
            .expect(publication.source, record);
    }

    /// A track is gone: when its file has no track left, the file is closed now.
    fn unpublished(&mut self, publication: &Publication) -> Result<(), FileError> {
        self.publications.remove(&publication.id);
        let Some(track) = self.tracks.remove(&publication.id) else {
            return Ok(());
        };
        self.dropped += track.frames.dropped;
        if self.tracks.values().any(|t| t.file == track.file) {
            return Ok(());
        }
        let Some(file) = self.files.remove(&track.file) else {
            return Ok(());
        };
        let storage = &self.ctx.storage;
        let recording = &self.job.recording;
        let (parts, error) = file.finish(&mut |name| Dest::open(storage.as_ref(), recording, name));
        let used = parts.len();
        *self.parts.entry(track.file).or_default() += used;
        self.closed.extend(parts);
        self.write_manifest(Ending::Recording, None);
        error.map_or(Ok(()), Err)
    }

    /// A track reaches the recorder: read it.
    fn subscribed(
        &mut self,
        call: &Call,
        publication: Publication,
        packets: &mpsc::Sender<(String, Instant, RtpPacket)>,
    ) {
        if !self.wanted(&publication) || self.tracks.contains_key(&publication.id) {
            return;
        }
        self.published(&publication);
        let Some(remote) = call.remote_track(&publication.id) else {
            return;
        };
        let (file, record) = file_of(&publication.participant, publication.source);
        let codec = match record {
            RecordTrack::Audio => Codec::Opus,
            _ => Codec::Vp8,
        };
        let mut keyframes =
            (codec == Codec::Vp8).then(|| KeyframeRequests::new(self.ctx.keyframe_interval));
        // Start at a key frame now rather than at the publisher's next one.
        let now = self.start.elapsed().as_millis() as u64;
        let ask = keyframes.as_mut().is_some_and(|k| k.due(now, true));
        self.tracks.insert(
            publication.id.clone(),
            Track {
                file,
                record,
                frames: FrameAssembler::new(codec),
                remote: remote.clone(),
                keyframes,
            },
        );
        let packets = packets.clone();
        let id = publication.id.clone();
        tokio::spawn(async move {
            if ask {
                let _ = remote.request_keyframe().await;
            }
            while let Some(packet) = remote.next_packet().await {
                if packets
                    .send((id.clone(), Instant::now(), packet))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }

    fn muted(&mut self, publication: &Publication, muted: bool) {
        if let Some(m) = self.publications.get_mut(&publication.id) {
            *m = muted;
        }
        if !muted {
            // The no-media timeout runs from the unmute.
            self.last_packet = Instant::now();
        }
    }

    /// No packet for longer than allowed while an unmuted track is published.
    fn starved(&self) -> bool {
        let live = self.publications.values().any(|muted| !muted);
        live && self.last_packet.elapsed() > self.ctx.no_media_timeout
    }

    fn packet(&mut self, id: &str, at: Instant, packet: &RtpPacket) -> Result<(), FileError> {
        self.last_packet = self.last_packet.max(at);
        let Some(track) = self.tracks.get_mut(id) else {
            return Ok(());
        };
        let arrival_ms = at.saturating_duration_since(self.start).as_millis() as u64;
        let frame = track.frames.push(packet, arrival_ms);
        if let Some(keyframes) = &mut track.keyframes {
            if frame.as_ref().is_some_and(|f| f.keyframe) {
                keyframes.keyframe(arrival_ms);
            }
            // After a loss (nothing is written until the next key frame), or periodically.
            if keyframes.due(arrival_ms, track.frames.needs_keyframe()) {
                let remote = track.remote.clone();
                tokio::spawn(async move {
                    let _ = remote.request_keyframe().await;
                });
            }
        }
        let Some(frame) = frame else {
            return Ok(());
        };
        let Some(file) = self.files.get_mut(&track.file) else {
            return Ok(());
        };
        let storage = &self.ctx.storage;
        let recording = &self.job.recording;
        file.push(track.record, frame, &mut |name| {
            Dest::open(storage.as_ref(), recording, name)
        })
    }

    /// Closes every file; returns them all, and the first error closing them.
    fn finish(&mut self) -> (Vec<RecordedFile>, Option<FileError>) {
        let storage = self.ctx.storage.clone();
        let recording = self.job.recording.clone();
        let mut all = std::mem::take(&mut self.closed);
        let mut first_error = None;
        let mut files: Vec<_> = self.files.drain().collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, file) in files {
            let (parts, error) =
                file.finish(&mut |name| Dest::open(storage.as_ref(), &recording, name));
            all.extend(parts);
            if first_error.is_none() {
                first_error = error;
            }
        }
        (all, first_error)
    }

    fn write_manifest(&self, ending: Ending, files: Option<&[RecordedFile]>) {
        let open: Vec<RecordedFile>;
        let files = match files {
            Some(files) => files,
            None => {
                open = self
                    .closed
                    .iter()
                    .cloned()
                    .chain(self.files.values().flat_map(|f| f.files()))
                    .collect();
                &open
            }
        };
        let manifest = Manifest {
            room: &self.job.room,
            recording: &self.job.recording,
            recorder: &self.me,
            started_at: self.started_at,
            stopped_at: (!matches!(ending, Ending::Recording)).then(unix_ms),
            ending,
            participants: self.participants.iter().collect(),
            files,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        if let Err(e) = self.ctx.storage.put(&self.job.recording, MANIFEST, &bytes) {
            tracing::warn!(recording = %self.job.recording, error = %e, "cannot write the manifest");
        }
    }
}

//! Recording jobs: which recorder records which room, and the room's recording state as it
//! follows what the recorder reports. Sans-IO like the rest of the core.
//!
//! A recorder is a session whose token has the `recorder` grant and that said `recorder_ready`.
//! `start_recording` makes a job and hands it to the least busy recorder (`record_job`); the
//! recorder joins the room in the `recorder` role on a session of its own (`recorder_join`)
//! and reports `recording`, then `stopped` (with its files) or `failed`. A job ends abnormally
//! (`recording_aborted`) when the recorder reports a failure, when its session or its member
//! is lost, or when no recorder has begun recording within the start timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::model::{
    AbortReason, OperationId, PropertyChanges, Reason, RecordingId, RecordingJob, RecordingOptions,
    RecordingPolicy, RecordingState, Role, RoomId, StopReason, UserId,
};
use crate::protocol::{ErrorCode, RecorderReport, ServerFrame};

use super::Hub;
use super::io::{Emit, Millis, Refusal, SessionId, refuse};

/// The core's recording jobs and recorders.
#[derive(Default)]
pub(super) struct RecorderBook {
    /// Sessions that take jobs, with how many they hold.
    agents: BTreeMap<SessionId, usize>,
    jobs: HashMap<RecordingId, Job>,
    /// Jobs no recorder has taken yet, oldest first.
    waiting: VecDeque<RecordingId>,
    /// Jobs that must be recording by then.
    deadlines: BTreeSet<(Millis, RecordingId)>,
    /// The embedded recorder was asked for (it is started once).
    embedded_asked: bool,
    made: u64,
}

struct Job {
    room: RoomId,
    options: RecordingOptions,
    by: UserId,
    /// The recorder session that took it, and its user (whose sessions may join and report).
    agent: Option<SessionId>,
    owner: Option<UserId>,
    /// The recorder's member session in the room, once it joined.
    member: Option<SessionId>,
    deadline: Millis,
}

impl Job {
    /// The recorder members see: the owner, once its member joined.
    fn recorder(&self) -> Option<UserId> {
        self.member.and(self.owner.clone())
    }
}

impl RecorderBook {
    /// When a job's start timeout next runs out.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Recorders taking jobs.
    pub(super) fn agents(&self) -> usize {
        self.agents.len()
    }

    fn least_busy(&self) -> Option<SessionId> {
        self.agents
            .iter()
            .min_by_key(|(conn, jobs)| (**jobs, **conn))
            .map(|(conn, _)| *conn)
    }

    /// Moves job `recording`'s deadline to `at` (a stop: the recorder must finish by then).
    fn postpone(&mut self, recording: &RecordingId, at: Millis) {
        if let Some(job) = self.jobs.get_mut(recording) {
            self.deadlines.remove(&(job.deadline, recording.clone()));
            job.deadline = at;
            self.deadlines.insert((at, recording.clone()));
        }
    }

    /// Whether session `conn` takes jobs or records one.
    pub(super) fn is_recorder(&self, conn: SessionId) -> bool {
        self.agents.contains_key(&conn) || self.job_of_member(conn).is_some()
    }

    /// The job recorded by member session `conn`, if any.
    fn job_of_member(&self, conn: SessionId) -> Option<RecordingId> {
        self.jobs
            .iter()
            .find(|(_, job)| job.member == Some(conn))
            .map(|(id, _)| id.clone())
    }
}

impl Hub {
    /// Whether session `conn` is a recorder's (it is not held for a resume).
    pub(super) fn is_recorder(&self, conn: SessionId) -> bool {
        self.recorders.is_recorder(conn)
    }

    /// `start_recording` by `by` (checked: a host of `room` with the `record` grant, or the
    /// server API).
    pub(super) fn start_recording(
        &mut self,
        by: UserId,
        room: RoomId,
        options: RecordingOptions,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        if let Err(message) = options.validate() {
            return refuse(ErrorCode::InvalidParam, message);
        }
        let current = &self.rooms[&room].properties.recording;
        if current.active().is_some() {
            return refuse(ErrorCode::AlreadyRecording, "the room is already recording");
        }
        let agent = self.recorders.least_busy();
        if agent.is_none() && !self.config.embedded_recorder {
            return refuse(
                ErrorCode::NoRecorder,
                "no recorder is connected to this server",
            );
        }
        self.recorders.made += 1;
        let id = RecordingId::from(format!("rec-{}-{}", self.now, self.recorders.made));
        let deadline = self.now + self.config.recorder_start_timeout_ms;
        self.recorders.jobs.insert(
            id.clone(),
            Job {
                room: room.clone(),
                options,
                by: by.clone(),
                agent: None,
                owner: None,
                member: None,
                deadline,
            },
        );
        self.recorders.deadlines.insert((deadline, id.clone()));
        match agent {
            Some(agent) => self.assign(&id, agent, out),
            None => {
                self.recorders.waiting.push_back(id.clone());
                if !self.recorders.embedded_asked {
                    self.recorders.embedded_asked = true;
                    out.push(Emit::StartRecorder);
                }
            }
        }
        self.set_recording(
            &room,
            RecordingState::Starting {
                recording: id,
                by: by.clone(),
            },
            by,
            out,
        );
        Ok(())
    }

    /// Room `room` was just made by `conn`'s join: it records from its start if the server
    /// says so, or the creator's token (with the `record` grant). If no recorder can take it,
    /// the state says `failed` (`no_recorder`) so that the members see it is not recorded.
    pub(super) fn record_from_start(
        &mut self,
        conn: SessionId,
        room: &RoomId,
        out: &mut Vec<Emit>,
    ) {
        let identity = &self.sessions[&conn].identity;
        let by = identity.user.clone();
        let options = self.rooms[room]
            .options
            .auto_record
            .clone()
            .or_else(|| identity.record.clone().filter(|_| identity.grants.record))
            .or_else(|| self.config.auto_record.clone());
        let Some(options) = options else {
            return;
        };
        let Err(refusal) = self.start_recording(by.clone(), room.clone(), options.clone(), out)
        else {
            return;
        };
        // It cannot start: the members hear so, as of an aborted recording (and with the
        // `required` policy the call ends).
        let reason = match refusal.code {
            ErrorCode::NoRecorder => AbortReason::NoRecorder,
            _ => AbortReason::RecorderFailed,
        };
        self.recorders.made += 1;
        let id = RecordingId::from(format!("rec-{}-{}", self.now, self.recorders.made));
        let deadline = self.now;
        self.recorders.jobs.insert(
            id.clone(),
            Job {
                room: room.clone(),
                options,
                by,
                agent: None,
                owner: None,
                member: None,
                deadline,
            },
        );
        self.abort_recording(&id, reason, out);
    }

    fn assign(&mut self, id: &RecordingId, agent: SessionId, out: &mut Vec<Emit>) {
        let Some(job) = self.recorders.jobs.get_mut(id) else {
            return;
        };
        job.agent = Some(agent);
        job.owner = self.sessions.get(agent).map(|l| l.user().clone());
        *self.recorders.agents.entry(agent).or_default() += 1;
        out.push(Emit::Send {
            to: agent,
            frame: ServerFrame::RecordJob {
                job: RecordingJob {
                    recording: id.clone(),
                    room: job.room.clone(),
                    options: job.options.clone(),
                },
            },
        });
    }

    /// `recorder_ready` from `conn`: it takes jobs, the waiting ones first.
    pub(super) fn recorder_ready(&mut self, conn: SessionId, out: &mut Vec<Emit>) {
        self.recorders.agents.entry(conn).or_default();
        while let Some(id) = self.recorders.waiting.pop_front() {
            self.assign(&id, conn, out);
        }
    }

    /// `recorder_join` from `conn`: a recorder session joins the room of its job.
    pub(super) fn recorder_join(
        &mut self,
        conn: SessionId,
        op: OperationId,
        recording: &RecordingId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = &self.sessions[&conn];
        if let Some(current) = &login.room {
            return refuse(
                ErrorCode::AlreadyJoined,
                format!("already in room `{current}`"),
            );
        }
        let user = login.user().clone();
        let job = self
            .recorders
            .jobs
            .get(recording)
            .filter(|job| job.member.is_none() && job.owner.as_ref() == Some(&user))
            .ok_or_else(|| Refusal::new(ErrorCode::NoSuchRecording, "not a job of yours"))?;
        let room_id = job.room.clone();
        let Some(room) = self.rooms.get(&room_id) else {
            return refuse(ErrorCode::NoSuchRecording, "the room is gone");
        };
        if room.has_user(&user) {
            return refuse(
                ErrorCode::DuplicateUser,
                format!("`{user}` is already in room `{room_id}`"),
            );
        }
        let participant = crate::model::Participant {
            role: Role::Recorder,
            ..self.sessions[&conn].participant(Some("Recorder".into()))
        };
        let media = self.rooms.new_media_id();
        let room = self.rooms.get_mut(&room_id).expect("looked up above");
        room.join(conn, media, op, participant, true, out);
        room.flush_offers(out);
        self.rooms.occupied(&room_id);
        self.set_room(conn, Some(room_id));
        if let Some(job) = self.recorders.jobs.get_mut(recording) {
            job.member = Some(conn);
        }
        Ok(())
    }

    /// `recording_report` from `conn`, a session of the job's recorder.
    pub(super) fn recording_report(
        &mut self,
        conn: SessionId,
        recording: RecordingId,
        report: RecorderReport,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let user = self.sessions[&conn].user().clone();
        let Some(job) = self
            .recorders
            .jobs
            .get(&recording)
            .filter(|job| job.owner.as_ref() == Some(&user))
        else {
            return refuse(ErrorCode::NoSuchRecording, "not a job of yours");
        };
        match report {
            RecorderReport::Recording => {
                let starting = self.rooms.get(&job.room).is_some_and(|r| {
                    matches!(&r.properties.recording,
                        RecordingState::Starting { recording: id, .. } if *id == recording)
                });
                // Repeated, or late (a host stopped it meanwhile): nothing changes.
                if job.member.is_none() || !starting {
                    return Ok(());
                }
                let deadline = job.deadline;
                let (room, by) = (job.room.clone(), job.by.clone());
                self.recorders
                    .deadlines
                    .remove(&(deadline, recording.clone()));
                let state = RecordingState::Recording {
                    recording: recording.clone(),
                    by: by.clone(),
                    since: self.now,
                    recorder: user.clone(),
                };
                self.set_recording(&room, state, user.clone(), out);
                self.room_event(
                    &room,
                    |room, seq| ServerFrame::RecordingStarted {
                        room,
                        seq,
                        recording,
                        recorder: user,
                        by,
                    },
                    out,
                );
            }
            RecorderReport::Stopped { reason, files } => {
                let Some(job) = self.finish_job(&recording) else {
                    return Ok(());
                };
                if let Some(r) = self.rooms.get_mut(&job.room)
                    && r.properties.recording.active() == Some(&recording)
                {
                    self.set_recording(&job.room, RecordingState::Idle, user, out);
                    self.room_event(
                        &job.room,
                        |room, seq| ServerFrame::RecordingStopped {
                            room,
                            seq,
                            recording,
                            reason,
                            files,
                        },
                        out,
                    );
                }
            }
            RecorderReport::Failed { reason, .. } => self.abort_recording(&recording, reason, out),
        }
        Ok(())
    }

    /// `stop_recording` by `host` (checked: a host of `room` with the `record` grant, or the
    /// server API).
    pub(super) fn stop_recording(
        &mut self,
        host: UserId,
        room: &RoomId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let state = self.rooms[room].properties.recording.clone();
        let (recording, by) = match state {
            RecordingState::Starting { recording, by }
            | RecordingState::Recording { recording, by, .. } => (recording, by),
            RecordingState::Stopping { .. } => {
                return refuse(ErrorCode::NotRecording, "the recording is already stopping");
            }
            _ => return refuse(ErrorCode::NotRecording, "the room is not recording"),
        };
        let (agent, recorder) = match self.recorders.jobs.get(&recording) {
            Some(job) => (job.agent, job.recorder()),
            None => (None, None),
        };
        match (agent, recorder) {
            (Some(agent), Some(recorder)) => {
                // The recorder has as long to close its files as it had to begin.
                let by_then = self.now + self.config.recorder_start_timeout_ms;
                self.recorders.postpone(&recording, by_then);
                out.push(Emit::Send {
                    to: agent,
                    frame: ServerFrame::RecordStop {
                        recording: recording.clone(),
                        reason: StopReason::Requested,
                    },
                });
                let state = RecordingState::Stopping {
                    recording,
                    by,
                    recorder,
                };
                self.set_recording(room, state, host, out);
            }
            _ => {
                // Nothing recorded yet: the job ends here, with no files.
                if let Some(agent) = self.finish_job(&recording).and_then(|job| job.agent) {
                    out.push(Emit::Send {
                        to: agent,
                        frame: ServerFrame::RecordStop {
                            recording: recording.clone(),
                            reason: StopReason::Requested,
                        },
                    });
                }
                self.set_recording(room, RecordingState::Idle, host, out);
                self.room_event(
                    room,
                    |room, seq| ServerFrame::RecordingStopped {
                        room,
                        seq,
                        recording,
                        reason: StopReason::Requested,
                        files: Vec::new(),
                    },
                    out,
                );
            }
        }
        Ok(())
    }

    /// Ends job `recording` abnormally: every member hears why, and with the `required`
    /// policy the call ends for everyone.
    pub(super) fn abort_recording(
        &mut self,
        recording: &RecordingId,
        reason: AbortReason,
        out: &mut Vec<Emit>,
    ) {
        let Some(job) = self.finish_job(recording) else {
            return;
        };
        let recorder = job.recorder();
        if let Some(agent) = job.agent.filter(|a| self.sessions.contains(*a)) {
            out.push(Emit::Send {
                to: agent,
                frame: ServerFrame::RecordStop {
                    recording: recording.clone(),
                    reason: StopReason::RoomEnded,
                },
            });
        }
        if !self.rooms.contains(&job.room) {
            return;
        }
        let shut_down = job.options.policy == RecordingPolicy::Required;
        let state = RecordingState::Failed {
            recording: recording.clone(),
            reason,
            recorder: recorder.clone(),
        };
        let by = recorder.clone().unwrap_or_else(|| job.by.clone());
        self.set_recording(&job.room, state, by, out);
        self.room_event(
            &job.room,
            |room, seq| ServerFrame::RecordingAborted {
                room,
                seq,
                recording: recording.clone(),
                recorder,
                reason,
                shut_down,
            },
            out,
        );
        if shut_down {
            let members = self.with_room(&job.room, |r, out| r.shut_down(job.by.clone(), out), out);
            for member in members {
                self.set_room(member, None);
                self.caller_left(member, Reason::RecordingFailed, true, out);
            }
        }
    }

    /// Takes job `recording` out of the books.
    fn finish_job(&mut self, recording: &RecordingId) -> Option<Job> {
        let job = self.recorders.jobs.remove(recording)?;
        self.recorders
            .deadlines
            .remove(&(job.deadline, recording.clone()));
        self.recorders.waiting.retain(|w| w != recording);
        if let Some(agent) = job.agent
            && let Some(jobs) = self.recorders.agents.get_mut(&agent)
        {
            *jobs = jobs.saturating_sub(1);
        }
        Some(job)
    }

    /// Session `conn` ended: a recorder's jobs are lost with it; a recorder member that left
    /// its room lost its job.
    pub(super) fn recording_session_ended(&mut self, conn: SessionId, out: &mut Vec<Emit>) {
        if self.recorders.agents.remove(&conn).is_some() {
            // The next recording with no recorder connected asks for the embedded one again.
            self.recorders.embedded_asked = false;
            let lost: Vec<RecordingId> = self
                .recorders
                .jobs
                .iter()
                .filter(|(_, job)| job.agent == Some(conn))
                .map(|(id, _)| id.clone())
                .collect();
            for id in lost {
                self.abort_recording(&id, AbortReason::RecorderLost, out);
            }
        }
        self.recording_member_left(conn, out);
    }

    /// Member session `conn` left its room: if it was recording it, the job is lost.
    pub(super) fn recording_member_left(&mut self, conn: SessionId, out: &mut Vec<Emit>) {
        if let Some(id) = self.recorders.job_of_member(conn) {
            self.abort_recording(&id, AbortReason::RecorderLost, out);
        }
    }

    /// Someone left `room`: when only recorders are left, the call is over and so are its
    /// recordings.
    pub(super) fn recording_after_departure(&mut self, room: &RoomId, out: &mut Vec<Emit>) {
        let only_recorders = self.rooms.get(room).is_none_or(|r| {
            r.members
                .iter()
                .all(|m| m.participant.role == Role::Recorder)
        });
        if only_recorders {
            self.room_recordings_over(room, out);
        }
    }

    /// The call in `room` is over (ended, or everyone left): its recordings stop, reason
    /// `room_ended`.
    pub(super) fn room_recordings_over(&mut self, room: &RoomId, out: &mut Vec<Emit>) {
        let over: Vec<RecordingId> = self
            .recorders
            .jobs
            .iter()
            .filter(|(_, job)| &job.room == room)
            .map(|(id, _)| id.clone())
            .collect();
        let recorder = self.rooms.get(room).and_then(|r| {
            r.members
                .iter()
                .find(|m| m.participant.role == Role::Recorder)
                .map(|m| m.participant.user_id.clone())
        });
        let active = self
            .rooms
            .get(room)
            .is_some_and(|r| r.properties.recording.active().is_some());
        if let Some(by) = recorder.filter(|_| active) {
            // The recorder is still in the room, closing its files: the state says idle at
            // once, so that whoever comes back may record again.
            self.set_recording(room, RecordingState::Idle, by, out);
        }
        for id in over {
            let Some(job) = self.finish_job(&id) else {
                continue;
            };
            // The members are gone or going; the backend hears the recording is over (its
            // files are in the recorder's manifest: the job is over before it reports them).
            out.push(Emit::Notice(crate::model::ServerEvent::RecordingStopped {
                room: room.clone(),
                recording: id.clone(),
                reason: StopReason::RoomEnded,
                files: Vec::new(),
            }));
            if let Some(agent) = job.agent {
                out.push(Emit::Send {
                    to: agent,
                    frame: ServerFrame::RecordStop {
                        recording: id,
                        reason: StopReason::RoomEnded,
                    },
                });
            }
        }
    }

    /// Jobs not recording by their start deadline end, reason `no_recorder`.
    pub(super) fn expire_recordings(&mut self, out: &mut Vec<Emit>) {
        while let Some((at, id)) = self.recorders.deadlines.first().cloned() {
            if at > self.now {
                break;
            }
            self.recorders.deadlines.pop_first();
            let reason = match self.recorders.jobs.get(&id) {
                Some(job) if job.member.is_some() => AbortReason::RecorderFailed,
                Some(job) if job.agent.is_none() => {
                    // The embedded recorder never came: ask for it again next time.
                    self.recorders.embedded_asked = false;
                    AbortReason::NoRecorder
                }
                _ => AbortReason::NoRecorder,
            };
            self.abort_recording(&id, reason, out);
        }
    }

    /// Broadcasts to `room`'s members the room event `make` builds from its id and next `seq`.
    fn room_event(
        &mut self,
        room: &RoomId,
        make: impl FnOnce(RoomId, u64) -> ServerFrame,
        out: &mut Vec<Emit>,
    ) {
        if let Some(r) = self.rooms.get_mut(room) {
            let seq = r.next_seq();
            let frame = make(r.id.clone(), seq);
            r.broadcast(r.conns(), frame, out);
        }
    }

    fn set_recording(
        &mut self,
        room: &RoomId,
        state: RecordingState,
        by: UserId,
        out: &mut Vec<Emit>,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.properties.recording == state {
            return;
        }
        r.properties.recording = state;
        let changes = PropertyChanges {
            recording: true,
            ..Default::default()
        };
        r.emit_properties(changes, by, out);
    }
}

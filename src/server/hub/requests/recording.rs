//! Recording requests: a host starting and stopping it, a recorder taking and reporting its jobs.
//! Each handler checks what its request needs and carries it out; `mod.rs` dispatches.

use crate::model::{OperationId, RecordingId, RecordingOptions};
use crate::protocol::RecorderReport;

use super::super::Hub;
use super::super::io::{Emit, Refusal, SessionId};
use super::{RECORD, done};

impl Hub {
    /// `start_recording`: see [`ClientFrame::StartRecording`](crate::protocol::ClientFrame::StartRecording).
    pub(super) fn start_recording_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        options: RecordingOptions,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, Some(RECORD))?;
        self.rooms[&room].require_host(conn, "record")?;
        let by = self.sessions[&conn].user().clone();
        self.start_recording(by, room, options, out)?;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `stop_recording`: see [`ClientFrame::StopRecording`](crate::protocol::ClientFrame::StopRecording).
    pub(super) fn stop_recording_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, Some(RECORD))?;
        self.rooms[&room].require_host(conn, "record")?;
        let by = self.sessions[&conn].user().clone();
        self.stop_recording(by, &room, out)?;
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `recorder_ready`: see [`ClientFrame::RecorderReady`](crate::protocol::ClientFrame::RecorderReady).
    pub(super) fn recorder_ready_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = self.login(conn)?;
        login.require(login.identity.grants.recorder, "recording jobs")?;
        self.recorder_ready(conn, out);
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `recorder_join`: see [`ClientFrame::RecorderJoin`](crate::protocol::ClientFrame::RecorderJoin).
    pub(super) fn recorder_join_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        recording: RecordingId,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = self.login(conn)?;
        login.require(login.identity.grants.recorder, "recording jobs")?;
        self.recorder_join(conn, op, &recording, out)
    }

    /// `recording_report`: see [`ClientFrame::RecordingReport`](crate::protocol::ClientFrame::RecordingReport).
    pub(super) fn recording_report_request(
        &mut self,
        conn: SessionId,
        recording: RecordingId,
        report: RecorderReport,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let login = self.login(conn)?;
        login.require(login.identity.grants.recorder, "recording jobs")?;
        self.recording_report(conn, recording, report, out)
    }
}

//! Recording frames: a room's recordings, and a recorder's jobs.

use crate::event::{CallEvent, RecordingEvent};
use crate::protocol::ServerFrame;

use super::{Handled, Session};

impl Session {
    /// Takes `frame` if it is one of this area's: `None` then, else the frame back.
    pub(super) fn recording_frame(
        &mut self,
        frame: ServerFrame,
        out: &mut Handled,
    ) -> Option<ServerFrame> {
        match frame {
            ServerFrame::RecordingStarted {
                room,
                seq,
                recording,
                recorder,
                by,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Started {
                            room,
                            seq,
                            recording,
                            recorder,
                            by,
                        }));
                }
            }
            ServerFrame::RecordingStopped {
                room,
                seq,
                recording,
                reason,
                files,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Stopped {
                            room,
                            seq,
                            recording,
                            reason,
                            files,
                        }));
                }
            }
            ServerFrame::RecordingAborted {
                room,
                seq,
                recording,
                recorder,
                reason,
                shut_down,
            } => {
                if self.advance(&room, seq).is_some() {
                    out.events
                        .push(CallEvent::Recording(RecordingEvent::Aborted {
                            room,
                            seq,
                            recording,
                            shut_down,
                            recorder,
                            reason,
                        }));
                }
            }
            ServerFrame::RecordJob { job } => {
                out.events
                    .push(CallEvent::Recording(RecordingEvent::Job(job)));
            }
            ServerFrame::RecordStop { recording, reason } => {
                out.events
                    .push(CallEvent::Recording(RecordingEvent::StopAsked {
                        recording,
                        reason,
                    }));
            }
            other => return Some(other),
        }
        None
    }
}

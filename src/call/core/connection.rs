//! The call's socket, as the core sees it: online or not, the resume handshake on a new socket
//! (resume; when the server lost the session, log in again and rejoin), the frames held while
//! offline, and what the connection policy ([`LinkCore`](super::LinkCore)) says.

use crate::event::{CallEvent, OpError};
use crate::model::Reason;
use crate::protocol::{ClientFrame, ErrorCode, PROTOCOL_VERSION, ServerFrame};

use super::super::policy::link::{Attempted, LinkOutput};
use super::{ClientCore, Now, Output};

/// Frames without an answer (ICE candidates, reports) held while reconnecting, at most.
const HELD_FRAMES: usize = 256;

/// Where the socket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Serving a socket: requests go out at once.
    Online,
    /// No socket; the policy says when to try again.
    Offline,
    /// A socket is being opened.
    Opening,
    /// `resume` sent; waiting for `resumed` (or `unknown_session`).
    Resuming,
    /// Resumed; this many replayed frames are still to come.
    Replaying(u64),
    /// The server lost the session: `hello` sent on the same socket, waiting for `welcome`.
    LoggingIn,
}

/// The socket's state in the core.
#[derive(Debug)]
pub(super) struct Connection {
    phase: Phase,
    /// The current session's resume key (from its `welcome`).
    pub(super) resume_key: String,
    /// Frames without an answer that came while offline, a bounded number.
    held: Vec<String>,
}

impl Connection {
    pub(super) fn new(resume_key: String) -> Self {
        Connection {
            phase: Phase::Online,
            resume_key,
            held: Vec::new(),
        }
    }

    pub(super) fn online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// A frame that expects no answer: sent now, or held (a bounded number) until the
    /// connection is back.
    pub(super) fn send_or_hold(&mut self, text: String, out: &mut Vec<Output>) {
        if self.online() {
            out.push(Output::Send(text));
        } else if self.held.len() < HELD_FRAMES {
            self.held.push(text);
        }
    }
}

impl ClientCore {
    /// Does what the connection policy said.
    pub(super) fn link_outputs(&mut self, outputs: Vec<LinkOutput>) {
        for output in outputs {
            match output {
                LinkOutput::Finish(reason) => {
                    // `Finished` closes the socket, if there is one, with a close frame.
                    self.finish(reason);
                    return;
                }
                LinkOutput::Offline => {
                    self.connection.phase = Phase::Offline;
                    self.out.push(Output::Disconnect);
                }
                LinkOutput::Reconnecting { attempt, reason } => self
                    .out
                    .push(Output::Event(CallEvent::Reconnecting { attempt, reason })),
                LinkOutput::Ping => {
                    let taken = self.session.taken();
                    let ping = ClientFrame::Ping {
                        received: taken.received,
                        room: taken.room,
                        seq: taken.seq,
                    };
                    self.out.push(Output::Send(crate::protocol::encode(&ping)));
                }
                LinkOutput::Attempt => {
                    self.connection.phase = Phase::Opening;
                    self.out.push(Output::Connect);
                }
                LinkOutput::Abandon => {
                    self.connection.phase = Phase::Offline;
                    self.out.push(Output::Disconnect);
                }
                // Set when the handshake ended (`connected`).
                LinkOutput::Online => {}
            }
        }
    }

    /// The socket broke or closed, or the server said goodbye asking to reconnect.
    pub(super) fn socket_lost(&mut self, now: Now, reason: Reason) {
        let outputs = self.link.lost(now.at, reason);
        if self.connection.phase != Phase::Online {
            // During a handshake the policy is attempting: the attempt failed.
            self.connection.phase = Phase::Offline;
            self.out.push(Output::Disconnect);
        }
        self.link_outputs(outputs);
    }

    /// The new socket is open: resume the session on it, with the newest token.
    pub(super) fn opened(&mut self) {
        if self.connection.phase != Phase::Opening {
            // Abandoned meanwhile: not this attempt's socket.
            return;
        }
        let taken = self.session.taken();
        let resume = ClientFrame::Resume {
            version: PROTOCOL_VERSION,
            token: self.token.newest().to_owned(),
            resume_key: self.connection.resume_key.clone(),
            received: taken.received,
            room: taken.room,
            seq: taken.seq,
        };
        self.connection.phase = Phase::Resuming;
        self.out
            .push(Output::Send(crate::protocol::encode(&resume)));
    }

    /// The socket could not be opened, or the handshake broke.
    pub(super) fn attempt_failed(&mut self, now: Now) {
        if matches!(self.connection.phase, Phase::Online | Phase::Offline) {
            return;
        }
        self.connection.phase = Phase::Offline;
        self.out.push(Output::Disconnect);
        let outputs = self.link.attempted(now.at, Attempted::Failed);
        self.link_outputs(outputs);
    }

    /// A frame during the handshake.
    pub(super) fn handshake(&mut self, now: Now, frame: ServerFrame, n: Option<u64>) {
        match (self.connection.phase, frame) {
            (Phase::Resuming, frame @ ServerFrame::Resumed { .. }) => {
                let ServerFrame::Resumed {
                    replayed,
                    ref resync,
                    ..
                } = frame
                else {
                    unreachable!("matched above")
                };
                if resync.is_none() {
                    self.out
                        .push(Output::Event(CallEvent::Reconnected { replayed }));
                }
                // A resync's state (and its event) comes from the session.
                self.frame(now, frame, n);
                self.connection.phase = Phase::Replaying(replayed);
                self.replayed(now);
            }
            (Phase::Replaying(left), frame) => {
                self.frame(now, frame, n);
                self.connection.phase = Phase::Replaying(left.saturating_sub(1));
                self.replayed(now);
            }
            (
                Phase::Resuming,
                ServerFrame::Error {
                    code: ErrorCode::UnknownSession,
                    ..
                },
            ) => {
                let hello = ClientFrame::Hello {
                    version: PROTOCOL_VERSION,
                    token: self.token.newest().to_owned(),
                };
                self.connection.phase = Phase::LoggingIn;
                self.out.push(Output::Send(crate::protocol::encode(&hello)));
            }
            (
                Phase::LoggingIn,
                ServerFrame::Welcome {
                    resume_key,
                    expires_at,
                    ..
                },
            ) => {
                self.connection.resume_key = resume_key;
                self.connection.held.clear();
                // The `hello` carried the newest token: the new session's own.
                self.token.logged_in_with_newest();
                self.token.expires(now, expires_at);
                self.connected(now, true);
            }
            (Phase::Resuming | Phase::LoggingIn, ServerFrame::Error { code, message, .. }) => {
                tracing::warn!(error = %OpError { code, message }, "reconnecting refused");
                self.connection.phase = Phase::Offline;
                self.out.push(Output::Disconnect);
                let outputs = self.link.attempted(now.at, Attempted::Refused(code));
                self.link_outputs(outputs);
            }
            (phase, frame) => {
                tracing::debug!(?phase, ?frame, "unexpected frame while connecting");
                self.attempt_failed(now);
            }
        }
    }

    /// The replay is over once every replayed frame is in.
    fn replayed(&mut self, now: Now) {
        if self.connection.phase == Phase::Replaying(0) {
            self.connected(now, false);
        }
    }

    /// Back online, on the old session or (`fresh`) a new one: what is unanswered goes out
    /// again, then what was held.
    fn connected(&mut self, now: Now, fresh: bool) {
        self.connection.phase = Phase::Online;
        if fresh {
            self.session_lost(now);
        }
        for (_, text) in self.session.unanswered() {
            self.out.push(Output::Send(text));
        }
        for text in self.connection.held.drain(..) {
            self.out.push(Output::Send(text));
        }
        let outputs = self.link.attempted(now.at, Attempted::Connected);
        self.link_outputs(outputs);
    }

    /// The server lost the session (the connection that came back is on a new one): the
    /// session fails what was unanswered, and the call joins its room again.
    fn session_lost(&mut self, now: Now) {
        let (handled, rejoin) = self.session.lost();
        self.handled(now, handled);
        match rejoin {
            // Sent with the other unanswered requests (there are none left but this).
            Some(rejoin) => {
                self.session
                    .request(crate::event::OperationKind::Rejoin, None, |op| {
                        rejoin.frame(op)
                    });
            }
            None => self
                .out
                .push(Output::Event(CallEvent::Reconnected { replayed: 0 })),
        }
    }
}

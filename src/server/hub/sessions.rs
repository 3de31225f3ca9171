//! Sessions and their connections: a session (made by `hello`) outlives a lost connection for
//! the grace period, keeps its room seat meanwhile (the room sees the member `reconnecting`), and
//! a new connection that `resume`s it gets what it missed. Every request is applied once per
//! session, however often a client sends it again. And the last step of every input: frames
//! addressed to sessions become frames for their connections ([`Hub::route`]), each kept in the
//! session's outbox until the client acknowledges it.

use std::sync::Arc;

use crate::model::{ConnectionState, Reason, RoomId};
use crate::protocol::{ClientFrame, ErrorCode, Resync, ServerFrame};

use super::outbox::{Repeat, Taken};
use super::{ConnId, Emit, Hub, Output, Refusal, SessionId, refuse};

impl Hub {
    /// A frame from connection `conn`: a login (`hello`, `resume`) is the connection's own;
    /// anything else is its session's.
    pub(super) fn frame_from(&mut self, conn: ConnId, frame: ClientFrame, out: &mut Vec<Emit>) {
        let op = frame.op();
        let result = match frame {
            ClientFrame::Resume {
                version,
                token,
                resume_key,
                received,
                room,
                seq,
            } => {
                let taken = (received, room, seq);
                self.resume(conn, version, &token, &resume_key, taken, out)
            }
            ClientFrame::Ping {
                received,
                room,
                seq,
            } => {
                if let Some(session) = self.sessions.carried_by(conn)
                    && let Some(login) = self.sessions.get_mut(session)
                {
                    login.outbox.acknowledge(Taken {
                        received,
                        room: room.as_ref(),
                        seq,
                    });
                }
                out.push(direct(conn, ServerFrame::Pong {}));
                Ok(())
            }
            ClientFrame::Hello { version, token } => self.hello(conn, version, &token, out),
            frame => {
                // A connection without a session (never logged in, or one whose session
                // another connection took over) may not act as one.
                let Some(session) = self.sessions.carried_by(conn) else {
                    let refusal = Refusal::new(ErrorCode::NotLoggedIn, "log in with hello first");
                    out.push(direct(conn, refusal.into_frame(op)));
                    return;
                };
                let repeat = match (op, self.sessions.get_mut(session)) {
                    (Some(op), Some(login)) => login.outbox.request(op),
                    _ => Repeat::New,
                };
                match repeat {
                    Repeat::New => self.frame(session, frame, out).map_err(|r| (session, r)),
                    // Applied already: its answer is on its way, or is sent again as it was.
                    Repeat::Pending => Ok(()),
                    Repeat::Answered(answers) => {
                        for (n, frame) in answers {
                            out.push(Emit::Deliver {
                                to: conn,
                                n: Some(n),
                                frame,
                            });
                        }
                        Ok(())
                    }
                    Repeat::Acknowledged => Err((
                        session,
                        Refusal::new(
                            ErrorCode::DuplicateRequest,
                            "this operation was answered, and the answer acknowledged",
                        ),
                    )),
                }
                .map_or_else(
                    |(to, refusal)| {
                        out.push(Emit::Send {
                            to,
                            frame: refusal.into_frame(op),
                        })
                    },
                    |()| {},
                );
                return;
            }
        };
        if let Err(refusal) = result {
            // To this connection, whatever session its id may name.
            out.push(direct(conn, refusal.into_frame(op)));
        }
    }

    /// The key a later connection resumes session `session` with: the session's id and an
    /// HMAC of it under this run's secret, so it cannot be guessed, and a key from another run
    /// (before a restart) names no session of this one. A `resume` needs a valid token of the
    /// session's user too.
    pub(super) fn resume_key(&self, session: SessionId) -> String {
        let tag = crate::auth::hex(&key_tag(&self.config.resume_secret, session));
        format!("{session}.{tag}")
    }

    fn session_of_key(&self, key: &str) -> Option<SessionId> {
        use hmac::Mac;
        let (session, tag) = key.split_once('.')?;
        let session: SessionId = session.parse().ok()?;
        if tag.len() != 2 * KEY_TAG_LEN || !tag.is_ascii() {
            return None;
        }
        let tag: Vec<u8> = (0..KEY_TAG_LEN)
            .map(|i| u8::from_str_radix(&tag[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        // A constant-time comparison of the tag.
        key_mac(&self.config.resume_secret, session)
            .verify_truncated_left(&tag)
            .ok()
            .map(|()| session)
    }

    fn resume(
        &mut self,
        conn: ConnId,
        version: u32,
        token: &str,
        key: &str,
        (received, room, seq): (u64, Option<RoomId>, Option<u64>),
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let identity = self.logging_in(conn, version, token)?;
        let unknown = || {
            refuse(
                ErrorCode::UnknownSession,
                "no such session here (the server restarted, or its grace period ran out)",
            )
        };
        let Some(session) = self.session_of_key(key) else {
            return unknown();
        };
        if self
            .sessions
            .get(session)
            .is_none_or(|login| login.identity.user != identity.user)
        {
            return unknown();
        }
        // The new token is the session's from now on (a refreshed one, or one with other
        // rights).
        self.replace_identity(session, identity)?;
        // The new connection takes over (an old one the server still holds is a ghost: the
        // client would not resume otherwise).
        if let Some(old) = self.sessions.reconnect(session, conn) {
            out.push(Emit::Close {
                conn: old,
                reason: Reason::Replaced,
            });
        }
        let taken = Taken {
            received,
            room: room.as_ref(),
            seq,
        };
        let login = self.sessions.get_mut(session).expect("looked up above");
        self.counted.resumes += 1;
        match login.outbox.replay(taken) {
            Some(replay) => {
                self.counted.replayed += replay.len() as u64;
                out.push(direct(
                    conn,
                    ServerFrame::Resumed {
                        session: session.0,
                        replayed: replay.len() as u64,
                        resync: None,
                    },
                ));
                for (n, frame) in replay {
                    out.push(Emit::Deliver { to: conn, n, frame });
                }
            }
            None => {
                let n = login.outbox.last_n();
                let (missed, answers) = login.outbox.resync(taken, self.config.outbox_capacity);
                self.counted.replayed += answers.len() as u64;
                let user = login.identity.user.clone();
                let room = login.room.as_ref().and_then(|r| self.rooms.get(r));
                let resync = Resync {
                    missed,
                    n,
                    room: room.map(|r| r.state()),
                    invitations: self.invitations.for_callee(&user),
                    sent_invitations: self.invitations.sent_by(session),
                };
                out.push(direct(
                    conn,
                    ServerFrame::Resumed {
                        session: session.0,
                        replayed: answers.len() as u64,
                        resync: Some(Box::new(resync)),
                    },
                ));
                for (n, frame) in answers {
                    out.push(Emit::Deliver {
                        to: conn,
                        n: Some(n),
                        frame,
                    });
                }
            }
        }
        let login = &self.sessions[&session];
        if let Some(room) = login.room.clone() {
            let now = self.now;
            self.with_room(
                &room,
                |r, out| r.set_connection(session, ConnectionState::Connected, now, out),
                out,
            );
        }
        Ok(())
    }

    /// Connection `conn` is gone. An orderly close ends its session; a lost one starts the
    /// session's grace period.
    pub(super) fn connection_lost(&mut self, conn: ConnId, reason: Reason, out: &mut Vec<Emit>) {
        let Some(session) = self.sessions.disconnect(conn) else {
            return;
        };
        // A recorder's session is not held for a resume: its job fails over at once
        // (`recorder_lost`), so members learn of it within the time the loss is seen.
        let recorder = self.is_recorder(session);
        match reason {
            Reason::Quit | Reason::ServerShutdown => self.end_session(session, reason, out),
            _ if recorder => self.end_session(session, Reason::Network, out),
            _ => {
                self.sessions.hold(session, self.now);
                if let Some(room) = self.sessions[&session].room.clone() {
                    let now = self.now;
                    self.with_room(
                        &room,
                        |r, out| r.set_connection(session, ConnectionState::Reconnecting, now, out),
                        out,
                    );
                }
            }
        }
    }

    /// Ends the sessions whose grace period ran out: they leave with reason `network`.
    pub(super) fn expire_sessions(&mut self, out: &mut Vec<Emit>) {
        while let Some(session) = self.sessions.pop_expired(self.now) {
            self.end_session(session, Reason::Network, out);
        }
    }

    /// The last step of every input: frames for sessions become frames for their connections,
    /// and each is kept in the session's outbox (personal frames numbered) until acknowledged.
    /// A lost session's frames are only kept. Frames to a connection without a session go
    /// straight to it.
    pub(super) fn route(&mut self, raw: Vec<Emit>) -> Vec<Output> {
        let capacity = self.config.outbox_capacity;
        let mut out = Vec::with_capacity(raw.len());
        for output in raw {
            match output {
                Emit::Send { to, frame } => match self.sessions.get_mut(to) {
                    Some(login) if frame.is_personal() => {
                        let frame = Arc::new(frame);
                        let n = login.outbox.personal(frame.clone(), capacity);
                        if let Some(to) = login.transport() {
                            out.push(Output::Deliver {
                                to,
                                n: Some(n),
                                frame,
                            });
                        }
                    }
                    Some(login) => {
                        if let Some(to) = login.transport() {
                            out.push(Output::Send { to, frame });
                        }
                    }
                    // A session that is gone (its id is the connection that said `hello`).
                    None => out.push(Output::Send { to: to.0, frame }),
                },
                Emit::Broadcast { to, frame } => match frame.room_event() {
                    Some((_, seq)) => {
                        let mut transports = Vec::with_capacity(to.len());
                        for session in to {
                            if let Some(login) = self.sessions.get_mut(session) {
                                login.outbox.room_event(seq, frame.clone(), capacity);
                                transports.extend(login.transport());
                            }
                        }
                        if !transports.is_empty() {
                            out.push(Output::Broadcast {
                                to: transports,
                                frame,
                            });
                        }
                    }
                    None => {
                        for session in to {
                            if let Some(login) = self.sessions.get_mut(session) {
                                let n = login.outbox.personal(frame.clone(), capacity);
                                if let Some(to) = login.transport() {
                                    out.push(Output::Deliver {
                                        to,
                                        n: Some(n),
                                        frame: frame.clone(),
                                    });
                                }
                            }
                        }
                    }
                },
                Emit::Deliver { to, n, frame } => out.push(Output::Deliver { to, n, frame }),
                Emit::Close { conn, reason } => out.push(Output::Close { conn, reason }),
                Emit::Media(command) => out.push(Output::Media(command)),
                Emit::StartRecorder => out.push(Output::StartRecorder),
                Emit::Notice(event) => out.push(Output::Notice(event)),
            }
        }
        out
    }
}

impl Hub {
    /// Every session acknowledges everything it was sent (for the benchmarks).
    #[cfg(feature = "internals")]
    pub(crate) fn acknowledge_all(&mut self) {
        for login in self.sessions.logins_mut() {
            login.outbox.acknowledge_all();
        }
    }
}

/// Bytes of the HMAC in a resume key (128 bits).
const KEY_TAG_LEN: usize = 16;

fn key_mac(secret: &[u8], session: SessionId) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"jrtc resume key ");
    mac.update(&session.0.to_be_bytes());
    mac
}

fn key_tag(secret: &[u8], session: SessionId) -> [u8; KEY_TAG_LEN] {
    use hmac::Mac;
    let full = key_mac(secret, session).finalize().into_bytes();
    let mut tag = [0u8; KEY_TAG_LEN];
    tag.copy_from_slice(&full[..KEY_TAG_LEN]);
    tag
}

/// A frame for connection `conn` itself (not for a session its id might name), kept nowhere.
fn direct(conn: ConnId, frame: ServerFrame) -> Emit {
    Emit::Deliver {
        to: conn,
        n: None,
        frame: Arc::new(frame),
    }
}

//! The client core, sans-IO: everything a call decides, behind one `handle(now, Input)`.
//!
//! It owns the session (server frames → events and outcomes, the room view, the open requests),
//! the connection policy ([`LinkCore`]: pings, silence, the reconnect schedule), the resume
//! handshake (resume, or log in again and rejoin), the media recovery policy ([`Recovery`]),
//! the publishing negotiations (one offer at a time, the answer's deadline, the candidates that
//! wait for it) and the token refresh schedule. Inputs are server frames, socket changes,
//! peer-connection events, the application's requests and time; outputs are frames to send,
//! events, outcomes, what to do with the socket and the peer connections, and when to be called
//! again ([`ClientCore::next_deadline`]). No tokio, no socket, no clock read: the call's shells
//! (`call/driver.rs` for the socket, `call/media.rs` for the peer connections) do what it says,
//! and the simulator and the property tests drive it directly.
//!
//! The frames are handled by area: `connection.rs` (the socket and the resume handshake),
//! `publishing.rs` (the publishing connection), `token.rs` (the refresh), and the session's own
//! areas (`call/session/`).

/// What a publishing negotiation touches besides itself, borrowed field by field.
macro_rules! ctx {
    ($core:ident, $now:expr) => {
        $crate::call::core::publishing::Ctx {
            now: $now,
            session: &mut $core.session,
            recovery: &mut $core.recovery,
            out: &mut $core.out,
        }
    };
}

mod connection;
mod media;
mod publishing;
mod token;

use std::time::Instant;

use crate::event::{CallEvent, OpError, OperationKind, Outcome};
use crate::model::{InvitationId, OperationId, Publication, Reason, TrackSource, UserId};
use crate::protocol::{ClientFrame, IceCandidate, MediaConnection, ServerFrame};

use super::CallError;
use super::policy::link::{LinkCore, LinkTiming};
use super::policy::recovery::Recovery;
use super::session::{Handled, MediaSignal, Session};
use connection::Connection;
use publishing::Publishing;
use token::Token;

pub(crate) use publishing::OfferJob;

/// The time an input happens at: the monotonic clock for deadlines, the wall clock (Unix
/// seconds) for the token's expiry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub(crate) at: Instant,
    pub(crate) unix: u64,
}

/// What happens to a call (a server frame is borrowed: the core parses it where it lies).
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// The socket asked for with [`Output::Connect`] is open.
    Opened,
    /// It could not be opened.
    OpenFailed,
    /// A text frame from the server.
    Text(&'a str),
    /// Something else came from the server (a WebSocket ping or pong).
    Heard,
    /// The socket closed or broke (a read or a send failed).
    SocketLost,
    /// A deadline passed.
    Tick,
    /// The application closes the call.
    Close,
    /// The token provider asked for with [`Output::WantToken`] gave a token (or failed).
    Token(Option<String>),
    /// Something happened on the call's peer connections.
    Peer(PeerInput),
}

/// What the peer-connection shell reports.
#[derive(Debug)]
pub(crate) enum PeerInput {
    /// Receiving connection `generation` answered the server's offer `negotiation`.
    Answered {
        negotiation: u64,
        generation: u64,
        sdp: String,
    },
    /// The publishing connection made the offer of job `op` ([`PeerAction::Offer`]).
    Offered { op: OperationId, sdp: String },
    /// It could not.
    OfferFailed { op: OperationId, message: String },
    /// The server's answer to `op` was applied (or could not be).
    Applied {
        op: OperationId,
        result: Result<(), String>,
    },
    /// A local candidate of `connection` (the publishing one's from connection `generation`).
    Candidate {
        connection: MediaConnection,
        generation: u64,
        candidate: IceCandidate,
    },
    /// Connection `generation` of its kind failed (`false`) or is connected (again).
    State {
        connection: MediaConnection,
        generation: u64,
        connected: bool,
    },
    /// A remote track arrived on the receiving connection.
    TrackArrived(Publication),
}

/// What the call does.
#[derive(Debug)]
pub(crate) enum Output {
    /// Deliver to subscribers.
    Event(CallEvent),
    /// Operation `op` finished.
    Outcome(OperationId, Result<Outcome, OpError>),
    /// Send this frame on the socket.
    Send(String),
    /// Open a new socket; report [`Input::Opened`] or [`Input::OpenFailed`].
    Connect,
    /// Drop the socket (lost, abandoned or refused).
    Disconnect,
    /// Do this on the peer connections.
    Peer(PeerAction),
    /// Do this to the call's own track handles, before the events after it are delivered.
    Local(LocalAction),
    /// End the handle of remote track `publication` (its reader gets `None`).
    EndRemote(String),
    /// Ask the token provider for a new token; report [`Input::Token`].
    WantToken,
    /// The call is over: close the socket and the peer connections.
    Finished(Reason),
}

/// Work on the peer connections (the shell has no say in it).
#[derive(Debug)]
pub(crate) enum PeerAction {
    /// Answer the server's offer on receiving connection `generation` (a new connection when
    /// the shell's is older).
    AnswerOffer {
        negotiation: u64,
        generation: u64,
        sdp: String,
    },
    /// Add the server's candidate to `connection`.
    AddCandidate {
        connection: MediaConnection,
        candidate: IceCandidate,
    },
    /// Make job `op`'s offer on publishing connection `generation` (a new connection when the
    /// shell's is older); report [`PeerInput::Offered`].
    Offer {
        op: OperationId,
        generation: u64,
        job: OfferJob,
    },
    /// Apply the server's answer to `op`; report [`PeerInput::Applied`].
    ApplyAnswer { op: OperationId, sdp: String },
    /// Undo what offer `op` added (it was refused or not answered).
    CancelOffer { op: OperationId },
    /// Close the publishing connection.
    ClosePublisher,
    /// Close the receiving connection.
    CloseSubscriber,
}

/// Effects on the call's own tracks that must be in place before the next event is seen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LocalAction {
    /// Someone else muted the track of `source` (`held`), or the hold is over.
    Hold { source: TrackSource, held: bool },
    /// Send only these simulcast streams of the track of `source` (the server's dynacast).
    Layers {
        source: TrackSource,
        rids: Vec<String>,
    },
    /// The track of `source` was unpublished: its handle ends, the track stays for later.
    Unpublish(TrackSource),
    /// The publishing connection is gone: every local track's handle ends.
    EndAll,
}

/// What a call needs to start: it is logged in already.
pub(crate) struct Start {
    pub(crate) me: UserId,
    pub(crate) timing: LinkTiming,
    /// Seeds the reconnect jitter.
    pub(crate) seed: u64,
    pub(crate) resume_key: String,
    pub(crate) token: String,
    /// When the token expires (Unix seconds; 0: the server did not say).
    pub(crate) expires_at: u64,
    /// Whether a token provider refreshes the token.
    pub(crate) refreshes: bool,
    /// Requests kept while offline, at most.
    pub(crate) offline_queue: usize,
}

impl Start {
    /// A call of `me` logged in on session `resume_key` with `token`, following `options`
    /// (seed 1 and no known expiry until set).
    pub(crate) fn new(
        me: UserId,
        resume_key: String,
        token: String,
        options: &super::CallOptions,
    ) -> Self {
        Start {
            me,
            timing: LinkTiming {
                policy: options.reconnect.clone(),
                keepalive: options.keepalive,
                idle_timeout: options.idle_timeout,
                connect_timeout: options.connect_timeout,
            },
            seed: 1,
            resume_key,
            token,
            expires_at: 0,
            refreshes: options.token_provider.is_some(),
            offline_queue: options.offline_queue,
        }
    }
}

/// One call's decisions.
pub(crate) struct ClientCore {
    session: Session,
    link: LinkCore,
    connection: Connection,
    recovery: Recovery,
    publishing: Publishing,
    token: Token,
    /// Whether the receiving connection exists, and its generation (the next one's, while
    /// there is none).
    receiving: bool,
    subscriber: u64,
    offline_queue: usize,
    closed: Option<Reason>,
    out: Vec<Output>,
}

impl ClientCore {
    /// A call logged in at `now`.
    pub(crate) fn new(start: Start, now: Now) -> Self {
        let mut core = ClientCore {
            session: Session::new(start.me),
            link: LinkCore::new(start.timing, now.at, start.seed),
            connection: Connection::new(start.resume_key),
            recovery: Recovery::default(),
            publishing: Publishing::default(),
            token: Token::new(start.token, start.refreshes),
            receiving: false,
            subscriber: 1,
            offline_queue: start.offline_queue,
            closed: None,
            out: Vec::new(),
        };
        core.token.expires(now, start.expires_at);
        core
    }

    /// The session: the room view, the invitations, the open requests.
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// Why the call closed, once it has.
    pub(crate) fn closed(&self) -> Option<Reason> {
        self.closed
    }

    /// When the token expires (Unix seconds; 0: unknown).
    pub(crate) fn expires_at(&self) -> u64 {
        self.token.expires_at()
    }

    /// When [`handle`](Self::handle) wants [`Input::Tick`] next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        [
            self.link.next_deadline(),
            self.recovery.next_deadline(),
            self.publishing.next_deadline(),
            self.token.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The generation of the call's connection of this kind, if it has one.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn generation(&self, connection: MediaConnection) -> Option<u64> {
        match connection {
            MediaConnection::Publish => self.publishing.generation(),
            MediaConnection::Subscribe => self.receiving.then_some(self.subscriber),
        }
    }

    /// What to do, in order, since the last call.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    /// Takes one input. After `Closed` nothing more comes out.
    pub(crate) fn handle(&mut self, now: Now, input: Input<'_>) {
        if self.closed.is_some() {
            return;
        }
        match input {
            Input::Opened => self.opened(),
            Input::OpenFailed => self.attempt_failed(now),
            Input::Text(text) => self.text(now, text),
            Input::Heard => self.link.heard(now.at),
            Input::SocketLost => self.socket_lost(now, Reason::Network),
            Input::Tick => self.tick(now),
            Input::Close => {
                let outputs = self.link.close(Reason::Quit);
                self.link_outputs(outputs);
            }
            Input::Token(token) => self.token_given(now, token),
            Input::Peer(input) => self.peer(now, input),
        }
    }

    /// A request from the application: its op id, or why it is refused (closed, or too many
    /// waiting while offline). The frame goes out now, or once the connection is back.
    pub(crate) fn request(
        &mut self,
        kind: OperationKind,
        invitation: Option<InvitationId>,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) -> Result<OperationId, CallError> {
        self.admit()?;
        let (op, text) = self.session.request(kind, invitation, frame);
        self.send_request(text);
        Ok(op)
    }

    /// Subscribe (`true`) to or unsubscribe from publication `id`.
    pub(crate) fn track_request(
        &mut self,
        id: &str,
        subscribe: bool,
    ) -> Result<OperationId, CallError> {
        let publication = id.to_owned();
        let (kind, op) = if subscribe {
            let op = self.request(OperationKind::SubscribeTrack, None, |op| {
                ClientFrame::Subscribe { op, publication }
            })?;
            (true, op)
        } else {
            let op = self.request(OperationKind::UnsubscribeTrack, None, |op| {
                ClientFrame::Unsubscribe { op, publication }
            })?;
            (false, op)
        };
        self.session.tracks.requested(op, id.to_owned(), kind);
        Ok(op)
    }

    /// A new token from the application (or the provider) for the server.
    pub(crate) fn refresh_token(&mut self, token: String) -> Result<OperationId, CallError> {
        let sent = token.clone();
        let op = self.request(OperationKind::RefreshToken, None, |op| {
            ClientFrame::Refresh { op, token: sent }
        })?;
        self.token.sent(op, token);
        Ok(op)
    }

    /// Publishes a track of `source`: the op's outcome comes once the server's answer is
    /// applied.
    pub(crate) fn publish(
        &mut self,
        now: Now,
        source: TrackSource,
    ) -> Result<OperationId, CallError> {
        if let Some(reason) = self.closed {
            return Err(CallError::Closed { reason });
        }
        if self.publishing.publishes(source) {
            return Err(CallError::InvalidParam {
                message: format!("a {} track is published already", source.as_str()),
            });
        }
        let op = self.session.reserve(OperationKind::Publish);
        self.publishing.publish(op, source);
        self.next_offer(now);
        Ok(op)
    }

    /// Stops publishing `source`.
    pub(crate) fn unpublish(&mut self, source: TrackSource) -> Result<OperationId, CallError> {
        self.admit()?;
        if self.publishing.unpublish(source) {
            self.out.push(Output::Local(LocalAction::Unpublish(source)));
        }
        self.request(OperationKind::Unpublish, None, |op| {
            ClientFrame::Unpublish { op, source }
        })
    }

    /// This call's own mute or unmute of its track of `source` (the track's handle is muted
    /// by the shell: it sends nothing, on this connection or on one made after a rejoin).
    pub(crate) fn set_muted(
        &mut self,
        source: TrackSource,
        muted: bool,
    ) -> Result<OperationId, CallError> {
        self.request(OperationKind::Mute, None, |op| ClientFrame::Mute {
            op,
            source,
            muted,
            user_id: None,
        })
    }

    /// A frame that expects no answer (a recorder's report).
    pub(crate) fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), CallError> {
        if let Some(reason) = self.closed {
            return Err(CallError::Closed { reason });
        }
        self.connection
            .send_or_hold(crate::protocol::encode(frame), &mut self.out);
        Ok(())
    }

    /// Whether a request may be made now.
    fn admit(&self) -> Result<(), CallError> {
        if let Some(reason) = self.closed {
            return Err(CallError::Closed { reason });
        }
        let queued = self.session.pending_count();
        if !self.connection.online() && queued >= self.offline_queue {
            return Err(CallError::Offline { queued });
        }
        Ok(())
    }

    /// A request's frame: on the socket now, or (offline) kept in the session for later.
    fn send_request(&mut self, text: String) {
        if self.connection.online() {
            self.out.push(Output::Send(text));
        }
    }

    fn tick(&mut self, now: Now) {
        let outputs = self.link.tick(now.at);
        self.link_outputs(outputs);
        if self.closed.is_some() {
            return;
        }
        let outputs = self.recovery.tick(now.at);
        self.recovery_outputs(outputs);
        let mut ctx = ctx!(self, now);
        self.publishing.expired(&mut ctx);
        self.next_offer(now);
        if self.token.due(now) {
            self.out.push(Output::WantToken);
        }
    }

    /// Text from the server: the handshake's while connecting, the session's otherwise.
    fn text(&mut self, now: Now, text: &str) {
        let frame = match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable frame from the server");
                return;
            }
        };
        let n = crate::protocol::frame_number(text);
        if !self.connection.online() {
            self.handshake(now, frame, n);
            return;
        }
        self.link.heard(now.at);
        let goodbye = match &frame {
            ServerFrame::Goodbye { reason, reconnect } => Some((*reason, *reconnect)),
            _ => None,
        };
        self.frame(now, frame, n);
        match goodbye {
            Some((reason, true)) => self.socket_lost(now, reason),
            Some((reason, false)) => {
                let outputs = self.link.close(reason);
                self.link_outputs(outputs);
            }
            None => {}
        }
    }

    /// A frame for the session, and what it makes.
    fn frame(&mut self, now: Now, frame: ServerFrame, n: Option<u64>) {
        if let ServerFrame::Refreshed { op, expires_at } = &frame
            && self.token.refreshed(*op)
        {
            self.token.expires(now, *expires_at);
        }
        let handled = self.session.handle(frame, n);
        self.handled(now, handled);
    }

    /// Carries out what the session made, in the order the shells need: track handles first
    /// (a held or ended track is so before its event is seen), then events, outcomes, and the
    /// media work.
    fn handled(&mut self, now: Now, mut handled: Handled) {
        let mut media = Vec::new();
        for signal in handled.media.drain(..) {
            match signal {
                MediaSignal::Held { source, held } => self
                    .out
                    .push(Output::Local(LocalAction::Hold { source, held })),
                MediaSignal::Layers { source, rids } => self
                    .out
                    .push(Output::Local(LocalAction::Layers { source, rids })),
                MediaSignal::Lost {
                    connection: MediaConnection::Publish,
                } => {
                    self.out.push(Output::Local(LocalAction::EndAll));
                    media.push(MediaSignal::Lost {
                        connection: MediaConnection::Publish,
                    });
                }
                other => media.push(other),
            }
        }
        for id in handled.tracks.ended.drain(..) {
            self.out.push(Output::EndRemote(id));
        }
        if handled.tracks.rejoined {
            // A new membership: new peer connections, the same local tracks published again.
            self.recovery.reset();
            self.close_subscriber();
            self.publishing.rejoined(&mut self.session, &mut self.out);
        }
        if handled.tracks.reset {
            // Out of the room: the server closed this call's peer connections.
            self.recovery.reset();
            self.close_subscriber();
            let mut ctx = ctx!(self, now);
            self.publishing.reset(&mut ctx);
            self.out.push(Output::Local(LocalAction::EndAll));
            self.out.push(Output::Peer(PeerAction::ClosePublisher));
        }
        self.out.extend(handled.events.drain(..).map(Output::Event));
        for (op, outcome) in handled.outcomes.drain(..) {
            if outcome.is_err() {
                self.token.refused(now, op);
                self.publishing.refused(op, &mut self.out);
            }
            self.out.push(Output::Outcome(op, outcome));
        }
        for (op, error) in handled.failed_negotiations.drain(..) {
            let mut ctx = ctx!(self, now);
            self.publishing
                .negotiation_failed(&mut ctx, op, error.message);
        }
        for signal in media {
            self.media_signal(now, signal);
        }
        self.next_offer(now);
    }

    /// Starts the next publishing negotiation, if none is under way.
    fn next_offer(&mut self, now: Now) {
        let mut ctx = ctx!(self, now);
        self.publishing.next(&mut ctx);
    }

    fn token_given(&mut self, now: Now, token: Option<String>) {
        match token {
            Some(token) => {
                if let Err(e) = self.refresh_token(token) {
                    // Not sent (offline with a full queue): asked for again later.
                    tracing::warn!(error = %e, "refreshing the access token failed");
                    self.token.provider_failed(now);
                }
            }
            None => self.token.provider_failed(now),
        }
    }

    /// The call is over: what was unanswered fails, the session's last words, then `Closed`.
    fn finish(&mut self, reason: Reason) {
        let handled = self.session.ended(reason);
        self.out
            .extend(handled.events.into_iter().map(Output::Event));
        for (op, outcome) in handled.outcomes {
            self.out.push(Output::Outcome(op, outcome));
        }
        if let Some(left) = self.session.closed(reason) {
            self.out.push(Output::Event(left));
        }
        self.out.push(Output::Event(CallEvent::Closed { reason }));
        self.out.push(Output::Finished(reason));
        self.session.tracks.close();
        self.closed = Some(reason);
    }
}

#[cfg(test)]
mod scenarios;

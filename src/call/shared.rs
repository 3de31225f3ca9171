//! What the call's handles and its tasks share: the session core, the event queue, the
//! outcomes waited for or kept, and the call's remote tracks. Events are published under the same
//! lock that updates the session, so a new subscriber's snapshot and its first event never
//! overlap or leave a gap.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::session::{self, Session};
use super::{CallError, media, ring};
use crate::event::{CallEvent, OpError, OperationKind, Outcome};
use crate::media::RemoteTrack;
use crate::model::{OperationId, Reason};
use crate::protocol::ServerFrame;

/// Outcomes kept for later [`Call::outcome`](super::Call::outcome) calls; oldest forgotten first.
pub(super) const KEPT_OUTCOMES: usize = 256;

type Waiter = oneshot::Sender<Result<Outcome, CallError>>;

/// State shared by the handles and the connection task. Events are published under the same lock
/// that guards the session, so a new subscriber's snapshot and its first event never overlap or
/// leave a gap.
pub(super) struct Shared {
    pub(super) session: Session,
    pub(super) events: Option<ring::Sender<CallEvent>>,
    pub(super) waiters: HashMap<OperationId, Vec<Waiter>>,
    pub(super) kept: VecDeque<(OperationId, Result<Outcome, OpError>)>,
    pub(super) closed: Option<Reason>,
    /// The handles of the remote tracks reaching this call (received or paused), by publication
    /// id; which are received, and when each ends, is the session's (`Session::tracks`).
    pub(super) remote_tracks: HashMap<String, RemoteTrack>,
    /// The media task's queue.
    pub(super) media_work: Option<mpsc::UnboundedSender<media::MediaWork>>,
    /// The call's own tracks (a mute by someone else silences them before anyone hears of it).
    pub(super) local: std::sync::Weak<media::ClientMedia>,
    /// Publishing offers waiting for the server's answer.
    pub(super) answers: HashMap<OperationId, oneshot::Sender<Result<String, OpError>>>,
    /// Whether the connection is up: requests go to the socket now. While it is down they wait
    /// in the session (at most `offline_queue`) and are sent once it is back.
    pub(super) online: bool,
    /// The access token the session holds now (the last refreshed one): a resume sends it.
    pub(super) credentials: super::Credentials,
    /// Tokens sent in `refresh` requests not answered yet.
    pub(super) refreshing: HashMap<OperationId, String>,
    /// When the session's token expires (seconds since the Unix epoch).
    pub(super) expires_at: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub(super) fn publish(&mut self, event: CallEvent) {
        if let Some(tx) = &self.events {
            // With no subscriber the event is dropped: events are not stored for later.
            tx.send(event);
        }
    }

    /// Hands an operation's outcome to whoever awaits it, and keeps it for later `outcome()`
    /// calls (the last `KEPT_OUTCOMES` operations').
    pub(super) fn settle(&mut self, op: OperationId, outcome: Result<Outcome, OpError>) {
        for w in self.waiters.remove(&op).into_iter().flatten() {
            let _ = w.send(
                outcome
                    .clone()
                    .map_err(|error| CallError::Refused { op, error }),
            );
        }
        if self.kept.len() == KEPT_OUTCOMES {
            self.kept.pop_front();
        }
        self.kept.push_back((op, outcome));
    }

    pub(super) fn handle(&mut self, frame: ServerFrame, n: Option<u64>) {
        match &frame {
            ServerFrame::Refreshed { op, expires_at } => {
                if let Some(token) = self.refreshing.remove(op) {
                    self.credentials = super::Credentials::token(token);
                    self.token_expires(*expires_at);
                }
            }
            ServerFrame::Error { op: Some(op), .. } => {
                self.refreshing.remove(op);
            }
            _ => {}
        }
        let handled = self.session.handle(frame, n);
        self.apply(handled);
    }

    /// The server lost the session (the connection that came back is on a new one): the
    /// session core fails what was unanswered, and the call joins its room again.
    pub(super) fn session_lost(&mut self) {
        let (handled, rejoin) = self.session.lost();
        self.apply(handled);
        match rejoin {
            Some(rejoin) => {
                // Sent with the other unanswered requests (there are none left but this).
                self.session
                    .request(OperationKind::Rejoin, None, |op| rejoin.frame(op));
            }
            None => self.publish(CallEvent::Reconnected { replayed: 0 }),
        }
    }

    fn apply(&mut self, mut handled: session::Handled) {
        // A mute of this call's track by someone else (and the unmute that ends it) takes
        // effect before its event is out.
        handled.media.retain(|signal| match signal {
            session::MediaSignal::Held { source, held } => {
                if let Some(media) = self.local.upgrade() {
                    media.hold(*source, *held);
                }
                false
            }
            // The publishing connection was given up: its tracks are gone when `Failed` is
            // delivered (the media task closes the connection).
            session::MediaSignal::Lost {
                connection: crate::protocol::MediaConnection::Publish,
            } => {
                if let Some(media) = self.local.upgrade() {
                    media.end_local_tracks();
                }
                true
            }
            _ => true,
        });
        for id in &handled.tracks.ended {
            if let Some(track) = self.remote_tracks.remove(id) {
                track.end();
            }
        }
        if handled.tracks.rejoined {
            // A new membership: new peer connections, the same local tracks published again.
            self.media(media::MediaWork::Rejoined);
        }
        if handled.tracks.reset {
            // Out of the room: the server closed this call's peer connections (and answers a
            // publish that was still open with an error, which ends its wait).
            self.media(media::MediaWork::Reset);
        }
        for event in handled.events {
            self.publish(event);
        }
        for (op, outcome) in handled.outcomes {
            if let Err(error) = &outcome
                && let Some(answer) = self.answers.remove(&op)
            {
                let _ = answer.send(Err(error.clone()));
            }
            self.settle(op, outcome);
        }
        for signal in handled.media {
            match signal {
                session::MediaSignal::PublishAnswer { op, sdp } => {
                    if let Some(answer) = self.answers.remove(&op) {
                        let _ = answer.send(Ok(sdp));
                    }
                }
                signal => self.media(media::MediaWork::Signal(signal)),
            }
        }
    }

    /// The token a resume sends: the newest one, including one a `refresh` still in flight
    /// carries (the server may have applied it before the connection was lost; if it did not,
    /// the refresh is sent again after the resume and takes effect then).
    pub(super) fn resume_credentials(&self) -> super::Credentials {
        match self.refreshing.iter().max_by_key(|(op, _)| op.0) {
            Some((_, token)) => super::Credentials::token(token.clone()),
            None => self.credentials.clone(),
        }
    }

    /// The session's token expires at `at` (seconds since the Unix epoch).
    pub(super) fn token_expires(&mut self, at: u64) {
        self.expires_at.send_replace(at);
    }

    pub(super) fn media(&self, work: media::MediaWork) {
        if let Some(tx) = &self.media_work {
            let _ = tx.send(work);
        }
    }

    pub(super) fn finish(&mut self, reason: Reason) {
        if self.closed.is_some() {
            return;
        }
        if let Some(left) = self.session.closed(reason) {
            self.publish(left);
        }
        self.closed = Some(reason);
        for (_, waiters) in self.waiters.drain() {
            for w in waiters {
                let _ = w.send(Err(CallError::Closed { reason }));
            }
        }
        self.publish(CallEvent::Closed { reason });
        // Dropping the sender ends every stream once it has read `Closed`; dropping the media
        // queue ends the media task, which closes the peer connections.
        self.events = None;
        self.media_work = None;
        self.answers.clear();
        self.session.tracks.close();
        for (_, track) in self.remote_tracks.drain() {
            track.end();
        }
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-updated in a way that matters
    // more than losing the call, so keep going with what is there.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

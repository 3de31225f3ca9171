//! What the call's handles and its tasks share: the session core, the event queue, the
//! outcomes waited for or kept, and the call's remote tracks. Events are published under the same
//! lock that updates the session, so a new subscriber's snapshot and its first event never
//! overlap or leave a gap.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::session::{self, Session};
use super::{CallError, media, ring};
use crate::event::{CallEvent, MediaEvent, OpError, Outcome};
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
    /// Remote tracks reaching this call, by publication id.
    pub(super) remote_tracks: HashMap<String, RemoteTrack>,
    /// The media task's queue.
    pub(super) media_work: Option<mpsc::UnboundedSender<media::MediaWork>>,
    /// Publishing offers waiting for the server's answer.
    pub(super) answers: HashMap<OperationId, oneshot::Sender<Result<String, OpError>>>,
    /// The publication each open subscribe (`true`) or unsubscribe (`false`) request is about.
    pub(super) track_requests: HashMap<OperationId, (String, bool)>,
    /// Remote tracks this call unsubscribed from; the server keeps them negotiated, so a later
    /// subscribe resumes them.
    pub(super) paused_tracks: HashMap<String, RemoteTrack>,
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

    pub(super) fn handle(&mut self, frame: ServerFrame) {
        let handled = self.session.handle(frame);
        for event in handled.events {
            let unsubscribed = match &event {
                CallEvent::Left { .. } => {
                    // Out of the room: the server closed this call's peer connections.
                    for (_, track) in self.remote_tracks.drain().chain(self.paused_tracks.drain()) {
                        track.end();
                    }
                    self.media(media::MediaWork::Reset);
                    None
                }
                CallEvent::Media(MediaEvent::Unpublished { publication, .. }) => {
                    if let Some(paused) = self.paused_tracks.remove(&publication.id) {
                        paused.end();
                    }
                    self.remote_tracks.remove(&publication.id).map(|track| {
                        track.end();
                        publication.clone()
                    })
                }
                _ => None,
            };
            self.publish(event);
            if let Some(publication) = unsubscribed {
                self.publish(CallEvent::Media(MediaEvent::Unsubscribed { publication }));
            }
        }
        for (op, outcome) in handled.outcomes {
            if let Some((id, subscribe)) = self.track_requests.remove(&op)
                && outcome.is_ok()
            {
                self.track_request_done(id, subscribe);
            }
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

    /// A subscribe or unsubscribe request succeeded: pause or resume the remote track.
    fn track_request_done(&mut self, id: String, subscribe: bool) {
        let (from, to) = if subscribe {
            (&mut self.paused_tracks, &mut self.remote_tracks)
        } else {
            (&mut self.remote_tracks, &mut self.paused_tracks)
        };
        if let Some(track) = from.remove(&id) {
            let publication = track.publication().clone();
            to.insert(id, track);
            self.publish(CallEvent::Media(if subscribe {
                MediaEvent::Subscribed { publication }
            } else {
                MediaEvent::Unsubscribed { publication }
            }));
        }
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
        for (_, track) in self.remote_tracks.drain().chain(self.paused_tracks.drain()) {
            track.end();
        }
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-updated in a way that matters
    // more than losing the call, so keep going with what is there.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

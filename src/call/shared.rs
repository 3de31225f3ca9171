//! What the call's handles and its two shells share: the client core, the event queue, the
//! outcomes waited for or kept, and the handles of the call's tracks. The core is only ever run
//! through [`Shared::step`], which delivers its events and outcomes under the same lock (so a
//! new subscriber's snapshot and its first event never overlap or leave a gap), applies its
//! effects on the track handles before them, and queues the rest for the shells: socket work
//! for the driver (which it wakes), peer-connection work for the media task.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, oneshot};

use super::clock;
use super::core::{ClientCore, LocalAction, Now, Output, PeerAction};
use super::{CallError, media, ring};
use crate::event::{CallEvent, OpError, Outcome};
use crate::media::RemoteTrack;
use crate::model::{OperationId, Reason};

/// Outcomes kept for later [`Call::outcome`](super::Call::outcome) calls; oldest forgotten first.
pub(super) const KEPT_OUTCOMES: usize = 256;

type Waiter = oneshot::Sender<Result<Outcome, CallError>>;

/// Socket work for the driver.
#[derive(Debug)]
pub(super) enum SocketWork {
    Send(String),
    Connect,
    Disconnect,
    WantToken,
    Finished,
}

/// State shared by the handles and the call's shells.
pub(super) struct Shared {
    pub(super) core: ClientCore,
    pub(super) events: Option<ring::Sender<CallEvent>>,
    pub(super) waiters: HashMap<OperationId, Vec<Waiter>>,
    pub(super) kept: VecDeque<(OperationId, Result<Outcome, OpError>)>,
    /// The handles of the remote tracks reaching this call (received or paused), by
    /// publication id; which are received, and when each ends, is the core's.
    pub(super) remote_tracks: HashMap<String, RemoteTrack>,
    /// The call's own track handles.
    pub(super) local: Arc<media::ClientMedia>,
    /// The driver's work, and its wake-up.
    pub(super) socket: VecDeque<SocketWork>,
    pub(super) wake: Arc<Notify>,
    /// Notified each time the driver has emptied `socket` (a request waiting for room).
    pub(super) drained: Arc<Notify>,
    /// The media task's work (none once the call is over).
    pub(super) peer: Option<mpsc::UnboundedSender<PeerAction>>,
}

impl Shared {
    /// Runs the core (`f` gets it and the time) and carries out what it said.
    pub(super) fn step<R>(&mut self, f: impl FnOnce(&mut ClientCore, Now) -> R) -> R {
        let deadline = self.core.next_deadline();
        let result = f(&mut self.core, clock::now());
        let outputs: Vec<Output> = self.core.drain().collect();
        // The driver sleeps until the core's deadline: a new one wakes it.
        let mut wake = self.core.next_deadline() != deadline;
        for output in outputs {
            match output {
                Output::Event(event) => self.publish(event),
                Output::Outcome(op, outcome) => self.settle(op, outcome),
                Output::Local(action) => self.local(action),
                Output::EndRemote(id) => {
                    if let Some(track) = self.remote_tracks.remove(&id) {
                        track.end();
                    }
                }
                Output::Peer(action) => {
                    if let Some(peer) = &self.peer {
                        let _ = peer.send(action);
                    }
                }
                Output::Send(text) => {
                    self.socket.push_back(SocketWork::Send(text));
                    wake = true;
                }
                Output::Connect => {
                    self.socket.push_back(SocketWork::Connect);
                    wake = true;
                }
                Output::Disconnect => {
                    self.socket.push_back(SocketWork::Disconnect);
                    wake = true;
                }
                Output::WantToken => {
                    self.socket.push_back(SocketWork::WantToken);
                    wake = true;
                }
                Output::Finished(reason) => {
                    self.finished(reason);
                    self.socket.push_back(SocketWork::Finished);
                    wake = true;
                }
            }
        }
        if wake {
            self.wake.notify_one();
        }
        result
    }

    fn publish(&mut self, event: CallEvent) {
        if let Some(tx) = &self.events {
            // With no subscriber the event is dropped: events are not stored for later.
            tx.send(event);
        }
    }

    /// Hands an operation's outcome to whoever awaits it, and keeps it for later `outcome()`
    /// calls (the last `KEPT_OUTCOMES` operations').
    fn settle(&mut self, op: OperationId, outcome: Result<Outcome, OpError>) {
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

    fn local(&mut self, action: LocalAction) {
        match action {
            LocalAction::Hold { source, held } => self.local.hold(source, held),
            LocalAction::Layers { source, rids } => self.local.send_layers(source, &rids),
            LocalAction::Unpublish(source) => self.local.unpublish(source),
            LocalAction::EndAll => self.local.end_local_tracks(),
        }
    }

    /// The call is over (its `Closed` event is out): waiters get `Closed`, every stream ends
    /// once it has read it, the media task ends (closing the peer connections), and every
    /// track handle ends.
    fn finished(&mut self, reason: Reason) {
        for (_, waiters) in self.waiters.drain() {
            for w in waiters {
                let _ = w.send(Err(CallError::Closed { reason }));
            }
        }
        self.events = None;
        self.peer = None;
        for (_, track) in self.remote_tracks.drain() {
            track.end();
        }
        self.local.end_local_tracks();
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-updated in a way that matters
    // more than losing the call, so keep going with what is there.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

//! The call's publishing connection, as the core keeps it: which sources are published, one
//! offer negotiated at a time (a publish, an ICE restart, publishing everything again after a
//! rejoin), how long the server may take to answer, and the connection's candidates, which wait
//! until the server has answered the offer that made them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::event::{CallEvent, MediaEvent, OpError, OperationKind, Outcome};
use crate::model::{OperationId, TrackSource};
use crate::protocol::{ClientFrame, ErrorCode, IceCandidate, MediaConnection};

use super::super::policy::recovery::Recovery;
use super::super::session::Session;
use super::{Now, Output, PeerAction};

/// How long the server may take to answer a publishing offer.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// What an offer of the publishing connection is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OfferJob {
    /// Add a track of this source (or take back the one it had) and offer it.
    Publish(TrackSource),
    /// Restart ICE on the connection.
    Restart,
    /// A new connection carrying the tracks of these sources (after a rejoin).
    Republish(Vec<TrackSource>),
}

/// Where one source's track stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceState {
    /// Publish `op` is under way; `parked`: the track was on the connection before.
    Publishing { op: OperationId, parked: bool },
    /// Published.
    Published,
    /// Unpublished, its track still on the connection for a later publish.
    Parked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The shell makes the offer.
    Offering,
    /// Sent; the server answers by then.
    Answering(Instant),
    /// The shell applies the answer.
    Applying,
}

#[derive(Debug)]
struct InFlight {
    op: OperationId,
    job: OfferJob,
    stage: Stage,
}

/// The publishing connection's state.
#[derive(Debug, Default)]
pub(super) struct Publishing {
    sources: BTreeMap<TrackSource, SourceState>,
    /// The connection's generation, if there is one.
    connection: Option<u64>,
    generations: u64,
    queue: VecDeque<(OperationId, OfferJob)>,
    in_flight: Option<InFlight>,
    /// Candidates go out once the server answered the offer that made them.
    gate_open: bool,
    held: Vec<IceCandidate>,
}

/// What a finished negotiation touches.
pub(super) struct Ctx<'a> {
    pub(super) now: Now,
    pub(super) session: &'a mut Session,
    pub(super) recovery: &'a mut Recovery,
    pub(super) out: &'a mut Vec<Output>,
}

impl Publishing {
    /// Whether `source` is published or being published.
    pub(super) fn publishes(&self, source: TrackSource) -> bool {
        matches!(
            self.sources.get(&source),
            Some(SourceState::Publishing { .. } | SourceState::Published)
        )
    }

    /// Whether the call has a publishing connection.
    pub(super) fn connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The publishing connection's generation, if there is one.
    pub(super) fn generation(&self) -> Option<u64> {
        self.connection
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match self.in_flight.as_ref()?.stage {
            Stage::Answering(at) => Some(at),
            _ => None,
        }
    }

    /// Publish `op` of `source` waits its turn.
    pub(super) fn publish(&mut self, op: OperationId, source: TrackSource) {
        let parked = self.sources.get(&source) == Some(&SourceState::Parked);
        self.sources
            .insert(source, SourceState::Publishing { op, parked });
        self.queue.push_back((op, OfferJob::Publish(source)));
    }

    /// `source` is unpublished; true when its track was published (its handle ends).
    pub(super) fn unpublish(&mut self, source: TrackSource) -> bool {
        if self.sources.get(&source) == Some(&SourceState::Published) {
            self.sources.insert(source, SourceState::Parked);
            return true;
        }
        false
    }

    /// The recovery policy asks for an ICE restart.
    pub(super) fn restart(&mut self, session: &mut Session) {
        let op = session.reserve(OperationKind::Negotiate);
        self.queue.push_back((op, OfferJob::Restart));
    }

    /// The call is in its room again on a new session: what was published is published again
    /// on a new connection (parked tracks are dropped with the old one).
    pub(super) fn rejoined(&mut self, session: &mut Session, out: &mut Vec<Output>) {
        self.drop_negotiations(session);
        self.sources.retain(|_, s| *s != SourceState::Parked);
        let sources: Vec<TrackSource> = self
            .sources
            .iter()
            .filter(|(_, s)| **s == SourceState::Published)
            .map(|(source, _)| *source)
            .collect();
        self.connection = None;
        if sources.is_empty() {
            // Nothing to send again: the old connection (and any parked track) is over.
            out.push(Output::Peer(PeerAction::ClosePublisher));
        } else {
            // Before any publish made meanwhile: that one goes on the new connection.
            let op = session.reserve(OperationKind::Negotiate);
            self.queue.push_front((op, OfferJob::Republish(sources)));
        }
    }

    /// The publishing connection is over (the call left its room, or the server gave it up):
    /// its tracks end. A publish waiting its turn still goes to the server (which answers it).
    pub(super) fn reset(&mut self, ctx: &mut Ctx<'_>) {
        // The publish under way was offered on the connection that is closing: it fails, and
        // its request is not sent again (a resend after a resume would publish, in whatever
        // room the call is in by then, a track whose connection is gone).
        if let Some(f) = &self.in_flight
            && matches!(f.job, OfferJob::Publish(_))
        {
            if matches!(f.stage, Stage::Answering(_)) {
                // The shell lets go of the track it added for the offer.
                ctx.out
                    .push(Output::Peer(PeerAction::CancelOffer { op: f.op }));
            }
            self.finish(ctx, Err("the publishing connection closed".into()));
        }
        self.drop_negotiations(ctx.session);
        self.sources
            .retain(|_, s| matches!(s, SourceState::Publishing { .. }));
        for state in self.sources.values_mut() {
            if let SourceState::Publishing { parked, .. } = state {
                *parked = false;
            }
        }
        self.connection = None;
        self.gate_open = false;
        self.held.clear();
    }

    /// Forgets the restarts and republishes waiting or under way (they were for a connection
    /// that is gone).
    fn drop_negotiations(&mut self, session: &mut Session) {
        self.queue.retain(|(op, job)| {
            let keep = matches!(job, OfferJob::Publish(_));
            if !keep {
                session.forget(*op);
            }
            keep
        });
        if let Some(f) = &self.in_flight
            && !matches!(f.job, OfferJob::Publish(_))
        {
            session.forget(f.op);
            self.in_flight = None;
        }
    }

    /// Starts the next negotiation if none is under way.
    pub(super) fn next(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(f) = &self.in_flight {
            // Its request failed meanwhile (the server lost the session): it is over.
            if ctx.session.is_pending(f.op) {
                return;
            }
            let f = self.in_flight.take().expect("checked");
            if f.stage != Stage::Offering {
                ctx.out
                    .push(Output::Peer(PeerAction::CancelOffer { op: f.op }));
            }
            if f.job == OfferJob::Restart {
                ctx.recovery.restart_done(ctx.now.at, false);
            }
            self.undo(&f.job);
        }
        while let Some((op, job)) = self.queue.pop_front() {
            if !ctx.session.is_pending(op) {
                self.undo(&job);
                continue;
            }
            let generation = match (&job, self.connection) {
                (OfferJob::Restart, None) => {
                    ctx.session.forget(op);
                    ctx.recovery.restart_done(ctx.now.at, false);
                    continue;
                }
                (OfferJob::Republish(_), _) | (OfferJob::Publish(_), None) => {
                    self.generations += 1;
                    self.connection = Some(self.generations);
                    self.gate_open = false;
                    self.held.clear();
                    self.generations
                }
                (OfferJob::Restart, Some(g)) => {
                    self.gate_open = false;
                    g
                }
                (OfferJob::Publish(_), Some(g)) => g,
            };
            ctx.out.push(Output::Peer(PeerAction::Offer {
                op,
                generation,
                job: job.clone(),
            }));
            self.in_flight = Some(InFlight {
                op,
                job,
                stage: Stage::Offering,
            });
            return;
        }
    }

    /// The shell made offer `op`: its frame (the caller sends it, or the session keeps it
    /// until the connection is back). `None` when the offer is no longer wanted.
    pub(super) fn offered(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: OperationId,
        sdp: String,
    ) -> Option<String> {
        let Some(f) = self
            .in_flight
            .as_mut()
            .filter(|f| f.op == op && f.stage == Stage::Offering)
        else {
            ctx.out.push(Output::Peer(PeerAction::CancelOffer { op }));
            return None;
        };
        let source = match f.job {
            OfferJob::Publish(source) => Some(source),
            OfferJob::Restart | OfferJob::Republish(_) => None,
        };
        let text = crate::protocol::encode(&ClientFrame::PublishOffer { op, sdp, source });
        ctx.session.made(op, &text);
        f.stage = Stage::Answering(ctx.now.at + ANSWER_TIMEOUT);
        Some(text)
    }

    /// The server's answer to `op`.
    pub(super) fn answer(&mut self, op: OperationId, sdp: String, out: &mut Vec<Output>) {
        if let Some(f) = self.in_flight.as_mut()
            && f.op == op
            && matches!(f.stage, Stage::Answering(_))
        {
            f.stage = Stage::Applying;
            out.push(Output::Peer(PeerAction::ApplyAnswer { op, sdp }));
        }
    }

    /// The shell could not make offer `op`.
    pub(super) fn offer_failed(&mut self, ctx: &mut Ctx<'_>, op: OperationId, message: String) {
        if self.in_flight.as_ref().is_some_and(|f| f.op == op) {
            self.finish(ctx, Err(message));
        }
    }

    /// The answer to `op` was applied (or not); the candidates held for it, to send.
    pub(super) fn applied(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: OperationId,
        result: Result<(), String>,
    ) -> Vec<IceCandidate> {
        if !self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.op == op && f.stage == Stage::Applying)
        {
            return Vec::new();
        }
        let ok = result.is_ok();
        self.finish(ctx, result);
        if ok {
            self.gate_open = true;
            return std::mem::take(&mut self.held);
        }
        Vec::new()
    }

    /// The server refused request `op` (or the session failed it): if it is the offer under
    /// way, the offer is undone (the session gave the op its outcome).
    pub(super) fn refused(&mut self, op: OperationId, out: &mut Vec<Output>) {
        if let Some(f) = self.in_flight.take_if(|f| f.op == op) {
            if f.stage != Stage::Offering {
                out.push(Output::Peer(PeerAction::CancelOffer { op }));
            }
            self.undo(&f.job);
        }
    }

    /// The server refused the restart or republish offer `op`: it is over, as a failure.
    pub(super) fn negotiation_failed(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: OperationId,
        message: String,
    ) {
        if let Some(f) = self.in_flight.as_ref().filter(|f| f.op == op) {
            if f.stage != Stage::Offering {
                ctx.out.push(Output::Peer(PeerAction::CancelOffer { op }));
            }
            self.finish(ctx, Err(message));
        }
    }

    /// The server did not answer in time: the offer is given up.
    pub(super) fn expired(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(f) = &self.in_flight
            && let Stage::Answering(at) = f.stage
            && at <= ctx.now.at
        {
            let op = f.op;
            ctx.out.push(Output::Peer(PeerAction::CancelOffer { op }));
            self.finish(
                ctx,
                Err("the server did not answer the media offer in time".into()),
            );
        }
    }

    /// A candidate of publishing connection `generation`: to send now, or held until the
    /// server answered (dropped when the connection is gone).
    pub(super) fn candidate(
        &mut self,
        generation: u64,
        candidate: IceCandidate,
    ) -> Option<IceCandidate> {
        if self.connection != Some(generation) {
            return None;
        }
        if self.gate_open {
            return Some(candidate);
        }
        self.held.push(candidate);
        None
    }

    /// The negotiation under way is over with `result`: its outcome.
    fn finish(&mut self, ctx: &mut Ctx<'_>, result: Result<(), String>) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let op = f.op;
        let pending = ctx.session.is_pending(op);
        ctx.session.forget(op);
        match (&f.job, result) {
            (OfferJob::Publish(source), Ok(())) => {
                self.sources.insert(*source, SourceState::Published);
                if pending {
                    ctx.out.push(Output::Event(CallEvent::Completed {
                        op,
                        kind: OperationKind::Publish,
                        result: Ok(()),
                    }));
                    ctx.out.push(Output::Outcome(op, Ok(Outcome::Done)));
                }
            }
            (OfferJob::Publish(_), Err(message)) => {
                self.undo(&f.job);
                if pending {
                    let error = OpError {
                        code: ErrorCode::MediaFailed,
                        message,
                    };
                    ctx.out.push(Output::Event(CallEvent::Completed {
                        op,
                        kind: OperationKind::Publish,
                        result: Err(error.clone()),
                    }));
                    ctx.out.push(Output::Outcome(op, Err(error)));
                }
            }
            (OfferJob::Restart, result) => ctx.recovery.restart_done(ctx.now.at, result.is_ok()),
            (OfferJob::Republish(_), Ok(())) => {}
            (OfferJob::Republish(_), Err(message)) => {
                // Not published on the server: the tracks are over, the connection too.
                self.sources.retain(|_, s| *s != SourceState::Published);
                self.connection = None;
                ctx.out.push(Output::Local(super::LocalAction::EndAll));
                ctx.out.push(Output::Peer(PeerAction::ClosePublisher));
                ctx.out
                    .push(Output::Event(CallEvent::Media(MediaEvent::Failed {
                        connection: MediaConnection::Publish,
                        publication: None,
                        message: format!("publishing again after the rejoin failed: {message}"),
                    })));
            }
        }
    }

    /// A publish that did not happen: its source is as it was.
    fn undo(&mut self, job: &OfferJob) {
        if let OfferJob::Publish(source) = job
            && let Some(SourceState::Publishing { parked, .. }) = self.sources.get(source).copied()
        {
            if parked {
                self.sources.insert(*source, SourceState::Parked);
            } else {
                self.sources.remove(source);
            }
        }
    }
}

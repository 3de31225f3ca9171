//! Media in the core: the server's media signals (offers, answers, candidates, failures) and
//! what the peer-connection shell reports, turned into peer-connection work, frames and events
//! (the recovery policy decides what a failure means, `publishing.rs` runs the offers).

use crate::event::{CallEvent, OperationKind};
use crate::protocol::{ClientFrame, IceCandidate, MediaConnection};

use super::super::policy::recovery::RecoveryOutput;
use super::super::session::MediaSignal;
use super::{ClientCore, Now, Output, PeerAction, PeerInput};

impl ClientCore {
    pub(super) fn media_signal(&mut self, now: Now, signal: MediaSignal) {
        match signal {
            MediaSignal::PublishAnswer { op, sdp } => {
                self.publishing.answer(op, sdp, &mut self.out)
            }
            MediaSignal::SubscribeOffer { negotiation, sdp } => {
                self.out.push(Output::Peer(PeerAction::AnswerOffer {
                    negotiation,
                    generation: self.subscriber,
                    sdp,
                }))
            }
            MediaSignal::Candidate {
                connection,
                candidate,
            } => self.out.push(Output::Peer(PeerAction::AddCandidate {
                connection,
                candidate,
            })),
            MediaSignal::Interrupted { connection } => {
                let outputs = self.recovery.server_saw_failure(
                    now.at,
                    connection,
                    self.publishing.connected(),
                    self.receiving,
                );
                self.recovery_outputs(outputs);
            }
            MediaSignal::Lost { connection } => {
                self.recovery.given_up(connection);
                match connection {
                    MediaConnection::Publish => {
                        let mut ctx = ctx!(self, now);
                        self.publishing.reset(&mut ctx);
                        self.out.push(Output::Peer(PeerAction::ClosePublisher));
                    }
                    MediaConnection::Subscribe => self.close_subscriber(),
                }
            }
            MediaSignal::Held { .. } | MediaSignal::Layers { .. } => {}
        }
    }

    pub(super) fn close_subscriber(&mut self) {
        self.receiving = false;
        self.subscriber += 1;
        self.out.push(Output::Peer(PeerAction::CloseSubscriber));
    }

    pub(super) fn peer(&mut self, now: Now, input: PeerInput) {
        match input {
            PeerInput::Answered {
                negotiation,
                generation,
                sdp,
            } => {
                if generation != self.subscriber {
                    // For a receiving connection closed since.
                    return;
                }
                self.receiving = true;
                // Not refused for a full offline queue: the server's offer needs its answer.
                let (_, text) = self.session.request(OperationKind::Negotiate, None, |op| {
                    ClientFrame::SubscribeAnswer {
                        op,
                        negotiation,
                        sdp,
                    }
                });
                self.send_request(text);
            }
            PeerInput::Offered { op, sdp } => {
                let mut ctx = ctx!(self, now);
                if let Some(text) = self.publishing.offered(&mut ctx, op, sdp) {
                    self.send_request(text);
                }
            }
            PeerInput::OfferFailed { op, message } => {
                let mut ctx = ctx!(self, now);
                self.publishing.offer_failed(&mut ctx, op, message);
            }
            PeerInput::Applied { op, result } => {
                let mut ctx = ctx!(self, now);
                let held = self.publishing.applied(&mut ctx, op, result);
                for candidate in held {
                    self.send_candidate(MediaConnection::Publish, candidate);
                }
            }
            PeerInput::Candidate {
                connection: MediaConnection::Publish,
                generation,
                candidate,
            } => {
                if let Some(candidate) = self.publishing.candidate(generation, candidate) {
                    self.send_candidate(MediaConnection::Publish, candidate);
                }
            }
            PeerInput::Candidate {
                connection: MediaConnection::Subscribe,
                candidate,
                ..
            } => self.send_candidate(MediaConnection::Subscribe, candidate),
            PeerInput::State {
                connection,
                generation,
                connected,
            } => {
                // A late report of a connection closed (or replaced) since: nothing to do.
                let current = match connection {
                    MediaConnection::Publish => self.publishing.generation(),
                    MediaConnection::Subscribe => self.receiving.then_some(self.subscriber),
                };
                if current != Some(generation) {
                    return;
                }
                let outputs = match (connection, connected) {
                    (MediaConnection::Publish, false) => self.recovery.publisher_failed(now.at),
                    (MediaConnection::Publish, true) => self.recovery.publisher_connected(),
                    (MediaConnection::Subscribe, false) => self.recovery.subscriber_failed(),
                    (MediaConnection::Subscribe, true) => self.recovery.subscriber_connected(),
                };
                self.recovery_outputs(outputs);
            }
            PeerInput::TrackArrived(publication) => {
                let event = self.session.tracks.arrived(publication);
                self.out.push(Output::Event(event));
            }
        }
        self.next_offer(now);
    }

    pub(super) fn send_candidate(&mut self, connection: MediaConnection, candidate: IceCandidate) {
        let frame = ClientFrame::IceCandidate {
            connection,
            candidate,
        };
        self.connection
            .send_or_hold(crate::protocol::encode(&frame), &mut self.out);
    }

    pub(super) fn recovery_outputs(&mut self, outputs: Vec<RecoveryOutput>) {
        for output in outputs {
            match output {
                RecoveryOutput::Event(event) => {
                    self.out.push(Output::Event(CallEvent::Media(event)))
                }
                RecoveryOutput::Report(connection) => {
                    let frame = ClientFrame::MediaInterrupted { connection };
                    self.connection
                        .send_or_hold(crate::protocol::encode(&frame), &mut self.out);
                }
                RecoveryOutput::RestartPublishing => self.publishing.restart(&mut self.session),
            }
        }
    }
}

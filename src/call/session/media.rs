//! Media frames: the call's own negotiation (answers, offers, candidates, failures) and the room's tracks.

use crate::event::{CallEvent, MediaEvent};
use crate::protocol::ServerFrame;

use super::{Handled, MediaSignal, Session};

impl Session {
    /// Takes `frame` if it is one of this area's: `None` then, else the frame back.
    pub(super) fn media_frame(
        &mut self,
        frame: ServerFrame,
        out: &mut Handled,
    ) -> Option<ServerFrame> {
        match frame {
            ServerFrame::PublishAnswer { op, sdp } => {
                // The answer goes to the publish's negotiation, which finishes the op once the
                // answer is applied (`Call::publish`); a refusal finishes it here.
                out.media.push(MediaSignal::PublishAnswer { op, sdp });
            }
            ServerFrame::SubscribeOffer { negotiation, sdp } => {
                out.media
                    .push(MediaSignal::SubscribeOffer { negotiation, sdp });
            }
            ServerFrame::MediaFailed {
                connection,
                publication,
                message,
            } => out.events.push(CallEvent::Media(MediaEvent::Failed {
                connection,
                publication,
                message,
            })),
            ServerFrame::PublishLayers { source, rids } => {
                let layers = rids.len();
                out.media.push(MediaSignal::Layers { source, rids });
                out.events.push(CallEvent::Media(MediaEvent::LayersWanted {
                    source,
                    layers,
                }));
            }
            ServerFrame::Speakers { room, speakers } => {
                out.events
                    .push(CallEvent::Media(MediaEvent::ActiveSpeakers {
                        room,
                        speakers,
                    }));
            }
            ServerFrame::MediaInterrupted { connection, .. } => {
                out.media.push(MediaSignal::Interrupted { connection });
            }
            ServerFrame::MediaLost {
                connection,
                message,
            } => {
                if connection == crate::protocol::MediaConnection::Subscribe {
                    // What the lost connection carried is over; the server offers it again on
                    // a new connection, and each track comes back as a new `Subscribed` one.
                    for (publication, received) in self.tracks.lost() {
                        out.tracks.ended.push(publication.id.clone());
                        if received {
                            out.events
                                .push(CallEvent::Media(MediaEvent::Unsubscribed { publication }));
                        }
                    }
                }
                out.media.push(MediaSignal::Lost { connection });
                out.events.push(CallEvent::Media(MediaEvent::Failed {
                    connection,
                    publication: None,
                    message,
                }));
            }
            ServerFrame::IceCandidate {
                connection,
                candidate,
            } => out.media.push(MediaSignal::Candidate {
                connection,
                candidate,
            }),
            ServerFrame::TrackPublished {
                room,
                seq,
                publication,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.publications.push(publication.clone());
                    // A new publication of this call's own starts unmuted on the server (after
                    // a rejoin, a mute by someone else is over).
                    if publication.participant == self.me {
                        out.media.push(MediaSignal::Held {
                            source: publication.source,
                            held: false,
                        });
                    }
                    out.events.push(CallEvent::Media(MediaEvent::Published {
                        room,
                        seq,
                        publication,
                    }));
                }
            }
            ServerFrame::TrackMuted {
                room,
                seq,
                publication,
                by,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    for p in &mut snap.publications {
                        if p.id == publication.id {
                            *p = publication.clone();
                        }
                    }
                    // Someone else muted this call's own track: it stops sending it too, until
                    // the server says it is unmuted (this call's own unmute, applied).
                    if publication.participant == self.me && (by.is_some() || !publication.muted) {
                        out.media.push(MediaSignal::Held {
                            source: publication.source,
                            held: publication.muted,
                        });
                    }
                    let event = if publication.muted {
                        MediaEvent::Muted {
                            room,
                            seq,
                            publication,
                            by,
                        }
                    } else {
                        MediaEvent::Unmuted {
                            room,
                            seq,
                            publication,
                        }
                    };
                    out.events.push(CallEvent::Media(event));
                }
            }
            ServerFrame::TrackUnpublished {
                room,
                seq,
                publication,
                reason,
            } => {
                if let Some(snap) = self.advance(&room, seq) {
                    snap.publications.retain(|p| p.id != publication.id);
                    out.events.push(CallEvent::Media(MediaEvent::Unpublished {
                        room,
                        seq,
                        publication,
                        reason,
                    }));
                }
            }
            other => return Some(other),
        }
        None
    }
}

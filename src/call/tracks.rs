//! The lifecycle of the tracks reaching a call, sans-IO: which publications it receives, which
//! it paused, and when each ends. The session core runs it over the events it makes; the call's
//! shell keeps only the track handles and ends the ones this says are over.

use std::collections::{BTreeMap, HashMap};

use crate::event::{CallEvent, MediaEvent};
use crate::model::{OperationId, Publication};

/// How a remote track reaches the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its packets arrive.
    Receiving,
    /// Unsubscribed: still negotiated, no packets until subscribed again.
    Paused,
}

/// The remote tracks, and the open subscribe / unsubscribe requests about them.
#[derive(Debug, Default)]
pub(crate) struct TrackBook {
    tracks: BTreeMap<String, (Publication, State)>,
    /// The publication each open subscribe (`true`) or unsubscribe (`false`) request is about.
    requests: HashMap<OperationId, (String, bool)>,
}

/// What the shell must do with its track handles.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TrackChanges {
    /// Handles to end (their readers get `None`) and forget, by publication id.
    pub ended: Vec<String>,
    /// The call left its room: its peer connections are over.
    pub reset: bool,
    /// The call joined its room again on a new session: its peer connections are over, its
    /// local tracks are to be published again.
    pub rejoined: bool,
}

impl TrackBook {
    /// A track arrived on the call's receiving connection.
    pub(crate) fn arrived(&mut self, publication: Publication) -> CallEvent {
        self.tracks.insert(
            publication.id.clone(),
            (publication.clone(), State::Receiving),
        );
        CallEvent::Media(MediaEvent::Subscribed { publication })
    }

    /// Whether the publication's packets reach the call now.
    pub(crate) fn receiving(&self, id: &str) -> bool {
        matches!(self.tracks.get(id), Some((_, State::Receiving)))
    }

    /// The publications received now.
    pub(crate) fn received(&self) -> impl Iterator<Item = &str> {
        self.tracks
            .iter()
            .filter(|(_, (_, s))| *s == State::Receiving)
            .map(|(id, _)| id.as_str())
    }

    /// The receiving connection is gone: every track ends. Returns each one's publication and
    /// whether it was received (not paused).
    pub(crate) fn lost(&mut self) -> Vec<(Publication, bool)> {
        std::mem::take(&mut self.tracks)
            .into_values()
            .map(|(p, s)| (p, s == State::Receiving))
            .collect()
    }

    /// Notes a subscribe (`true`) or unsubscribe request about publication `id`.
    pub(crate) fn requested(&mut self, op: OperationId, id: String, subscribe: bool) {
        self.requests.insert(op, (id, subscribe));
    }

    /// Request `op` finished; when it was a track request that succeeded, the track resumes or
    /// pauses and the event saying so is returned.
    pub(crate) fn request_done(&mut self, op: OperationId, ok: bool) -> Option<CallEvent> {
        let (id, subscribe) = self.requests.remove(&op)?;
        if !ok {
            return None;
        }
        let (publication, state) = self.tracks.get_mut(&id)?;
        let (from, to) = if subscribe {
            (State::Paused, State::Receiving)
        } else {
            (State::Receiving, State::Paused)
        };
        if *state != from {
            return None;
        }
        *state = to;
        let publication = publication.clone();
        Some(CallEvent::Media(if subscribe {
            MediaEvent::Subscribed { publication }
        } else {
            MediaEvent::Unsubscribed { publication }
        }))
    }

    /// Follows the session's events: an unpublished track ends (and a received one is
    /// announced as `Unsubscribed` right after), leaving the room ends every track. Returns the
    /// events with those added, and what the shell must do.
    pub(crate) fn follow(&mut self, events: Vec<CallEvent>) -> (Vec<CallEvent>, TrackChanges) {
        let mut changes = TrackChanges::default();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let mut unsubscribed = None;
            match &event {
                CallEvent::Left { .. } => {
                    changes
                        .ended
                        .extend(std::mem::take(&mut self.tracks).into_keys());
                    changes.reset = true;
                }
                CallEvent::Rejoined { .. } => {
                    changes
                        .ended
                        .extend(std::mem::take(&mut self.tracks).into_keys());
                    changes.rejoined = true;
                }
                CallEvent::Media(MediaEvent::Unpublished { publication, .. }) => {
                    if let Some((_, state)) = self.tracks.remove(&publication.id) {
                        changes.ended.push(publication.id.clone());
                        if state == State::Receiving {
                            unsubscribed = Some(publication.clone());
                        }
                    }
                }
                _ => {}
            }
            out.push(event);
            if let Some(publication) = unsubscribed {
                out.push(CallEvent::Media(MediaEvent::Unsubscribed { publication }));
            }
        }
        (out, changes)
    }

    /// The call closed: every track ends.
    pub(crate) fn close(&mut self) -> Vec<String> {
        self.requests.clear();
        std::mem::take(&mut self.tracks).into_keys().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Reason, TrackSource};

    fn camera() -> Publication {
        Publication::new("alice".into(), TrackSource::Camera)
    }

    #[test]
    fn pause_resume_and_end() {
        let mut book = TrackBook::default();
        book.arrived(camera());
        assert!(book.receiving("alice/camera"));
        book.requested(OperationId(1), "alice/camera".into(), false);
        assert!(matches!(
            book.request_done(OperationId(1), true),
            Some(CallEvent::Media(MediaEvent::Unsubscribed { .. }))
        ));
        assert!(!book.receiving("alice/camera"));
        // A failed resume changes nothing; a second answer to the same op neither.
        book.requested(OperationId(2), "alice/camera".into(), true);
        assert_eq!(book.request_done(OperationId(2), false), None);
        assert_eq!(book.request_done(OperationId(2), true), None);
        // Unpublished while paused: it ends, with no Unsubscribed (it was not received).
        let unpublished = CallEvent::Media(MediaEvent::Unpublished {
            room: "r".into(),
            seq: 3,
            publication: camera(),
            reason: Reason::Quit,
        });
        let (events, changes) = book.follow(vec![unpublished.clone()]);
        assert_eq!(events, vec![unpublished]);
        assert_eq!(changes.ended, vec!["alice/camera".to_owned()]);
    }

    #[test]
    fn a_received_track_unpublished_is_unsubscribed_and_leaving_ends_all() {
        let mut book = TrackBook::default();
        book.arrived(camera());
        let unpublished = CallEvent::Media(MediaEvent::Unpublished {
            room: "r".into(),
            seq: 3,
            publication: camera(),
            reason: Reason::Quit,
        });
        let (events, _) = book.follow(vec![unpublished]);
        assert!(matches!(
            events[..],
            [_, CallEvent::Media(MediaEvent::Unsubscribed { .. })]
        ));
        book.arrived(Publication::new("bob".into(), TrackSource::Microphone));
        let left = CallEvent::Left {
            room: "r".into(),
            reason: Reason::Kicked,
            op: None,
        };
        let (_, changes) = book.follow(vec![left]);
        assert!(changes.reset);
        assert_eq!(changes.ended, vec!["bob/microphone".to_owned()]);
        assert_eq!(book.received().count(), 0);
    }
}

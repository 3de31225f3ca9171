//! How a call brings its media connections back, sans-IO: which failure is news (one
//! `Interrupted` per outage, one `Restored` when it is over), when the server is told, and the
//! ICE-restart schedule of the publishing connection (at once, then after a wait that grows
//! while restarts cannot even be negotiated). The media task (`call/media.rs`) owns the peer
//! connections and does what this says; time comes in with the inputs.

use std::time::{Duration, Instant};

use crate::event::MediaEvent;
use crate::protocol::MediaConnection;

/// After an ICE restart was negotiated, how long the new candidates get before the call
/// restarts again (the WebRTC stack gives up on candidate pairs that get no answer within
/// about 3 s).
pub(crate) const RESTART_WAIT: Duration = Duration::from_secs(5);
/// The wait before the second restart when the first could not be negotiated (then doubled,
/// up to [`RESTART_WAIT`]).
pub(crate) const RESTART_RETRY: Duration = Duration::from_millis(500);

/// What the media task does.
#[derive(Debug, PartialEq)]
pub(crate) enum RecoveryOutput {
    /// Tell the application.
    Event(MediaEvent),
    /// Tell the server this side saw `connection` fail (it keeps the publications for its
    /// grace period from now, and offers the receiving connection again).
    Report(MediaConnection),
    /// Negotiate an ICE restart of the publishing connection, and say how it went with
    /// [`Recovery::restart_done`].
    RestartPublishing,
}

/// A publishing connection being restored.
#[derive(Debug, Clone)]
struct Restoring {
    /// A restart is being negotiated.
    in_flight: bool,
    /// When to restart again (none while one is in flight).
    next: Option<Instant>,
    /// Restarts asked for so far.
    attempts: u32,
}

/// The state of a call's two media connections, as far as recovery goes.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    publishing_down: Option<Restoring>,
    receiving_down: bool,
}

impl Recovery {
    /// When [`tick`](Self::tick) is due: the next publishing restart, if one waits.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.publishing_down
            .as_ref()
            .filter(|r| !r.in_flight)
            .and_then(|r| r.next)
    }

    /// Time passed: a restart that is due starts.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<RecoveryOutput> {
        match self.publishing_down.as_mut() {
            Some(r) if !r.in_flight && r.next.is_some_and(|at| at <= now) => {
                r.in_flight = true;
                r.next = None;
                r.attempts += 1;
                vec![RecoveryOutput::RestartPublishing]
            }
            _ => Vec::new(),
        }
    }

    /// The connections were closed (the call's media was reset, or its membership is new):
    /// nothing is being restored.
    pub(crate) fn reset(&mut self) {
        *self = Recovery::default();
    }

    /// The server says its side of `connection` failed. `publishing`: this call has a
    /// publishing connection; `receiving`: it has a receiving one.
    pub(crate) fn server_saw_failure(
        &mut self,
        now: Instant,
        connection: MediaConnection,
        publishing: bool,
        receiving: bool,
    ) -> Vec<RecoveryOutput> {
        let news = match connection {
            // The server's side failed first: restart as if this side had seen it.
            MediaConnection::Publish if self.publishing_down.is_none() && publishing => {
                self.publishing_down = Some(restoring_from(now));
                true
            }
            MediaConnection::Subscribe if receiving => {
                !std::mem::replace(&mut self.receiving_down, true)
            }
            _ => false,
        };
        if news {
            vec![RecoveryOutput::Event(MediaEvent::Interrupted {
                connection,
            })]
        } else {
            Vec::new()
        }
    }

    /// The server gave `connection` up (it was not restored in time; the session reported
    /// it): it is not being restored any more.
    pub(crate) fn given_up(&mut self, connection: MediaConnection) {
        match connection {
            MediaConnection::Publish => self.publishing_down = None,
            MediaConnection::Subscribe => self.receiving_down = false,
        }
    }

    /// This side's publishing connection failed.
    pub(crate) fn publisher_failed(&mut self, now: Instant) -> Vec<RecoveryOutput> {
        let mut out = Vec::new();
        match self.publishing_down.as_mut() {
            // Failed again after a restart: restart again now.
            Some(r) => r.next = Some(now),
            None => {
                self.publishing_down = Some(restoring_from(now));
                out.push(RecoveryOutput::Event(MediaEvent::Interrupted {
                    connection: MediaConnection::Publish,
                }));
            }
        }
        out.push(RecoveryOutput::Report(MediaConnection::Publish));
        out
    }

    /// This side's publishing connection is connected.
    pub(crate) fn publisher_connected(&mut self) -> Vec<RecoveryOutput> {
        if self.publishing_down.take().is_some() {
            vec![RecoveryOutput::Event(MediaEvent::Restored {
                connection: MediaConnection::Publish,
            })]
        } else {
            Vec::new()
        }
    }

    /// The restart asked for ended: `negotiated` (the new candidates get their time), or not
    /// (the next one sooner, the wait doubling).
    pub(crate) fn restart_done(&mut self, now: Instant, negotiated: bool) {
        if let Some(r) = self.publishing_down.as_mut() {
            r.in_flight = false;
            let wait = if negotiated {
                RESTART_WAIT
            } else {
                (RESTART_RETRY * 2u32.saturating_pow(r.attempts.saturating_sub(1)))
                    .min(RESTART_WAIT)
            };
            r.next = Some(now + wait);
        }
    }

    /// This side's receiving connection failed: the server offers it again with an ICE
    /// restart (asked again after every failure) and keeps what it carries meanwhile.
    pub(crate) fn subscriber_failed(&mut self) -> Vec<RecoveryOutput> {
        let mut out = Vec::new();
        if !std::mem::replace(&mut self.receiving_down, true) {
            out.push(RecoveryOutput::Event(MediaEvent::Interrupted {
                connection: MediaConnection::Subscribe,
            }));
        }
        out.push(RecoveryOutput::Report(MediaConnection::Subscribe));
        out
    }

    /// This side's receiving connection is connected.
    pub(crate) fn subscriber_connected(&mut self) -> Vec<RecoveryOutput> {
        if std::mem::take(&mut self.receiving_down) {
            vec![RecoveryOutput::Event(MediaEvent::Restored {
                connection: MediaConnection::Subscribe,
            })]
        } else {
            Vec::new()
        }
    }
}

/// A publishing connection to restore, its first restart due at `now`.
fn restoring_from(now: Instant) -> Restoring {
    Restoring {
        in_flight: false,
        next: Some(now),
        attempts: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecoveryOutput::*;

    const PUBLISH: MediaConnection = MediaConnection::Publish;
    const SUBSCRIBE: MediaConnection = MediaConnection::Subscribe;

    fn interrupted(connection: MediaConnection) -> RecoveryOutput {
        Event(MediaEvent::Interrupted { connection })
    }

    fn restored(connection: MediaConnection) -> RecoveryOutput {
        Event(MediaEvent::Restored { connection })
    }

    #[test]
    fn a_failed_publisher_restarts_at_once_then_on_a_growing_schedule() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        assert_eq!(
            r.publisher_failed(t0),
            [interrupted(PUBLISH), Report(PUBLISH)]
        );
        assert_eq!(r.next_deadline(), Some(t0));
        assert_eq!(r.tick(t0), [RestartPublishing]);
        // In flight: nothing more until it is done.
        assert_eq!(r.next_deadline(), None);
        assert!(r.tick(t0 + RESTART_WAIT).is_empty());
        // Not negotiated: 0.5 s, then 1 s, 2 s, 4 s, and 5 s at most.
        let mut at = t0;
        for want in [500, 1000, 2000, 4000, 5000, 5000] {
            r.restart_done(at, false);
            assert_eq!(r.next_deadline(), Some(at + Duration::from_millis(want)));
            at += Duration::from_millis(want);
            assert_eq!(r.tick(at), [RestartPublishing]);
        }
        // Negotiated: the new candidates get 5 s.
        r.restart_done(at, true);
        assert_eq!(r.next_deadline(), Some(at + RESTART_WAIT));
        // Failing again meanwhile: a restart at once, and one report, no second event.
        assert_eq!(r.publisher_failed(at), [Report(PUBLISH)]);
        assert_eq!(r.tick(at), [RestartPublishing]);
        assert_eq!(r.publisher_connected(), [restored(PUBLISH)]);
        assert!(r.publisher_connected().is_empty());
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn each_outage_is_told_once_whoever_saw_it_first() {
        let t0 = Instant::now();
        let mut r = Recovery::default();
        // The server saw the receiving side fail, then this side did: one event, one report.
        assert_eq!(
            r.server_saw_failure(t0, SUBSCRIBE, true, true),
            [interrupted(SUBSCRIBE)]
        );
        assert_eq!(r.subscriber_failed(), [Report(SUBSCRIBE)]);
        assert_eq!(r.subscriber_connected(), [restored(SUBSCRIBE)]);
        assert!(r.subscriber_connected().is_empty());
        // A failure of a connection the call does not have is no news.
        assert!(r.server_saw_failure(t0, PUBLISH, false, true).is_empty());
        assert!(r.server_saw_failure(t0, SUBSCRIBE, true, false).is_empty());
        // The server's word on the publishing side starts its restarts.
        assert_eq!(
            r.server_saw_failure(t0, PUBLISH, true, true),
            [interrupted(PUBLISH)]
        );
        assert_eq!(r.tick(t0), [RestartPublishing]);
        // Given up by the server: nothing more is restored.
        r.given_up(PUBLISH);
        r.restart_done(t0, false);
        assert_eq!(r.next_deadline(), None);
        assert!(r.publisher_connected().is_empty());
    }
}

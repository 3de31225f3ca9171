//! The call's connection policy, sans-IO: when to ping, when a silent server counts as lost,
//! and how to get back — the reconnect schedule (attempts, backoff with jitter, the overall
//! deadline), what each attempt's outcome means, and when the call ends for good. The driver
//! (`call/driver.rs`) owns the socket and does what this says; it reads no clock for a decision
//! and makes none. Time comes in with every input; [`LinkCore::next_deadline`] says when the
//! driver must call [`LinkCore::tick`] next.

use std::time::{Duration, Instant};

use crate::model::Reason;
use crate::protocol::ErrorCode;

use super::super::ReconnectPolicy;

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkOutput {
    /// Send a `ping` saying what the call has taken.
    Ping,
    /// The connection is gone (the call is offline): requests wait in the session.
    Offline,
    /// Tell the application: connecting again, attempt `attempt`, because of `reason`.
    Reconnecting { attempt: u32, reason: Reason },
    /// Open a new socket and resume the session on it (or log in again when the server no
    /// longer knows it); report the outcome with [`LinkCore::attempted`].
    Attempt,
    /// The attempt under way took too long: drop it (a new one follows, when the policy allows).
    Abandon,
    /// Back online: send again what is unanswered (and what was held), then serve the socket.
    Online,
    /// The call is over, for `Reason`: close the socket if one is open, finish the call.
    Finish(Reason),
}

/// How one attempt to connect again went, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempted {
    /// The session resumed, or a new one was made (the server had lost the old one).
    Connected,
    /// The server refused for good (`resume` and then `hello` refused with `code`).
    Refused(ErrorCode),
    /// The socket could not be opened, or broke during the handshake.
    Failed,
}

#[derive(Clone, Debug)]
enum State {
    /// Serving a socket: `heard` is when anything last came from the server.
    Online { heard: Instant, next_ping: Instant },
    /// Waiting before attempt `attempt`, until `until`.
    Waiting {
        attempt: u32,
        until: Instant,
        started: Instant,
    },
    /// Attempt `attempt` under way, abandoned at `deadline`.
    Attempting {
        attempt: u32,
        deadline: Instant,
        started: Instant,
    },
    /// Over.
    Finished,
}

/// The connection policy of one call.
#[derive(Clone, Debug)]
pub(crate) struct LinkCore {
    policy: ReconnectPolicy,
    keepalive: Duration,
    idle_timeout: Duration,
    connect_timeout: Duration,
    state: State,
    /// The jitter's random numbers (xorshift64*), seeded by the driver.
    random: u64,
}

/// The timing a [`LinkCore`] follows.
#[derive(Clone, Debug)]
pub(crate) struct LinkTiming {
    pub(crate) policy: ReconnectPolicy,
    /// How often the call pings the server.
    pub(crate) keepalive: Duration,
    /// Nothing from the server for this long: the connection is lost.
    pub(crate) idle_timeout: Duration,
    /// Longest one attempt (open, resume or hello) may take.
    pub(crate) connect_timeout: Duration,
}

impl LinkCore {
    /// A call that is online at `now` (its first socket is logged in). `seed` feeds the jitter.
    pub(crate) fn new(timing: LinkTiming, now: Instant, seed: u64) -> Self {
        LinkCore {
            keepalive: timing.keepalive,
            idle_timeout: timing.idle_timeout,
            connect_timeout: timing.connect_timeout,
            policy: timing.policy,
            state: State::Online {
                heard: now,
                next_ping: now + timing.keepalive,
            },
            random: seed | 1,
        }
    }

    /// When [`tick`](Self::tick) is due next; `None` once the call is over.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Online { next_ping, .. } => Some(*next_ping),
            State::Waiting { until, .. } => Some(*until),
            State::Attempting { deadline, .. } => Some(*deadline),
            State::Finished => None,
        }
    }

    /// Whether the call is serving a socket.
    #[cfg(test)]
    pub(crate) fn is_online(&self) -> bool {
        matches!(self.state, State::Online { .. })
    }

    /// Whether the call is over.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Time passed: a ping or a lost connection, a wait that ended, an attempt too slow.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<LinkOutput> {
        let mut out = Vec::new();
        match self.state.clone() {
            State::Online { heard, next_ping } if now >= next_ping => {
                if now.saturating_duration_since(heard) >= self.idle_timeout {
                    self.lost_at(now, Reason::Timeout, &mut out);
                } else {
                    // Missed ticks are not made up: the next one is a period from now.
                    self.state = State::Online {
                        heard,
                        next_ping: now + self.keepalive,
                    };
                    out.push(LinkOutput::Ping);
                }
            }
            State::Waiting {
                attempt,
                until,
                started,
            } if now >= until => {
                self.state = State::Attempting {
                    attempt,
                    deadline: now + self.connect_timeout,
                    started,
                };
                out.push(LinkOutput::Attempt);
            }
            State::Attempting {
                attempt,
                deadline,
                started,
            } if now >= deadline => {
                out.push(LinkOutput::Abandon);
                self.schedule(now, attempt + 1, started, Reason::Timeout, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Something came from the server.
    pub(crate) fn heard(&mut self, now: Instant) {
        if let State::Online { heard, .. } = &mut self.state {
            *heard = now;
        }
    }

    /// The socket broke, closed, or the server said `goodbye` with `reconnect: true`.
    pub(crate) fn lost(&mut self, now: Instant, reason: Reason) -> Vec<LinkOutput> {
        let mut out = Vec::new();
        match self.state.clone() {
            State::Online { .. } => self.lost_at(now, reason, &mut out),
            // The new socket broke while what was unanswered went out on it: the next attempt.
            State::Attempting {
                attempt, started, ..
            } => self.schedule(now, attempt + 1, started, Reason::Network, &mut out),
            State::Waiting { .. } | State::Finished => {}
        }
        out
    }

    /// How the attempt asked for with [`LinkOutput::Attempt`] went.
    pub(crate) fn attempted(&mut self, now: Instant, result: Attempted) -> Vec<LinkOutput> {
        let mut out = Vec::new();
        let State::Attempting {
            attempt, started, ..
        } = self.state.clone()
        else {
            return out;
        };
        match result {
            Attempted::Connected => {
                self.state = State::Online {
                    heard: now,
                    next_ping: now + self.keepalive,
                };
                out.push(LinkOutput::Online);
            }
            // Refused for good (the token expired or was revoked…): no use retrying.
            Attempted::Refused(code) => self.finish(
                match code {
                    ErrorCode::TokenExpired => Reason::TokenExpired,
                    ErrorCode::TokenRevoked => Reason::TokenRevoked,
                    _ => Reason::InvalidPassword,
                },
                &mut out,
            ),
            Attempted::Failed => {
                self.schedule(now, attempt + 1, started, Reason::Network, &mut out)
            }
        }
        out
    }

    /// The application closed the call, or the server ended the session for `reason`.
    pub(crate) fn close(&mut self, reason: Reason) -> Vec<LinkOutput> {
        let mut out = Vec::new();
        if !self.is_finished() {
            self.finish(reason, &mut out);
        }
        out
    }

    fn lost_at(&mut self, now: Instant, reason: Reason, out: &mut Vec<LinkOutput>) {
        out.push(LinkOutput::Offline);
        if self.policy.max_attempts == 0 {
            self.finish(reason, out);
            return;
        }
        self.schedule(now, 1, now, reason, out);
    }

    /// Attempt `attempt` after its wait, unless the policy gives up (by attempts, or because
    /// the wait would end past its overall deadline).
    fn schedule(
        &mut self,
        now: Instant,
        attempt: u32,
        started: Instant,
        reason: Reason,
        out: &mut Vec<LinkOutput>,
    ) {
        let random = self.next_random();
        let Some(delay) = self.policy.delay(attempt, random) else {
            return self.finish(reason, out);
        };
        if now.saturating_duration_since(started) + delay > self.policy.max_duration {
            return self.finish(reason, out);
        }
        out.push(LinkOutput::Reconnecting { attempt, reason });
        self.state = State::Waiting {
            attempt,
            until: now + delay,
            started,
        };
    }

    fn finish(&mut self, reason: Reason, out: &mut Vec<LinkOutput>) {
        self.state = State::Finished;
        out.push(LinkOutput::Finish(reason));
    }

    /// A number in [0, 1).
    fn next_random(&mut self) -> f64 {
        let mut x = self.random;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LinkTiming {
        LinkTiming {
            policy: ReconnectPolicy::default(),
            keepalive: Duration::from_millis(2_500),
            idle_timeout: Duration::from_millis(7_500),
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_online_call_pings_and_a_silent_server_is_lost() {
        let t0 = Instant::now();
        let mut link = LinkCore::new(timing(), t0, 7);
        assert_eq!(link.next_deadline(), Some(t0 + ms(2_500)));
        assert!(link.tick(t0 + ms(2_499)).is_empty());
        assert_eq!(link.tick(t0 + ms(2_500)), [LinkOutput::Ping]);
        link.heard(t0 + ms(3_000));
        assert_eq!(link.tick(t0 + ms(5_000)), [LinkOutput::Ping]);
        assert_eq!(link.tick(t0 + ms(7_500)), [LinkOutput::Ping]);
        // 7.5 s after the last frame heard (at 3 s).
        assert_eq!(
            link.tick(t0 + ms(10_500)),
            [
                LinkOutput::Offline,
                LinkOutput::Reconnecting {
                    attempt: 1,
                    reason: Reason::Timeout
                }
            ]
        );
        // The first attempt starts at once.
        assert_eq!(link.next_deadline(), Some(t0 + ms(10_500)));
        assert_eq!(link.tick(t0 + ms(10_500)), [LinkOutput::Attempt]);
    }

    #[test]
    fn attempts_back_off_within_the_policy_and_a_slow_one_is_abandoned() {
        let t0 = Instant::now();
        let mut link = LinkCore::new(timing(), t0, 3);
        link.lost(t0, Reason::Network);
        assert_eq!(link.tick(t0), [LinkOutput::Attempt]);
        let out = link.attempted(t0 + ms(10), Attempted::Failed);
        assert_eq!(
            out,
            [LinkOutput::Reconnecting {
                attempt: 2,
                reason: Reason::Network
            }]
        );
        // The second wait: 300 ms less up to 30 % jitter.
        let wait = link.next_deadline().unwrap() - (t0 + ms(10));
        assert!(wait >= ms(210) && wait <= ms(300), "{wait:?}");
        let at = link.next_deadline().unwrap();
        assert_eq!(link.tick(at), [LinkOutput::Attempt]);
        // The attempt hangs: abandoned after the connect timeout, for `timeout`.
        let deadline = link.next_deadline().unwrap();
        assert_eq!(deadline, at + Duration::from_secs(5));
        assert_eq!(
            link.tick(deadline),
            [
                LinkOutput::Abandon,
                LinkOutput::Reconnecting {
                    attempt: 3,
                    reason: Reason::Timeout
                }
            ]
        );
        let at = link.next_deadline().unwrap();
        assert_eq!(link.tick(at), [LinkOutput::Attempt]);
        assert_eq!(
            link.attempted(at + ms(5), Attempted::Connected),
            [LinkOutput::Online]
        );
        assert!(link.is_online());
        assert_eq!(link.next_deadline(), Some(at + ms(5) + ms(2_500)));
    }

    #[test]
    fn the_policy_gives_up_by_attempts_by_duration_and_on_a_refusal() {
        let t0 = Instant::now();
        let mut never = LinkCore::new(
            LinkTiming {
                policy: ReconnectPolicy::never(),
                ..timing()
            },
            t0,
            1,
        );
        assert_eq!(
            never.lost(t0, Reason::Network),
            [LinkOutput::Offline, LinkOutput::Finish(Reason::Network)]
        );
        assert_eq!(never.next_deadline(), None);

        // Two attempts at most.
        let mut two = LinkCore::new(
            LinkTiming {
                policy: ReconnectPolicy::default().max_attempts(2),
                ..timing()
            },
            t0,
            1,
        );
        two.lost(t0, Reason::Network);
        two.tick(t0);
        two.attempted(t0, Attempted::Failed);
        let at = two.next_deadline().unwrap();
        two.tick(at);
        assert_eq!(
            two.attempted(at, Attempted::Failed),
            [LinkOutput::Finish(Reason::Network)]
        );

        // Past the overall deadline (45 s): the wait that would end after it is not taken.
        let mut slow = LinkCore::new(timing(), t0, 1);
        slow.lost(t0, Reason::Network);
        slow.tick(t0);
        let out = slow.attempted(t0 + Duration::from_secs(45), Attempted::Failed);
        assert_eq!(out, [LinkOutput::Finish(Reason::Network)]);

        // A refusal ends the call with what it means.
        let mut refused = LinkCore::new(timing(), t0, 1);
        refused.lost(t0, Reason::Network);
        refused.tick(t0);
        assert_eq!(
            refused.attempted(t0, Attempted::Refused(ErrorCode::TokenExpired)),
            [LinkOutput::Finish(Reason::TokenExpired)]
        );
    }

    #[test]
    fn a_socket_that_breaks_while_coming_back_counts_as_a_failed_attempt() {
        let t0 = Instant::now();
        let mut link = LinkCore::new(timing(), t0, 5);
        link.lost(t0, Reason::Network);
        link.tick(t0);
        assert_eq!(
            link.lost(t0 + ms(1), Reason::Network),
            [LinkOutput::Reconnecting {
                attempt: 2,
                reason: Reason::Network
            }]
        );
        // Closing ends it at once, whatever the state.
        assert_eq!(link.close(Reason::Quit), [LinkOutput::Finish(Reason::Quit)]);
        assert!(link.close(Reason::Quit).is_empty());
        assert!(link.is_finished());
    }
}

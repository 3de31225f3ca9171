//! Property tests of the client's policy cores (`call/policy/`), over random sequences of what
//! a connection and a peer connection may do, at random times:
//! - the connection policy ([`LinkCore`]): attempts count 1, 2, 3… within an outage, each wait
//!   is within the reconnect policy's bounds (its jitter at most), no wait ends past the
//!   policy's overall deadline, an attempt is asked only after its `Reconnecting`, the call is
//!   online only after an attempt, and nothing follows `Finish`;
//! - media recovery ([`Recovery`]): `Interrupted` and `Restored` alternate per connection, a
//!   restart is asked only while the publishing connection is down and never while one is in
//!   flight, and the waits between restarts stay within `RESTART_RETRY`..=`RESTART_WAIT`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::call::ReconnectPolicy;
use crate::call::policy::link::{Attempted, LinkCore, LinkOutput, LinkTiming};
use crate::call::policy::recovery::{RESTART_WAIT, Recovery, RecoveryOutput};
use crate::event::MediaEvent;
use crate::model::Reason;
use crate::protocol::{ErrorCode, MediaConnection};

#[derive(Clone, Debug)]
enum LinkStep {
    /// Time passes (ms), then the policy's deadline is honoured if it came.
    Wait(u64),
    Heard,
    Lost,
    Connected,
    Failed,
    Refused,
    Close,
}

fn link_step() -> impl Strategy<Value = LinkStep> {
    prop_oneof![
        6 => (0..12_000u64).prop_map(LinkStep::Wait),
        2 => Just(LinkStep::Heard),
        2 => Just(LinkStep::Lost),
        3 => Just(LinkStep::Connected),
        3 => Just(LinkStep::Failed),
        1 => Just(LinkStep::Refused),
        1 => Just(LinkStep::Close),
    ]
}

proptest! {
    #[test]
    fn the_connection_policy_keeps_its_schedule(
        seed in any::<u64>(),
        max_attempts in 0..8u32,
        steps in proptest::collection::vec(link_step(), 1..80),
    ) {
        let policy = ReconnectPolicy::default().max_attempts(max_attempts);
        let timing = LinkTiming {
            policy: policy.clone(),
            keepalive: Duration::from_millis(2_500),
            idle_timeout: Duration::from_millis(7_500),
            connect_timeout: Duration::from_secs(5),
        };
        let t0 = Instant::now();
        let mut now = t0;
        let mut link = LinkCore::new(timing, now, seed);
        // What the outputs said so far.
        let mut finished = false;
        let mut online = true;
        let mut attempt_asked = false;
        let mut last_attempt = 0u32;
        let mut outage_started: Option<Instant> = None;
        let mut check = |out: Vec<LinkOutput>, now: Instant, link: &LinkCore| -> Result<(), TestCaseError> {
            for output in out {
                prop_assert!(!finished, "{output:?} after Finish");
                match output {
                    LinkOutput::Finish(_) => finished = true,
                    LinkOutput::Offline => {
                        prop_assert!(online, "offline twice");
                        online = false;
                        last_attempt = 0;
                        outage_started = Some(now);
                    }
                    LinkOutput::Reconnecting { attempt, .. } => {
                        prop_assert!(!online);
                        prop_assert_eq!(attempt, last_attempt + 1, "attempts count up by one");
                        prop_assert!(attempt <= policy.max_attempts);
                        last_attempt = attempt;
                        attempt_asked = false;
                        // The wait before it is within the policy's bounds.
                        let wait = link.next_deadline().expect("a wait") - now;
                        let full = policy.delay(attempt, 0.0).unwrap();
                        let least = policy.delay(attempt, 0.999_999).unwrap();
                        prop_assert!(wait <= full && wait + Duration::from_millis(1) >= least,
                            "attempt {attempt}: {wait:?} not in {least:?}..={full:?}");
                        let started = outage_started.expect("an outage");
                        prop_assert!((now - started) + wait <= policy.max_duration,
                            "a wait past the overall deadline");
                    }
                    LinkOutput::Attempt => {
                        prop_assert!(!online && last_attempt > 0 && !attempt_asked);
                        attempt_asked = true;
                    }
                    LinkOutput::Online => {
                        prop_assert!(attempt_asked, "online without an attempt");
                        online = true;
                    }
                    LinkOutput::Abandon => {
                        prop_assert!(attempt_asked);
                        attempt_asked = false;
                    }
                    LinkOutput::Ping => prop_assert!(online),
                }
            }
            prop_assert_eq!(finished, link.is_finished());
            if finished {
                prop_assert_eq!(link.next_deadline(), None);
            }
            Ok(())
        };
        for step in steps {
            match step {
                LinkStep::Wait(ms) => {
                    let until = now + Duration::from_millis(ms);
                    // Every deadline on the way is honoured in order, as the driver does.
                    while let Some(at) = link.next_deadline().filter(|at| *at <= until) {
                        now = now.max(at);
                        let out = link.tick(now);
                        check(out, now, &link)?;
                    }
                    now = until;
                }
                LinkStep::Heard => link.heard(now),
                LinkStep::Lost => {
                    let out = link.lost(now, Reason::Network);
                    check(out, now, &link)?;
                }
                LinkStep::Connected => {
                    let out = link.attempted(now, Attempted::Connected);
                    check(out, now, &link)?;
                }
                LinkStep::Failed => {
                    let out = link.attempted(now, Attempted::Failed);
                    check(out, now, &link)?;
                }
                LinkStep::Refused => {
                    let out = link.attempted(now, Attempted::Refused(ErrorCode::TokenExpired));
                    check(out, now, &link)?;
                }
                LinkStep::Close => {
                    let out = link.close(Reason::Quit);
                    check(out, now, &link)?;
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum MediaStep {
    Wait(u64),
    PublisherFailed,
    PublisherConnected,
    RestartDone(bool),
    SubscriberFailed,
    SubscriberConnected,
    ServerSaw(bool),
    GivenUp(bool),
    Reset,
}

fn media_step() -> impl Strategy<Value = MediaStep> {
    prop_oneof![
        4 => (0..6_000u64).prop_map(MediaStep::Wait),
        2 => Just(MediaStep::PublisherFailed),
        2 => Just(MediaStep::PublisherConnected),
        3 => any::<bool>().prop_map(MediaStep::RestartDone),
        2 => Just(MediaStep::SubscriberFailed),
        2 => Just(MediaStep::SubscriberConnected),
        1 => any::<bool>().prop_map(MediaStep::ServerSaw),
        1 => any::<bool>().prop_map(MediaStep::GivenUp),
        1 => Just(MediaStep::Reset),
    ]
}

/// Outputs made at `now`.
fn at(now: Instant, out: Vec<RecoveryOutput>) -> Vec<(Instant, RecoveryOutput)> {
    out.into_iter().map(|o| (now, o)).collect()
}

fn connection(publish: bool) -> MediaConnection {
    if publish {
        MediaConnection::Publish
    } else {
        MediaConnection::Subscribe
    }
}

proptest! {
    #[test]
    fn media_recovery_tells_each_outage_once_and_keeps_its_schedule(
        steps in proptest::collection::vec(media_step(), 1..80),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut r = Recovery::default();
        // Per connection (publish, subscribe): whether the application was told it is down.
        let mut down = [false, false];
        let mut in_flight = false;
        let mut restart_done_at: Option<Instant> = None;
        for step in steps {
            let out = match step {
                MediaStep::Wait(ms) => {
                    let until = now + Duration::from_millis(ms);
                    let mut out = Vec::new();
                    while let Some(at) = r.next_deadline().filter(|at| *at <= until) {
                        now = now.max(at);
                        out.extend(r.tick(now).into_iter().map(|o| (now, o)));
                    }
                    now = until;
                    out
                }
                MediaStep::PublisherFailed => at(now, r.publisher_failed(now)),
                MediaStep::PublisherConnected => at(now, r.publisher_connected()),
                // Only a restart asked for ends (as the media task reports it).
                MediaStep::RestartDone(negotiated) => {
                    if in_flight {
                        in_flight = false;
                        restart_done_at = Some(now);
                        r.restart_done(now, negotiated);
                    }
                    Vec::new()
                }
                MediaStep::SubscriberFailed => at(now, r.subscriber_failed()),
                MediaStep::SubscriberConnected => at(now, r.subscriber_connected()),
                MediaStep::ServerSaw(publish) => {
                    at(now, r.server_saw_failure(now, connection(publish), true, true))
                }
                MediaStep::GivenUp(publish) => {
                    r.given_up(connection(publish));
                    down[usize::from(!publish)] = false;
                    if publish {
                        in_flight = false;
                        restart_done_at = None;
                    }
                    Vec::new()
                }
                MediaStep::Reset => {
                    r.reset();
                    down = [false, false];
                    in_flight = false;
                    restart_done_at = None;
                    Vec::new()
                }
            };
            for (now, output) in out {
                match output {
                    RecoveryOutput::Event(MediaEvent::Interrupted { connection }) => {
                        let i = usize::from(connection == MediaConnection::Subscribe);
                        prop_assert!(!down[i], "interrupted twice");
                        down[i] = true;
                    }
                    RecoveryOutput::Event(MediaEvent::Restored { connection }) => {
                        let i = usize::from(connection == MediaConnection::Subscribe);
                        prop_assert!(down[i], "restored without an interruption");
                        down[i] = false;
                        if i == 0 {
                            in_flight = false;
                            restart_done_at = None;
                        }
                    }
                    RecoveryOutput::Event(other) => prop_assert!(false, "{other:?}"),
                    RecoveryOutput::Report(_) => {}
                    RecoveryOutput::RestartPublishing => {
                        prop_assert!(down[0], "a restart of a connection that is up");
                        prop_assert!(!in_flight, "a restart while one is in flight");
                        if let Some(done) = restart_done_at.take() {
                            prop_assert!(now - done <= RESTART_WAIT, "waited past RESTART_WAIT");
                        }
                        in_flight = true;
                    }
                }
            }
        }
    }
}

//! Recording jobs over the sans-IO core with exact outputs: a job handed to a recorder, its
//! member joining, the state each report makes, a recorder lost, a required recording that
//! fails, a job nobody takes, and a call that ends while it records.

use crate::auth::Grants;
use crate::model::{
    AbortReason, OperationId, Reason, RecordingId, RecordingOptions, RecordingPolicy,
    RecordingState, Role, StopReason,
};
use crate::protocol::{ClientFrame, ErrorCode, RecorderReport, ServerFrame};
use crate::server::hub::{ConnId, Hub, HubConfig, Input, Output, testing};

const ALICE: ConnId = 1;
const BOB: ConnId = 2;
/// The recorder's control session and its member session.
const AGENT: ConnId = 10;
const MEMBER: ConnId = 11;

fn send(hub: &mut Hub, now: u64, conn: ConnId, frame: ClientFrame) -> Vec<Output> {
    hub.handle(now, Input::Frame { conn, frame })
}

fn frames_to(out: &[Output], to: ConnId) -> Vec<ServerFrame> {
    out.iter()
        .filter_map(|o| match o {
            Output::Deliver { to: t, frame, .. } if *t == to => Some((**frame).clone()),
            Output::Send { to: t, frame } if *t == to => Some(frame.clone()),
            Output::Broadcast { to: ts, frame } if ts.contains(&to) => Some((**frame).clone()),
            _ => None,
        })
        .collect()
}

fn join(hub: &mut Hub, conn: ConnId) -> Vec<Output> {
    join_as(hub, conn, OperationId(1))
}

fn join_as(hub: &mut Hub, conn: ConnId, op: OperationId) -> Vec<Output> {
    send(hub, 0, conn, testing::join("r", op))
}

/// Alice (host) and bob in room "r", a recorder logged in on `AGENT` and `MEMBER`; with
/// `ready`, the agent said `recorder_ready`.
fn world(config: HubConfig, ready: bool) -> Hub {
    let mut hub = Hub::new(config);
    for (conn, user) in [(ALICE, "alice"), (BOB, "bob")] {
        send(&mut hub, 0, conn, testing::hello(user));
        join(&mut hub, conn);
    }
    for conn in [AGENT, MEMBER] {
        let hello = ClientFrame::Hello {
            version: crate::protocol::PROTOCOL_VERSION,
            token: testing::token("rec", Grants::none().recorder(true)),
        };
        send(&mut hub, 0, conn, hello);
    }
    if ready {
        let out = send(
            &mut hub,
            0,
            AGENT,
            ClientFrame::RecorderReady { op: OperationId(1) },
        );
        assert!(matches!(
            frames_to(&out, AGENT)[..],
            [ServerFrame::Done { .. }]
        ));
    }
    hub
}

fn start(hub: &mut Hub, options: RecordingOptions) -> (Vec<Output>, RecordingId) {
    let out = send(
        hub,
        100,
        ALICE,
        ClientFrame::StartRecording {
            op: OperationId(7),
            options,
        },
    );
    let id = frames_to(&out, AGENT)
        .into_iter()
        .find_map(|f| match f {
            ServerFrame::RecordJob { job } => Some(job.recording),
            _ => None,
        })
        .unwrap_or_else(|| RecordingId::from("none"));
    (out, id)
}

/// The job's member joins and reports `recording`.
fn recording(hub: &mut Hub, id: &RecordingId) -> Vec<Output> {
    let out = send(
        hub,
        200,
        MEMBER,
        ClientFrame::RecorderJoin {
            op: OperationId(2),
            recording: id.clone(),
        },
    );
    assert!(
        matches!(frames_to(&out, MEMBER)[0], ServerFrame::Joined { ref participants, .. }
            if participants.iter().any(|p| p.role == Role::Recorder))
    );
    let report = ClientFrame::RecordingReport {
        recording: id.clone(),
        report: RecorderReport::Recording,
    };
    send(hub, 300, MEMBER, report)
}

fn state(hub: &Hub) -> RecordingState {
    hub.room(&"r".into())
        .unwrap()
        .properties()
        .recording
        .clone()
}

#[test]
fn a_job_goes_from_starting_to_recording_to_stopping_to_idle() {
    let mut hub = world(testing::config(), true);
    let (out, id) = start(&mut hub, RecordingOptions::default());
    assert!(frames_to(&out, ALICE).contains(&ServerFrame::Done {
        op: OperationId(7),
        seq: None
    }));
    assert!(matches!(state(&hub), RecordingState::Starting { .. }));
    let out = recording(&mut hub, &id);
    assert!(frames_to(&out, BOB)
        .iter()
        .any(|f| matches!(f, ServerFrame::RecordingStarted { recorder, .. } if recorder.as_str() == "rec")));
    assert!(matches!(
        state(&hub),
        RecordingState::Recording { since: 300, .. }
    ));
    // Stop: the recorder is asked, the state says stopping until it reports.
    let out = send(
        &mut hub,
        400,
        ALICE,
        ClientFrame::StopRecording { op: OperationId(8) },
    );
    assert!(frames_to(&out, AGENT).contains(&ServerFrame::RecordStop {
        recording: id.clone(),
        reason: StopReason::Requested
    }));
    assert!(matches!(state(&hub), RecordingState::Stopping { .. }));
    let again = send(
        &mut hub,
        400,
        ALICE,
        ClientFrame::StopRecording { op: OperationId(9) },
    );
    assert!(matches!(
        frames_to(&again, ALICE)[0],
        ServerFrame::Error {
            code: ErrorCode::NotRecording,
            ..
        }
    ));
    let report = ClientFrame::RecordingReport {
        recording: id.clone(),
        report: RecorderReport::Stopped {
            reason: StopReason::Requested,
            files: Vec::new(),
        },
    };
    let out = send(&mut hub, 500, MEMBER, report);
    assert!(frames_to(&out, BOB).iter().any(|f| matches!(
        f,
        ServerFrame::RecordingStopped {
            reason: StopReason::Requested,
            ..
        }
    )));
    assert_eq!(state(&hub), RecordingState::Idle);
    // The recorder leaves on its own: nothing more is reported.
    let out = send(
        &mut hub,
        600,
        MEMBER,
        ClientFrame::Leave { op: OperationId(3) },
    );
    assert!(
        !frames_to(&out, BOB)
            .iter()
            .any(|f| matches!(f, ServerFrame::RecordingAborted { .. }))
    );
}

#[test]
fn a_lost_recorder_aborts_its_jobs_and_is_not_held_for_a_resume() {
    let mut hub = world(testing::config(), true);
    let (_, id) = start(&mut hub, RecordingOptions::default());
    recording(&mut hub, &id);
    let out = hub.handle(
        700,
        Input::Disconnected {
            conn: MEMBER,
            reason: Reason::Network,
        },
    );
    let aborted: Vec<_> = frames_to(&out, ALICE)
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::RecordingAborted { .. }))
        .collect();
    assert!(matches!(
        &aborted[..],
        [ServerFrame::RecordingAborted { reason: AbortReason::RecorderLost, shut_down: false, recorder: Some(r), .. }]
            if r.as_str() == "rec"
    ));
    assert!(matches!(
        state(&hub),
        RecordingState::Failed {
            reason: AbortReason::RecorderLost,
            ..
        }
    ));
    // The member's seat went at once (no grace period for a recorder).
    assert_eq!(hub.room(&"r".into()).unwrap().participants().len(), 2);
    // A new recording may start, on the same recorder.
    let out = send(
        &mut hub,
        800,
        ALICE,
        ClientFrame::StartRecording {
            op: OperationId(27),
            options: RecordingOptions::default(),
        },
    );
    assert!(
        frames_to(&out, AGENT)
            .iter()
            .any(|f| matches!(f, ServerFrame::RecordJob { .. }))
    );
}

#[test]
fn a_required_recording_that_fails_ends_the_call() {
    let mut hub = world(testing::config(), true);
    let (_, id) = start(
        &mut hub,
        RecordingOptions::default().policy(RecordingPolicy::Required),
    );
    recording(&mut hub, &id);
    let report = ClientFrame::RecordingReport {
        recording: id,
        report: RecorderReport::Failed {
            reason: AbortReason::StorageFailed,
            message: "EFBIG".into(),
        },
    };
    let out = send(&mut hub, 800, MEMBER, report);
    let to_bob = frames_to(&out, BOB);
    let aborted = to_bob.iter().position(|f| {
        matches!(
            f,
            ServerFrame::RecordingAborted {
                shut_down: true,
                ..
            }
        )
    });
    let ended = to_bob.iter().position(|f| {
        matches!(
            f,
            ServerFrame::CallEnded {
                reason: Reason::RecordingFailed,
                ..
            }
        )
    });
    assert!(aborted.is_some() && aborted < ended, "{to_bob:?}");
    assert!(hub.room(&"r".into()).is_none());
}

#[test]
fn a_job_no_recorder_takes_fails_at_its_deadline() {
    let config = HubConfig {
        embedded_recorder: true,
        ..testing::config()
    };
    let mut hub = world(config, false);
    let (out, _) = start(&mut hub, RecordingOptions::default());
    // The embedded recorder is asked for, once.
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::StartRecorder))
            .count(),
        1
    );
    let again = send(
        &mut hub,
        100,
        ALICE,
        ClientFrame::StartRecording {
            op: OperationId(17),
            options: RecordingOptions::default(),
        },
    );
    assert!(matches!(
        frames_to(&again, ALICE)[0],
        ServerFrame::Error {
            code: ErrorCode::AlreadyRecording,
            ..
        }
    ));
    assert_eq!(hub.next_deadline(), Some(100 + 10_000));
    let out = hub.handle(100 + 10_000, Input::Tick);
    assert!(frames_to(&out, BOB).iter().any(|f| matches!(
        f,
        ServerFrame::RecordingAborted {
            reason: AbortReason::NoRecorder,
            recorder: None,
            ..
        }
    )));
    // Without the embedded recorder, and none connected: refused at once.
    let mut bare = world(testing::config(), false);
    let (out, _) = start(&mut bare, RecordingOptions::default());
    assert!(matches!(
        frames_to(&out, ALICE)[0],
        ServerFrame::Error {
            code: ErrorCode::NoRecorder,
            ..
        }
    ));
}

#[test]
fn a_recorder_is_never_host_and_the_call_ending_stops_its_job() {
    let mut hub = world(testing::config(), true);
    let (_, id) = start(&mut hub, RecordingOptions::default());
    recording(&mut hub, &id);
    // Someone else's job is not the member's to join or report.
    let stranger = ClientFrame::RecordingReport {
        recording: "rec-0-99".into(),
        report: RecorderReport::Recording,
    };
    let out = send(&mut hub, 800, MEMBER, stranger);
    assert!(matches!(
        frames_to(&out, MEMBER)[0],
        ServerFrame::Error {
            code: ErrorCode::NoSuchRecording,
            ..
        }
    ));
    // Alice and bob leave: the host role skips the recorder, and with only the recorder left
    // the job stops (room ended).
    send(
        &mut hub,
        900,
        ALICE,
        ClientFrame::Leave { op: OperationId(4) },
    );
    let room = hub.room(&"r".into()).unwrap();
    assert!(
        room.participants()
            .iter()
            .any(|p| p.user_id.as_str() == "bob" && p.role == Role::Host)
    );
    let out = send(
        &mut hub,
        950,
        BOB,
        ClientFrame::Leave { op: OperationId(4) },
    );
    assert!(frames_to(&out, AGENT).contains(&ServerFrame::RecordStop {
        recording: id,
        reason: StopReason::RoomEnded
    }));
}

#[test]
fn a_room_left_to_its_recorder_is_idle_and_whoever_comes_back_hosts_it() {
    let mut hub = world(testing::config(), true);
    let (_, id) = start(&mut hub, RecordingOptions::default());
    recording(&mut hub, &id);
    // The recorder cannot be kicked.
    let kick = ClientFrame::Kick {
        op: OperationId(5),
        user_id: "rec".into(),
        ban: None,
    };
    let out = send(&mut hub, 350, ALICE, kick);
    assert!(matches!(
        frames_to(&out, ALICE)[0],
        ServerFrame::Error {
            code: ErrorCode::InvalidParam,
            ..
        }
    ));
    for conn in [ALICE, BOB] {
        send(
            &mut hub,
            400,
            conn,
            ClientFrame::Leave { op: OperationId(6) },
        );
    }
    // Only the recorder is left, closing its files: the state is idle already.
    assert_eq!(state(&hub), RecordingState::Idle);
    let out = join_as(&mut hub, ALICE, OperationId(11));
    assert!(
        matches!(&frames_to(&out, ALICE)[0], ServerFrame::Joined { participants, .. }
        if participants.iter().any(|p| p.user_id.as_str() == "alice" && p.role == Role::Host))
    );
    // Nothing to stop (and no panic); a new recording may start.
    let out = send(
        &mut hub,
        500,
        ALICE,
        ClientFrame::StopRecording { op: OperationId(9) },
    );
    assert!(matches!(
        frames_to(&out, ALICE)[0],
        ServerFrame::Error {
            code: ErrorCode::NotRecording,
            ..
        }
    ));
    let out = send(
        &mut hub,
        500,
        ALICE,
        ClientFrame::StartRecording {
            op: OperationId(10),
            options: RecordingOptions::default(),
        },
    );
    assert!(frames_to(&out, ALICE).contains(&ServerFrame::Done {
        op: OperationId(10),
        seq: None
    }));
}

#[test]
fn a_report_after_a_stop_does_not_bring_the_recording_back() {
    let mut hub = world(testing::config(), true);
    let (_, id) = start(&mut hub, RecordingOptions::default());
    let join = ClientFrame::RecorderJoin {
        op: OperationId(2),
        recording: id.clone(),
    };
    send(&mut hub, 200, MEMBER, join);
    // The host stops before the recorder said it records.
    send(
        &mut hub,
        250,
        ALICE,
        ClientFrame::StopRecording { op: OperationId(8) },
    );
    assert!(matches!(state(&hub), RecordingState::Stopping { .. }));
    let late = ClientFrame::RecordingReport {
        recording: id.clone(),
        report: RecorderReport::Recording,
    };
    let out = send(&mut hub, 300, MEMBER, late);
    assert!(
        !frames_to(&out, BOB)
            .iter()
            .any(|f| matches!(f, ServerFrame::RecordingStarted { .. }))
    );
    assert!(matches!(state(&hub), RecordingState::Stopping { .. }));
    // A recorder that never finishes is given up on (as long again as a start may take).
    assert_eq!(hub.next_deadline(), Some(250 + 10_000));
    let out = hub.handle(250 + 10_000, Input::Tick);
    assert!(frames_to(&out, BOB).iter().any(|f| matches!(
        f,
        ServerFrame::RecordingAborted {
            reason: AbortReason::RecorderFailed,
            ..
        }
    )));
}

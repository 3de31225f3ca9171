//! The client core's policy as exact outputs: each scenario feeds inputs and checks everything
//! the core says, in order (frames, events, outcomes, socket and peer-connection work), with
//! time moved by hand. What the socket tests (`tests/signaling/resume.rs`, `media_fault.rs`,
//! `proxy.rs`) check end to end, these pin down step by step.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::publishing::ANSWER_TIMEOUT;
use super::*;
use crate::call::ReconnectPolicy;

struct Harness {
    core: ClientCore,
    now: Now,
}

const T0_UNIX: u64 = 1_800_000_000;

fn start_with(refreshes: bool, expires_at: u64, offline_queue: usize) -> Harness {
    let now = Now {
        at: Instant::now(),
        unix: T0_UNIX,
    };
    // A `Call`'s defaults, without the reconnect jitter (so waits are exact).
    let options = crate::call::CallOptions::default();
    let mut start = Start::new(UserId::from("ada"), "k1".into(), "t1".into(), &options);
    start.timing.policy.jitter = 0.0;
    start.expires_at = expires_at;
    start.refreshes = refreshes;
    start.offline_queue = offline_queue;
    Harness {
        core: ClientCore::new(start, now),
        now,
    }
}

fn start() -> Harness {
    start_with(false, 0, 64)
}

/// One output, as comparable JSON.
fn render(output: &Output) -> Value {
    match output {
        Output::Event(e) => json!({ "event": serde_json::to_value(e).unwrap() }),
        Output::Outcome(op, r) => json!({ "outcome": op.0, "ok": r.is_ok() }),
        Output::Send(text) => json!({ "send": serde_json::from_str::<Value>(text).unwrap() }),
        Output::Connect => json!("connect"),
        Output::Disconnect => json!("disconnect"),
        Output::Peer(action) => json!({ "peer": format!("{action:?}") }),
        Output::Local(action) => json!({ "local": format!("{action:?}") }),
        Output::EndRemote(id) => json!({ "end_remote": id }),
        Output::WantToken => json!("want_token"),
        Output::Finished(reason) => json!({ "finished": format!("{reason:?}") }),
    }
}

impl Harness {
    fn outputs(&mut self) -> Vec<Value> {
        self.core.drain().map(|o| render(&o)).collect()
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Value> {
        self.core.handle(self.now, input);
        self.outputs()
    }

    fn server(&mut self, frame: Value) -> Vec<Value> {
        self.input(Input::Text(&frame.to_string()))
    }

    fn peer(&mut self, input: PeerInput) -> Vec<Value> {
        self.input(Input::Peer(input))
    }

    /// Moves time on by `by` and ticks (if a deadline is due, or not).
    fn after(&mut self, by: Duration) -> Vec<Value> {
        self.now.at += by;
        self.now.unix += by.as_secs();
        self.input(Input::Tick)
    }

    fn message(&mut self, text: &str) -> OperationId {
        self.core
            .request(OperationKind::SendMessage, None, |op| {
                ClientFrame::SendMessage {
                    op,
                    to: None,
                    content_type: "text/plain".into(),
                    content: text.into(),
                }
            })
            .unwrap()
    }

    /// Joins room `standup` as a host.
    fn joined(&mut self) {
        self.core
            .request(OperationKind::Join, None, |op| ClientFrame::Join {
                op,
                room: Some("standup".into()),
                display_name: Some("Ada".into()),
                audio: true,
                video: true,
                state: String::new(),
                auto_subscribe: true,
            })
            .unwrap();
        self.outputs();
        let op = self.core.session.pending().next().unwrap();
        self.server(
            json!({"type": "joined", "op": op.0, "room": "standup", "seq": 1,
            "participants": [participant()], "properties": properties(), "publications": []}),
        );
    }

    /// Publishes `source` all the way: offer, answer, applied.
    fn published(&mut self, source: TrackSource) -> OperationId {
        let op = self.core.publish(self.now, source).unwrap();
        self.outputs();
        self.peer(PeerInput::Offered {
            op,
            sdp: "o".into(),
        });
        self.server(json!({"type": "publish_answer", "op": op.0, "sdp": "a"}));
        self.peer(PeerInput::Applied { op, result: Ok(()) });
        op
    }
}

fn participant() -> Value {
    json!({"user_id": "ada", "display_name": "Ada", "role": "host", "audio": true,
           "video": true, "state": ""})
}

fn properties() -> Value {
    json!({"screen_share": null, "recording": {"state": "idle"}, "custom": {}})
}

fn message_frame(op: u64, content: &str) -> Value {
    json!({"send": {"type": "send_message", "op": op, "to": null, "content_type": "text/plain",
                    "content": content}})
}

fn candidate(n: u32) -> IceCandidate {
    IceCandidate {
        candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

fn candidate_frame(connection: &str, n: u32) -> Value {
    json!({"send": {"type": "ice_candidate", "connection": connection,
        "candidate": serde_json::to_value(candidate(n)).unwrap()}})
}

fn offer(op: u64, generation: u64, job: &str) -> Value {
    json!({ "peer": format!("Offer {{ op: OperationId({op}), generation: {generation}, job: {job} }}") })
}

#[test]
fn a_lost_socket_resumes_then_sends_again_what_is_unanswered_and_what_was_held() {
    let mut h = start();
    let first = h.message("one");
    assert_eq!(h.outputs(), [message_frame(1, "one")]);
    assert_eq!(
        h.input(Input::SocketLost),
        [
            json!("disconnect"),
            json!({"event": {"event": "reconnecting", "attempt": 1, "reason": "network"}})
        ]
    );
    // Offline: a request waits in the session, a candidate is held.
    let second = h.message("two");
    h.peer(PeerInput::Candidate {
        connection: MediaConnection::Subscribe,
        generation: 0,
        candidate: candidate(1),
    });
    assert_eq!(h.outputs(), Vec::<Value>::new());
    // The first attempt at once (its deadline is now).
    assert_eq!(h.core.next_deadline(), Some(h.now.at));
    assert_eq!(h.after(Duration::ZERO), [json!("connect")]);
    assert_eq!(
        h.input(Input::Opened),
        [
            json!({"send": {"type": "resume", "version": 1, "token": "t1", "resume_key": "k1",
                         "received": 0}})
        ]
    );
    // The replay answers the first message; the second goes out after it, then the candidate.
    assert_eq!(
        h.server(json!({"type": "resumed", "session": 1, "replayed": 1})),
        [json!({"event": {"event": "reconnected", "replayed": 1}})]
    );
    assert_eq!(
        h.server(json!({"type": "done", "op": first.0, "n": 1})),
        [
            json!({"event": {"event": "message", "kind": "sent", "op": first.0, "seq": null,
                             "result": {"Ok": null}}}),
            json!({"outcome": first.0, "ok": true}),
            message_frame(second.0, "two"),
            candidate_frame("subscribe", 1),
        ]
    );
}

#[test]
fn a_failed_attempt_waits_its_backoff_and_a_refusal_ends_the_call() {
    let mut h = start();
    h.input(Input::SocketLost);
    assert_eq!(h.after(Duration::ZERO), [json!("connect")]);
    assert_eq!(
        h.input(Input::OpenFailed),
        [
            json!("disconnect"),
            json!({"event": {"event": "reconnecting", "attempt": 2, "reason": "network"}})
        ]
    );
    assert_eq!(h.after(Duration::from_millis(299)), Vec::<Value>::new());
    assert_eq!(h.after(Duration::from_millis(1)), [json!("connect")]);
    h.input(Input::Opened);
    // The token was revoked meanwhile: no use trying again.
    assert_eq!(
        h.server(json!({"type": "error", "code": "token_revoked", "message": "revoked"})),
        [
            json!("disconnect"),
            json!({"event": {"event": "closed", "reason": "token_revoked"}}),
            json!({"finished": "TokenRevoked"}),
        ]
    );
    assert_eq!(h.after(Duration::from_secs(60)), Vec::<Value>::new());
    assert_eq!(h.core.next_deadline(), None);
}

#[test]
fn a_silent_server_is_pinged_then_lost() {
    let mut h = start();
    let ping = json!({"send": {"type": "ping", "received": 0}});
    assert_eq!(
        h.after(Duration::from_millis(2500)),
        std::slice::from_ref(&ping)
    );
    assert_eq!(h.after(Duration::from_millis(2500)), [ping]);
    assert_eq!(
        h.after(Duration::from_millis(2500)),
        [
            json!("disconnect"),
            json!({"event": {"event": "reconnecting", "attempt": 1, "reason": "timeout"}})
        ]
    );
}

#[test]
fn unknown_session_logs_in_again_fails_what_was_unanswered_and_rejoins_then_publishes_again() {
    let mut h = start();
    h.joined();
    h.outputs();
    let camera = h.published(TrackSource::Camera);
    assert_eq!(camera, OperationId(2));
    let muted = h.core.set_muted(TrackSource::Camera, true).unwrap();
    h.outputs();
    h.input(Input::SocketLost);
    h.after(Duration::ZERO);
    h.input(Input::Opened);
    assert_eq!(
        h.server(json!({"type": "error", "code": "unknown_session", "message": "gone"})),
        [json!({"send": {"type": "hello", "version": 1, "token": "t1"}})]
    );
    assert_eq!(
        h.server(
            json!({"type": "welcome", "version": 1, "user_id": "ada", "session": 9,
                        "resume_key": "k2", "expires_at": 0})
        ),
        [
            json!({"event": {"event": "completed", "op": muted.0, "kind": "mute",
                "result": {"Err": {"code": "session_lost", "message": "the server lost the \
session before answering; whether the request took effect is unknown"}}}}),
            json!({"outcome": muted.0, "ok": false}),
            json!({"send": {"type": "join", "op": 4, "room": "standup", "display_name": "Ada",
                            "audio": true, "video": true, "state": "", "auto_subscribe": true}}),
        ]
    );
    // The join again is answered: the same camera track goes out on a new connection.
    let rejoined = h.server(
        json!({"type": "joined", "op": 4, "room": "standup", "seq": 1,
        "participants": [participant()], "properties": properties(), "publications": []}),
    );
    assert_eq!(rejoined[0], json!({"peer": "CloseSubscriber"}));
    assert_eq!(
        rejoined.last().unwrap(),
        &offer(5, 2, "Republish([Camera])")
    );
    // A resume after this names the new session's key.
    assert_eq!(h.core.connection.resume_key, "k2");
}

#[test]
fn one_publishing_offer_at_a_time_and_its_candidates_wait_for_its_answer() {
    let mut h = start();
    let mic = h.core.publish(h.now, TrackSource::Microphone).unwrap();
    let camera = h.core.publish(h.now, TrackSource::Camera).unwrap();
    assert_eq!(h.outputs(), [offer(mic.0, 1, "Publish(Microphone)")]);
    // Published already (or being published): refused here, nothing sent.
    assert!(matches!(
        h.core.publish(h.now, TrackSource::Camera),
        Err(CallError::InvalidParam { .. })
    ));
    let found = |n| PeerInput::Candidate {
        connection: MediaConnection::Publish,
        generation: 1,
        candidate: candidate(n),
    };
    assert_eq!(h.peer(found(1)), Vec::<Value>::new());
    assert_eq!(
        h.peer(PeerInput::Offered {
            op: mic,
            sdp: "o1".into()
        }),
        [
            json!({"send": {"type": "publish_offer", "op": mic.0, "sdp": "o1",
                         "source": "microphone"}})
        ]
    );
    assert_eq!(h.peer(found(2)), Vec::<Value>::new());
    assert_eq!(
        h.server(json!({"type": "publish_answer", "op": mic.0, "sdp": "a1"})),
        [json!({"peer": format!("ApplyAnswer {{ op: OperationId({}), sdp: \"a1\" }}", mic.0)})]
    );
    assert_eq!(
        h.peer(PeerInput::Applied {
            op: mic,
            result: Ok(())
        }),
        [
            json!({"event": {"event": "completed", "op": mic.0, "kind": "publish",
                             "result": {"Ok": null}}}),
            json!({"outcome": mic.0, "ok": true}),
            candidate_frame("publish", 1),
            candidate_frame("publish", 2),
            offer(camera.0, 1, "Publish(Camera)"),
        ]
    );
    // Answered: later candidates go at once; an old connection's never.
    assert_eq!(h.peer(found(3)), [candidate_frame("publish", 3)]);
    assert_eq!(
        h.peer(PeerInput::Candidate {
            connection: MediaConnection::Publish,
            generation: 0,
            candidate: candidate(4),
        }),
        Vec::<Value>::new()
    );
}

#[test]
fn an_offer_the_server_does_not_answer_in_time_fails_and_is_undone() {
    let mut h = start();
    let op = h.core.publish(h.now, TrackSource::Camera).unwrap();
    h.outputs();
    h.peer(PeerInput::Offered {
        op,
        sdp: "o".into(),
    });
    assert!(h.core.publishing.next_deadline() == Some(h.now.at + ANSWER_TIMEOUT));
    h.core.link = LinkCore::new(
        LinkTiming {
            policy: ReconnectPolicy::default(),
            keepalive: Duration::from_secs(100),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        },
        h.now.at,
        1,
    );
    assert_eq!(
        h.after(ANSWER_TIMEOUT - Duration::from_millis(1)),
        Vec::<Value>::new()
    );
    let out = h.after(Duration::from_millis(1));
    assert_eq!(
        out[0],
        json!({"peer": format!("CancelOffer {{ op: OperationId({}) }}", op.0)})
    );
    assert_eq!(
        out[1],
        json!({"event": {"event": "completed", "op": op.0, "kind": "publish",
            "result": {"Err": {"code": "media_failed",
                               "message": "the server did not answer the media offer in time"}}}})
    );
    assert_eq!(out[2], json!({"outcome": op.0, "ok": false}));
    // A late answer changes nothing; the source can be published again.
    assert_eq!(
        h.server(json!({"type": "publish_answer", "op": op.0, "sdp": "a"})),
        Vec::<Value>::new()
    );
    assert!(h.core.publish(h.now, TrackSource::Camera).is_ok());
}

#[test]
fn a_refused_publish_is_undone_and_the_next_offer_goes() {
    let mut h = start();
    let screen = h.core.publish(h.now, TrackSource::Screen).unwrap();
    let mic = h.core.publish(h.now, TrackSource::Microphone).unwrap();
    h.outputs();
    h.peer(PeerInput::Offered {
        op: screen,
        sdp: "o".into(),
    });
    let out = h.server(
        json!({"type": "error", "op": screen.0, "code": "screen_share_busy",
                              "message": "bob shares"}),
    );
    assert_eq!(out[0]["event"]["kind"], "publish");
    assert_eq!(
        out[0]["event"]["result"]["Err"]["code"],
        "screen_share_busy"
    );
    assert_eq!(
        out[1..],
        [
            json!({"peer": format!("CancelOffer {{ op: OperationId({}) }}", screen.0)}),
            json!({"outcome": screen.0, "ok": false}),
            offer(mic.0, 1, "Publish(Microphone)"),
        ]
    );
}

#[test]
fn a_failed_publishing_connection_is_restarted_at_once_then_on_a_growing_schedule() {
    let mut h = start();
    h.published(TrackSource::Camera);
    let failed = PeerInput::State {
        connection: MediaConnection::Publish,
        generation: 1,
        connected: false,
    };
    assert_eq!(
        h.peer(failed),
        [
            json!({"event": {"event": "media", "kind": "interrupted", "connection": "publish"}}),
            json!({"send": {"type": "media_interrupted", "connection": "publish"}}),
        ]
    );
    // Due now: the restart's offer.
    assert_eq!(h.after(Duration::ZERO), [offer(2, 1, "Restart")]);
    // It could not be made: the next one in 0.5 s, then 1 s.
    let op = OperationId(2);
    assert_eq!(
        h.peer(PeerInput::OfferFailed {
            op,
            message: "x".into()
        }),
        Vec::<Value>::new()
    );
    assert_eq!(h.after(Duration::from_millis(499)), Vec::<Value>::new());
    assert_eq!(h.after(Duration::from_millis(1)), [offer(3, 1, "Restart")]);
    let op = OperationId(3);
    assert_eq!(
        h.peer(PeerInput::Offered {
            op,
            sdp: "r".into()
        }),
        [json!({"send": {"type": "publish_offer", "op": 3, "sdp": "r"}})]
    );
    h.server(json!({"type": "publish_answer", "op": 3, "sdp": "a"}));
    assert_eq!(
        h.peer(PeerInput::Applied { op, result: Ok(()) }),
        Vec::<Value>::new()
    );
    assert_eq!(
        h.peer(PeerInput::State {
            connection: MediaConnection::Publish,
            generation: 1,
            connected: true
        }),
        [json!({"event": {"event": "media", "kind": "restored", "connection": "publish"}})]
    );
    assert_eq!(h.core.recovery.next_deadline(), None);
}

#[test]
fn the_provider_is_asked_before_expiry_and_a_resume_sends_the_newest_token() {
    let mut h = start_with(true, T0_UNIX + 3600, 64);
    h.core.link = LinkCore::new(
        LinkTiming {
            policy: ReconnectPolicy::default(),
            keepalive: Duration::from_secs(10_000),
            idle_timeout: Duration::from_secs(30_000),
            connect_timeout: Duration::from_secs(10),
        },
        h.now.at,
        1,
    );
    assert_eq!(
        h.core.next_deadline(),
        Some(h.now.at + Duration::from_secs(3540))
    );
    assert_eq!(h.after(Duration::from_secs(3540)), [json!("want_token")]);
    assert_eq!(
        h.input(Input::Token(Some("t2".into()))),
        [json!({"send": {"type": "refresh", "op": 1, "token": "t2"}})]
    );
    // Lost before the answer: the resume sends the newest token.
    h.input(Input::SocketLost);
    h.after(Duration::ZERO);
    assert_eq!(h.input(Input::Opened)[0]["send"]["token"], "t2");
    h.server(json!({"type": "resumed", "session": 1, "replayed": 0}));
    let out = h.server(json!({"type": "refreshed", "op": 1, "expires_at": T0_UNIX + 7200}));
    assert_eq!(out[0]["event"]["kind"], "refresh_token");
    assert_eq!(h.core.expires_at(), T0_UNIX + 7200);
    // Next time: a minute before the new expiry.
    assert_eq!(
        h.core.token.next_deadline(),
        Some(h.now.at + Duration::from_secs(7200 - 3540 - 60))
    );
    // A failing provider is asked again a second later at the earliest.
    h.now.at += Duration::from_secs(7200 - 3540 - 60);
    h.now.unix += 7200 - 3540 - 60;
    assert_eq!(h.input(Input::Tick), [json!("want_token")]);
    assert_eq!(h.input(Input::Token(None)), Vec::<Value>::new());
    assert!(h.core.token.next_deadline().unwrap() >= h.now.at + Duration::from_secs(1));
}

#[test]
fn closing_says_closed_once_and_nothing_after() {
    let mut h = start();
    h.joined();
    h.outputs();
    assert_eq!(
        h.input(Input::Close),
        [
            json!({"event": {"event": "left", "room": "standup", "reason": "quit", "op": null}}),
            json!({"event": {"event": "closed", "reason": "quit"}}),
            json!({"finished": "Quit"}),
        ]
    );
    assert_eq!(h.server(json!({"type": "pong"})), Vec::<Value>::new());
    assert_eq!(h.input(Input::SocketLost), Vec::<Value>::new());
    assert_eq!(h.core.next_deadline(), None);
    assert!(matches!(
        h.core
            .request(OperationKind::Leave, None, |op| ClientFrame::Leave { op }),
        Err(CallError::Closed {
            reason: Reason::Quit
        })
    ));
}

#[test]
fn offline_requests_wait_up_to_the_offline_queue() {
    let mut h = start_with(false, 0, 2);
    h.input(Input::SocketLost);
    h.message("a");
    h.message("b");
    assert!(matches!(
        h.core
            .request(OperationKind::Leave, None, |op| ClientFrame::Leave { op }),
        Err(CallError::Offline { queued: 2 })
    ));
    assert_eq!(h.outputs(), Vec::<Value>::new());
}

#[test]
fn a_goodbye_asking_to_reconnect_reconnects_and_one_that_does_not_ends_the_call() {
    let mut h = start();
    assert_eq!(
        h.server(json!({"type": "goodbye", "reason": "server_shutdown", "reconnect": true})),
        [
            json!("disconnect"),
            json!({"event": {"event": "reconnecting", "attempt": 1, "reason": "server_shutdown"}}),
        ]
    );
    h.after(Duration::ZERO);
    h.input(Input::Opened);
    h.server(json!({"type": "resumed", "session": 1, "replayed": 0}));
    assert_eq!(
        h.server(json!({"type": "goodbye", "reason": "kicked"})),
        [
            json!({"event": {"event": "closed", "reason": "kicked"}}),
            json!({"finished": "Kicked"}),
        ]
    );
}

#[test]
fn a_new_session_logged_in_with_a_refreshed_token_keeps_it() {
    let mut h = start_with(true, T0_UNIX + 3600, 64);
    h.after(Duration::from_secs(3540));
    h.input(Input::Token(Some("t2".into())));
    // Lost before the refresh was answered, and the server lost the session too.
    h.input(Input::SocketLost);
    h.after(Duration::ZERO);
    h.input(Input::Opened);
    assert_eq!(
        h.server(json!({"type": "error", "code": "unknown_session", "message": "gone"})),
        [json!({"send": {"type": "hello", "version": 1, "token": "t2"}})]
    );
    h.server(
        json!({"type": "welcome", "version": 1, "user_id": "ada", "session": 2,
                    "resume_key": "k2", "expires_at": T0_UNIX + 7200}),
    );
    // The refresh failed with the old session, but its token is the new session's.
    h.input(Input::SocketLost);
    h.after(Duration::ZERO);
    assert_eq!(h.input(Input::Opened)[0]["send"]["token"], "t2");
}

#[test]
fn a_refused_restart_is_tried_again_on_schedule() {
    let mut h = start();
    h.published(TrackSource::Camera);
    h.peer(PeerInput::State {
        connection: MediaConnection::Publish,
        generation: 1,
        connected: false,
    });
    assert_eq!(h.after(Duration::ZERO), [offer(2, 1, "Restart")]);
    h.peer(PeerInput::Offered {
        op: OperationId(2),
        sdp: "r".into(),
    });
    let out = h.server(json!({"type": "error", "op": 2, "code": "invalid_param",
                              "message": "no"}));
    assert_eq!(out[0]["event"]["event"], "server_error");
    assert_eq!(
        out[1],
        json!({"peer": "CancelOffer { op: OperationId(2) }"})
    );
    assert_eq!(h.after(Duration::from_millis(499)), Vec::<Value>::new());
    assert_eq!(h.after(Duration::from_millis(1)), [offer(3, 1, "Restart")]);
    // A late report of an older connection changes nothing.
    assert_eq!(
        h.peer(PeerInput::State {
            connection: MediaConnection::Publish,
            generation: 0,
            connected: true,
        }),
        Vec::<Value>::new()
    );
}

#[test]
fn a_publish_whose_answer_is_being_applied_fails_when_the_connection_is_given_up() {
    let mut h = start();
    h.joined();
    let op = h.core.publish(h.now, TrackSource::Camera).unwrap();
    h.outputs();
    h.peer(PeerInput::Offered {
        op,
        sdp: "o".into(),
    });
    h.server(json!({"type": "publish_answer", "op": op.0, "sdp": "a"}));
    let out = h.server(json!({"type": "media_lost", "connection": "publish", "message": "gone"}));
    assert_eq!(out[0], json!({"local": "EndAll"}));
    assert!(
        out.contains(&json!({"outcome": op.0, "ok": false})),
        "{out:?}"
    );
    assert!(out.contains(&json!({"peer": "ClosePublisher"})), "{out:?}");
    // The late `Applied` changes nothing; the source may be published again.
    assert_eq!(
        h.peer(PeerInput::Applied { op, result: Ok(()) }),
        Vec::<Value>::new()
    );
    assert!(h.core.publish(h.now, TrackSource::Camera).is_ok());
}

#[test]
fn a_rejoin_with_nothing_published_closes_the_old_publishing_connection() {
    let mut h = start();
    h.joined();
    h.published(TrackSource::Microphone);
    h.core.unpublish(TrackSource::Microphone).unwrap();
    h.outputs();
    h.input(Input::SocketLost);
    h.after(Duration::ZERO);
    h.input(Input::Opened);
    h.server(json!({"type": "error", "code": "unknown_session", "message": "gone"}));
    h.server(
        json!({"type": "welcome", "version": 1, "user_id": "ada", "session": 2,
                    "resume_key": "k2", "expires_at": 0}),
    );
    let rejoin = h.core.session.pending().max().unwrap();
    let out = h.server(
        json!({"type": "joined", "op": rejoin.0, "room": "standup", "seq": 1,
        "participants": [participant()], "properties": properties(), "publications": []}),
    );
    assert!(out.contains(&json!({"peer": "ClosePublisher"})), "{out:?}");
    // Publishing the parked source again makes a new connection.
    let op = h.core.publish(h.now, TrackSource::Microphone).unwrap();
    assert_eq!(h.outputs(), [offer(op.0, 2, "Publish(Microphone)")]);
}

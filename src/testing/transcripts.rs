//! The client contract, replayed by the Rust session core: the transcripts in
//! `tests/web/transcripts/` (server frames in, requests made, the connection going down and
//! up; frames sent, outcomes, the resume position and the room view out) are the ones
//! `web/jrtc/session.js` replays under `node --test`. The session core has no socket: the
//! replay plays the few steps of the call's shell around it as `call/driver.rs` and
//! `call/shared.rs` do (a request made offline waits; `resume` from the session's position with
//! the newest token; after the replay the unanswered requests go again; `unknown_session` →
//! `hello` → the session's loss and the join again). A transcript is replayed up to a `goodbye`
//! that ends the call or the application's close (how a call ends is `Shared::finish`'s).
//! Compared: the frames sent (as frames: a field at its default may be left out), the outcomes
//! (op, kind, success or the error's code), the resume position and the room view; not the
//! events' shapes (the transcripts use jrtc.js's). Two known differences are left out: the
//! room view while the room is joined again (Rust keeps the old view, jrtc.js shows none) and
//! the join again's outcome (Rust ends it in a `Rejoined` event only).

use std::path::Path;

use serde_json::{Value, json};

use crate::call::session::Session;
use crate::event::{OperationKind, Outcome};
use crate::model::{InvitationId, UserId};
use crate::protocol::{ClientFrame, ServerFrame};

/// The operation kind the transcript gives op `op` in a later outcome, else the request's
/// type read as one.
fn kind_of(steps: &[Value], op: u64, request: &str) -> OperationKind {
    steps
        .iter()
        .flat_map(|s| s["outcomes"].as_array().cloned().unwrap_or_default())
        .find(|o| o["op"] == json!(op))
        .and_then(|o| serde_json::from_value(o["kind"].clone()).ok())
        .or_else(|| serde_json::from_value(json!(request)).ok())
        .unwrap_or_else(|| panic!("no operation kind for {request}"))
}

/// An outcome as a transcript writes it: op, kind, and `ok` or the error's code.
fn outcome_json(op: u64, kind: Value, outcome: &Result<Outcome, crate::event::OpError>) -> Value {
    match outcome {
        Ok(_) => json!({"op": op, "kind": kind, "ok": true}),
        Err(e) => json!({"op": op, "kind": kind, "error": e.code}),
    }
}

/// What the call's shell does around the session core while replaying (as `call/driver.rs`
/// and `call/shared.rs` do): online or not, resuming, the replay under way.
#[derive(Default)]
struct Shell {
    online: bool,
    resume_key: String,
    token: String,
    /// Tokens of refreshes under way, by op (a resume uses the newest).
    refreshing: std::collections::BTreeMap<u64, String>,
    /// A `resume` went out; its answer has not come.
    resuming: bool,
    /// `unknown_session` came: a `hello` went out; its `welcome` starts a new session.
    relogging: bool,
    /// Frames of the replay still to come after `resumed`.
    replay_left: u64,
}

impl Shell {
    /// The token a resume or a new login uses: the newest refresh's, else the current one.
    fn newest_token(&self) -> String {
        self.refreshing
            .values()
            .next_back()
            .cloned()
            .unwrap_or_else(|| self.token.clone())
    }
}

/// Every unanswered request's frame, in op order, as the driver sends them when it is back.
fn unanswered(session: &Session) -> Vec<Value> {
    session
        .unanswered()
        .into_iter()
        .map(|(_, text)| serde_json::from_str(&text).unwrap())
        .collect()
}

/// Replays one transcript through a [`Session`] and the steps of its shell; the number of
/// steps replayed.
fn replay(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = transcript["steps"].as_array().unwrap().clone();
    let mut session: Option<Session> = None;
    let mut shell = Shell {
        token: transcript["token"].as_str().unwrap_or_default().to_owned(),
        ..Shell::default()
    };
    let mut kinds: std::collections::HashMap<u64, Value> = Default::default();
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{name} step {i}");
        let mut outcomes = Vec::new();
        let mut sent: Vec<Value> = Vec::new();
        let settle = |handled: &crate::call::session::Handled,
                      outcomes: &mut Vec<Value>,
                      shell: &mut Shell| {
            for (op, outcome) in &handled.outcomes {
                let kind = kinds.get(&op.0).cloned().unwrap_or(json!("rejoin"));
                if let Some(token) = shell.refreshing.remove(&op.0)
                    && outcome.is_ok()
                {
                    shell.token = token;
                }
                outcomes.push(outcome_json(op.0, kind, outcome));
            }
        };
        if let Some(frame) = step.get("server") {
            if frame["type"] == "goodbye" {
                if frame["reconnect"] == json!(true) {
                    // The driver connects again; the session keeps everything.
                    shell.online = false;
                    continue;
                }
                // How a call ends (what becomes of its unanswered requests, the final event)
                // is the call's shell's in Rust (`Shared::finish`), not the core's.
                return i;
            }
            match session.as_mut() {
                None => {
                    assert_eq!(frame["type"], "welcome", "{at}: the first frame");
                    let user = frame["user_id"].as_str().unwrap();
                    session = Some(Session::new(UserId::from(user)));
                    shell.resume_key = frame["resume_key"].as_str().unwrap().to_owned();
                    shell.online = true;
                }
                Some(session) if shell.relogging && frame["type"] == "welcome" => {
                    // A new session: the unanswered requests fail, the room is joined again.
                    shell.relogging = false;
                    shell.resume_key = frame["resume_key"].as_str().unwrap().to_owned();
                    let (handled, rejoin) = session.lost();
                    settle(&handled, &mut outcomes, &mut shell);
                    if let Some(rejoin) = rejoin {
                        session.request(OperationKind::Rejoin, None, |op| rejoin.frame(op));
                    }
                    shell.online = true;
                    sent = unanswered(session);
                }
                Some(_)
                    if shell.resuming
                        && frame["type"] == "error"
                        && frame["code"] == "unknown_session" =>
                {
                    shell.resuming = false;
                    shell.relogging = true;
                    sent.push(
                        json!({"type": "hello", "version": 1, "token": shell.newest_token()}),
                    );
                }
                Some(session) => {
                    let n = frame.get("n").and_then(Value::as_u64);
                    let parsed: ServerFrame = serde_json::from_value(frame.clone())
                        .unwrap_or_else(|e| panic!("{at}: {e}: {frame}"));
                    let mut back = false;
                    if shell.resuming && frame["type"] == "resumed" {
                        shell.resuming = false;
                        shell.replay_left = frame["replayed"].as_u64().unwrap_or(0);
                        back = shell.replay_left == 0;
                    } else if shell.replay_left > 0 {
                        shell.replay_left -= 1;
                        back = shell.replay_left == 0;
                    }
                    let handled = session.handle(parsed, n);
                    settle(&handled, &mut outcomes, &mut shell);
                    if back {
                        // The replay is in: what is still unanswered goes again, in op order.
                        shell.online = true;
                        sent = unanswered(session);
                    }
                }
            }
        } else if let Some(request) = step.get("client") {
            let kind_name = request["request"].as_str().unwrap();
            if kind_name == "close" {
                return i;
            }
            let Some(session) = session.as_mut() else {
                return i;
            };
            let op = request["op"].as_u64().unwrap();
            let kind = kind_of(&steps, op, kind_name);
            kinds.insert(op, serde_json::to_value(kind).unwrap());
            let mut frame = request.clone();
            let fields = frame.as_object_mut().unwrap();
            fields.remove("request");
            fields.insert("type".into(), json!(kind_name));
            if let Some(token) = fields.get("token").and_then(Value::as_str) {
                shell.refreshing.insert(op, token.to_owned());
            }
            let invitation = fields
                .get("invitation")
                .and_then(Value::as_u64)
                .map(InvitationId);
            let (given, text) = session.request(kind, invitation, |op| {
                fields.insert("op".into(), json!(op.0));
                serde_json::from_value::<ClientFrame>(Value::Object(fields.clone()))
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
            });
            assert_eq!(given.0, op, "{at}: the op the request gets");
            // Offline, the session holds it: it goes when the call is back.
            if shell.online {
                sent.push(serde_json::from_str::<Value>(&text).unwrap());
            }
        } else if let Some(socket) = step.get("socket") {
            match (socket.as_str(), session.as_ref()) {
                (Some("down"), _) => shell.online = false,
                (Some("up"), Some(session)) => {
                    let taken = session.taken();
                    let mut resume = json!({
                        "type": "resume", "version": 1, "token": shell.newest_token(),
                        "resume_key": shell.resume_key, "received": taken.received,
                    });
                    if let Some(room) = taken.room {
                        resume["room"] = json!(room);
                        resume["seq"] = json!(taken.seq);
                    }
                    shell.resuming = true;
                    sent.push(resume);
                }
                // The first login's `hello`: the shell's, not the core's.
                _ => continue,
            }
        }
        check(&at, step, sent, outcomes, session.as_ref());
    }
    steps.len()
}

/// Checks what a step made against what the transcript expects of it.
fn check(
    at: &str,
    step: &Value,
    sent: Vec<Value>,
    outcomes: Vec<Value>,
    session: Option<&Session>,
) {
    // Compared as frames: a field left at its default may be sent or not.
    let frames = |values: Vec<Value>| -> Vec<ClientFrame> {
        values
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap_or_else(|e| panic!("{at}: {e}")))
            .collect()
    };
    let want = step["send"].as_array().cloned().unwrap_or_default();
    assert_eq!(frames(sent), frames(want), "{at}: frames sent");
    let want: Vec<Value> = step["outcomes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        // The join again after a lost session is the Rust call's own request: it ends in a
        // `Rejoined` event, not in an outcome (no application holds its op).
        .filter(|o| o["kind"] != "rejoin" || o.get("error").is_some())
        .map(|o| {
            let mut short = json!({"op": o["op"], "kind": o["kind"]});
            match o.get("error") {
                Some(e) => short["error"] = e["code"].clone(),
                None => short["ok"] = json!(true),
            }
            short
        })
        .collect();
    assert_eq!(outcomes, want, "{at}: outcomes");
    let Some(session) = session else {
        return;
    };
    if let Some(position) = step.get("position") {
        let taken = session.taken();
        let mut have = json!({"received": taken.received});
        if let Some(room) = taken.room {
            have["room"] = json!(room);
            have["seq"] = json!(taken.seq);
        }
        assert_eq!(&have, position, "{at}: position");
    }
    // While the room is joined again after a lost session, the Rust call keeps showing the
    // old session's view (`Call::room()` does not blink to nothing); jrtc.js shows none.
    // A known difference, left out of the comparison.
    let rejoining = session.taken().room.is_none() && session.room().is_some();
    if let Some(room) = step.get("room").filter(|_| !rejoining) {
        let have = match session.room() {
            None => Value::Null,
            Some(snapshot) => {
                let mut v = serde_json::to_value(snapshot).unwrap();
                v.as_object_mut().unwrap().remove("me");
                v
            }
        };
        assert_eq!(&have, room, "{at}: the room view");
    }
}

#[test]
fn the_rust_session_core_replays_the_client_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the transcripts are in {}",
        dir.display()
    );
    let mut replayed = 0;
    for file in &files {
        let n = replay(file);
        eprintln!("{}: {n} steps", file.display());
        replayed += n;
    }
    assert!(replayed > 100, "{replayed} steps replayed");
}

//! The client contract, replayed by the Rust client core: the transcripts in
//! `tests/web/transcripts/` (server frames in, requests made, the connection going down and
//! up; frames sent, outcomes, the resume position and the room view out) are the ones
//! `web/jrtc/session.js` replays under `node --test`. They drive a real [`ClientCore`] (the
//! one a `Call` runs): "socket down" is a lost socket (the core asks to connect again at once),
//! "socket up" the new socket opened (the core sends `resume`), and the core itself does the
//! rest (the replay, the unanswered requests again, `unknown_session` → `hello` → the session's
//! loss and the join again, the end of the call). Compared: the frames sent (as frames: a field
//! at its default may be left out), the outcomes (op, kind, success or the error's code), the
//! resume position and the room view; not the events' shapes (the transcripts use jrtc.js's).
//! Two known differences are left out: the room view while the room is joined again (Rust
//! keeps the old view, jrtc.js shows none) and the join again's outcome (Rust ends it in a
//! `Rejoined` event only).

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::call::core::{ClientCore, Input, Now, Output, Start};
use crate::event::{OperationKind, Outcome};
use crate::model::{InvitationId, UserId};
use crate::protocol::ClientFrame;

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

/// A core logged in with the transcript's first `welcome`.
fn logged_in(welcome: &Value, token: &str, now: Now) -> ClientCore {
    let start = Start::new(
        UserId::from(welcome["user_id"].as_str().unwrap()),
        welcome["resume_key"].as_str().unwrap().to_owned(),
        token.to_owned(),
        &crate::call::CallOptions::default(),
    );
    ClientCore::new(start, now)
}

/// Replays one transcript through a [`ClientCore`]; the number of steps replayed.
fn replay(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = transcript["steps"].as_array().unwrap().clone();
    let token = transcript["token"].as_str().unwrap_or_default().to_owned();
    // Time stands still: the transcripts have no timers, and a socket that goes down is tried
    // again at once.
    let now = Now {
        at: Instant::now(),
        unix: 1_767_000_000,
    };
    let mut core: Option<ClientCore> = None;
    let mut kinds: std::collections::HashMap<u64, Value> = Default::default();
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{name} step {i}");
        if let Some(frame) = step.get("server") {
            match core.as_mut() {
                None => {
                    assert_eq!(frame["type"], "welcome", "{at}: the first frame");
                    core = Some(logged_in(frame, &token, now));
                }
                Some(core) => {
                    // The personal number is the frame's last field on the wire.
                    let mut frame = frame.clone();
                    let n = frame.as_object_mut().unwrap().remove("n");
                    let text = match n.and_then(|n| n.as_u64()) {
                        Some(n) => crate::protocol::with_number(frame.to_string(), n),
                        None => frame.to_string(),
                    };
                    core.handle(now, Input::Text(&text));
                }
            }
        } else if let Some(request) = step.get("client") {
            let kind_name = request["request"].as_str().unwrap();
            let Some(core) = core.as_mut() else {
                return i;
            };
            if kind_name == "close" {
                core.handle(now, Input::Close);
            } else {
                let op = request["op"].as_u64().unwrap();
                let kind = kind_of(&steps, op, kind_name);
                kinds.insert(op, serde_json::to_value(kind).unwrap());
                let mut frame = request.clone();
                let fields = frame.as_object_mut().unwrap();
                fields.remove("request");
                fields.insert("type".into(), json!(kind_name));
                let invitation = fields
                    .get("invitation")
                    .and_then(Value::as_u64)
                    .map(InvitationId);
                let given = match fields.get("token").and_then(Value::as_str) {
                    Some(token) => core.refresh_token(token.to_owned()),
                    None => core.request(kind, invitation, |op| {
                        fields.insert("op".into(), json!(op.0));
                        serde_json::from_value::<ClientFrame>(Value::Object(fields.clone()))
                            .unwrap_or_else(|e| panic!("{at}: {e}"))
                    }),
                };
                match given {
                    Ok(given) => assert_eq!(given.0, op, "{at}: the op the request gets"),
                    // Refused at once (the call is closed): no frame, no outcome event.
                    Err(e) => assert!(
                        step["outcomes"]
                            .as_array()
                            .is_some_and(|o| o.iter().any(|o| o["op"] == json!(op))),
                        "{at}: refused at once: {e}"
                    ),
                }
            }
        } else if let Some(socket) = step.get("socket") {
            match (socket.as_str(), core.as_mut()) {
                (Some("down"), Some(core)) => {
                    core.handle(now, Input::SocketLost);
                    // The first attempt is due at once.
                    core.handle(now, Input::Tick);
                }
                (Some("up"), Some(core)) => {
                    // A socket that came back after a goodbye asking to reconnect: the
                    // attempt starts now.
                    core.handle(now, Input::Tick);
                    core.handle(now, Input::Opened);
                }
                // The first login's `hello`: the shell's, not the core's.
                _ => continue,
            }
        }
        let Some(core) = core.as_mut() else {
            continue;
        };
        let mut sent = Vec::new();
        let mut outcomes = Vec::new();
        for output in core.drain() {
            match output {
                Output::Send(text) => sent.push(serde_json::from_str::<Value>(&text).unwrap()),
                Output::Outcome(op, outcome) => {
                    let kind = kinds.get(&op.0).cloned().unwrap_or(json!("rejoin"));
                    outcomes.push(outcome_json(op.0, kind, &outcome));
                }
                _ => {}
            }
        }
        check(&at, step, sent, outcomes, core);
    }
    steps.len()
}

/// Checks what a step made against what the transcript expects of it.
fn check(at: &str, step: &Value, sent: Vec<Value>, outcomes: Vec<Value>, core: &ClientCore) {
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
        // `Rejoined` event, not in an outcome (no application holds its op). A request made
        // after the end is refused at once (`CallError::Closed`), not given an outcome.
        .filter(|o| o["kind"] != "rejoin" || o.get("error").is_some())
        .filter(|o| o["error"]["code"] != "closed")
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
    let session = core.session();
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
fn the_rust_client_core_replays_the_client_transcripts() {
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

//! The client contract, replayed by the Rust session core: the transcripts in
//! `tests/web/transcripts/` (server frames in, requests made; frames sent, outcomes, the
//! resume position and the room view out) are the ones `web/jrtc/session.js` replays under
//! `node --test`. The session core has no socket: a transcript whose connection goes down or
//! comes back after its login is the driver's business (`call/policy/link.rs`), and is replayed
//! only up to that step, and so is one that ends with a `goodbye` (how a call ends is the
//! shell's, `Shared::finish`). What is compared: the frames sent (as frames: a field at its
//! default may be left out), the outcomes (op, kind, success or the error's code), the resume
//! position and the room view; not the events' shapes (the transcripts use jrtc.js's).

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

/// Replays one transcript through a [`Session`]; the number of steps replayed.
fn replay(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps = transcript["steps"].as_array().unwrap().clone();
    let mut session: Option<Session> = None;
    let mut kinds: std::collections::HashMap<u64, Value> = Default::default();
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{name} step {i}");
        let mut outcomes = Vec::new();
        let mut sent = Vec::new();
        if let Some(frame) = step.get("server") {
            if frame["type"] == "goodbye" {
                // The end of a session (what becomes of its unanswered requests, the final
                // event) is the call's shell's in Rust (`Shared::finish`), not the core's.
                return i;
            }
            match session.as_mut() {
                None => {
                    assert_eq!(frame["type"], "welcome", "{at}: the first frame");
                    let user = frame["user_id"].as_str().unwrap();
                    session = Some(Session::new(UserId::from(user)));
                }
                Some(session) => {
                    let n = frame.get("n").and_then(Value::as_u64);
                    let parsed: ServerFrame = serde_json::from_value(frame.clone())
                        .unwrap_or_else(|e| panic!("{at}: {e}: {frame}"));
                    let handled = session.handle(parsed, n);
                    for (op, outcome) in &handled.outcomes {
                        let kind = kinds.get(&op.0).cloned().unwrap_or(Value::Null);
                        outcomes.push(outcome_json(op.0, kind, outcome));
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
            sent.push(serde_json::from_str::<Value>(&text).unwrap());
        } else if step.get("socket").is_some() {
            if session.is_some() {
                // Connection changes after the login are the driver's.
                return i;
            }
            continue;
        }
        if step.get("client").is_some() {
            // Compared as frames: a field left at its default may be sent or not.
            let frames = |values: Vec<Value>| -> Vec<ClientFrame> {
                values
                    .into_iter()
                    .map(|v| serde_json::from_value(v).unwrap_or_else(|e| panic!("{at}: {e}")))
                    .collect()
            };
            let want = step["send"].as_array().cloned().unwrap_or_default();
            assert_eq!(frames(sent), frames(want), "{at}: frames sent");
        }
        let want: Vec<Value> = step["outcomes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
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
        let Some(session) = session.as_ref() else {
            continue;
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
        if let Some(room) = step.get("room") {
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
    steps.len()
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

// The client core (web/jrtc/session.js) through its API, for what the transcripts do not show:
// the calls the shell makes for media operations, the outbox, reconnection attempts, refusals,
// the module's purity, and that the server serves every module and jrtc.d.ts declares every
// export of jrtc.js.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import test from "node:test";
import { fileURLToPath } from "node:url";

import * as jrtc from "../../web/jrtc.js";
import { Session } from "../../web/jrtc/session.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path) => readFileSync(root + path, "utf8");

const ADA = { user_id: "ada", display_name: "Ada", role: "host", audio: false, video: false, state: "", connection: "connected" };
const PROPERTIES = { screen_share: null, recording: { state: "idle" }, custom: {} };

/** A core logged in as ada, in room `standup` at seq 2 (its join was op 1, answered with n 1). */
function inRoom(options = {}) {
  const core = new Session({ token: "t", ...options });
  core.open();
  core.receive({ type: "welcome", version: 1, user_id: "ada", session: 1, resume_key: "1.k", expires_at: null });
  core.request({ type: "join", room: "standup" });
  core.receive({ type: "joined", op: 1, room: "standup", seq: 2, participants: [ADA], properties: PROPERTIES, publications: [], n: 1 });
  return core;
}

const plain = (v) => JSON.parse(JSON.stringify(v));

test("the core touches no socket, timer, clock, peer connection or global", () => {
  const code = read("web/jrtc/session.js")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
  for (const name of ["WebSocket", "setTimeout", "setInterval", "setImmediate", "queueMicrotask", "Date", "performance",
    "RTCPeerConnection", "MediaStream", "navigator", "window", "globalThis", "document", "fetch", "console", "Math.random", "import "]) {
    assert.ok(!code.includes(name), `web/jrtc/session.js uses ${name}`);
  }
});

test("every module of web/jrtc/ is served, as the client library is (CORS, not part of the page)", () => {
  const rust = read("src/server/shell/web.rs");
  const modules = readdirSync(root + "web/jrtc").filter((f) => f.endsWith(".js"));
  assert.ok(modules.includes("session.js"));
  for (const f of modules) {
    const asset = new RegExp(`asset!\\(\\s*"/jrtc/${f.replace(".", "\\.")}",\\s*"jrtc/${f.replace(".", "\\.")}",\\s*"text/javascript; charset=utf-8",\\s*false\\s*\\)`);
    assert.match(rust, asset, `web/jrtc/${f} is not in ASSETS (src/server/shell/web.rs) as /jrtc/${f}, page: false`);
  }
  // jrtc.js imports its modules relative to itself, so they are fetched from /jrtc/….
  for (const [, path] of read("web/jrtc.js").matchAll(/from "(\.[^"]+)"/g)) {
    assert.match(path, /^\.\/jrtc\/[a-z]+\.js$/, path);
  }
});

test("jrtc.js exports what jrtc.d.ts declares", () => {
  const declared = [...read("web/jrtc.d.ts").matchAll(/^export declare (?:const|class|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(Object.keys(jrtc).sort(), declared.sort());
  assert.equal(jrtc.PROTOCOL_VERSION, 1);
  assert.equal(new jrtc.CallError("x", "y", 3, "kick").kind, "kick");
});

test("a publish: reserved, its offer sent later, its answer handed to the media side, settled by the shell", () => {
  const core = inRoom();
  const { op, out } = core.reserve("publish");
  assert.equal(op, 2);
  assert.deepEqual(out.actions, []);
  const offer = { type: "publish_offer", op, sdp: "v=0\r\n", source: "camera" };
  assert.deepEqual(core.send(op, offer).frames(), [offer]);
  const answer = { type: "publish_answer", op, sdp: "v=0\r\n", n: 2 };
  assert.deepEqual(core.receive(answer).effects(), [{ effect: "media", frame: answer }]);
  assert.ok(core.isPending(op), "pending until the answer is applied");
  const done = core.answer(op);
  assert.deepEqual(plain(done.actions), [
    { outcome: { op, kind: "publish", ok: null }, answered: false },
    { event: { type: "completed", op, kind: "publish" } },
  ]);
  assert.ok(!core.isPending(op));
});

test("a client-side failure settles the operation once; a negotiation's is silent", () => {
  const core = inRoom();
  const { op } = core.reserve("publish");
  const out = core.fail(op, "device_failed", "camera: NotAllowedError");
  assert.deepEqual(out.outcomes(), [{ op, kind: "publish", error: { code: "device_failed", message: "camera: NotAllowedError" } }]);
  assert.deepEqual(out.events(), [{ type: "completed", op, kind: "publish", error: { code: "device_failed", message: "camera: NotAllowedError" } }]);
  assert.deepEqual(core.fail(op, "device_failed", "again").actions, []);
  const negotiate = core.reserve("negotiate").op;
  const refused = core.receive({ type: "error", op: negotiate, code: "media_failed", message: "bad SDP", n: 2 });
  assert.deepEqual(refused.outcomes(), [{ op: negotiate, kind: "negotiate", error: { code: "media_failed", message: "bad SDP" } }]);
  assert.deepEqual(refused.events(), []);
});

test("frames that are no requests wait for the connection, in order, after the unanswered requests", () => {
  const core = inRoom();
  const candidate = { type: "ice_candidate", connection: "publish", candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host" } };
  assert.deepEqual(core.notify(candidate).frames(), [candidate]);
  core.down("network");
  assert.deepEqual(core.notify(candidate).frames(), []);
  const { op } = core.request({ type: "update", audio: true });
  assert.deepEqual(core.open().frames(), [{ type: "resume", version: 1, token: "t", resume_key: "1.k", received: 1, room: "standup", seq: 2 }]);
  assert.deepEqual(core.receive({ type: "resumed", session: 1, replayed: 0 }).frames(), [
    { type: "update", op, audio: true },
    candidate,
  ]);
  // At most 256 wait; leaving the room forgets them (they were for its peer connections).
  core.down("network");
  for (let i = 0; i < 300; i++) core.notify({ ...candidate, i });
  assert.equal(core.outbox.length, 256);
  core.receive({ type: "call_ended", room: "standup", seq: 3, by: "bob" });
  core.open();
  assert.equal(core.outbox.length, 256, "frames from a connection given up are not taken");
  core.receive({ type: "resumed", session: 1, replayed: 1 });
  const ended = core.receive({ type: "call_ended", room: "standup", seq: 3, by: "bob" });
  assert.deepEqual(ended.effects(), [{ effect: "leave_room", keep: false }]);
  assert.equal(core.outbox.length, 0);
  assert.deepEqual(ended.frames(), [{ type: "update", op, audio: true }]);
});

test("reconnection attempts count up, with the first loss's reason; a resumed session counts again", () => {
  const core = inRoom();
  const first = core.down("timeout");
  assert.deepEqual(first.events(), [{ type: "reconnecting", attempt: 1, reason: "timeout" }]);
  assert.deepEqual(first.effects(), [{ effect: "reconnect" }]);
  assert.deepEqual(core.down("network").actions, [], "lost already");
  assert.deepEqual(core.retry().events(), [{ type: "reconnecting", attempt: 2, reason: "timeout" }]);
  assert.deepEqual(core.retry().events(), [{ type: "reconnecting", attempt: 3, reason: "timeout" }]);
  core.open();
  core.receive({ type: "resumed", session: 1, replayed: 0 });
  assert.equal(core.state, "connected");
  assert.deepEqual(core.retry().actions, []);
  assert.deepEqual(core.down("network").events(), [{ type: "reconnecting", attempt: 1, reason: "network" }]);
});

test("without reconnecting, a lost connection ends the call", () => {
  const core = inRoom({ reconnect: false });
  const { op } = core.request({ type: "leave" });
  const out = core.down("network");
  assert.deepEqual(plain(out.outcomes()), [{ op, kind: "leave", error: { code: "session_lost", message: "the call closed (network)" } }]);
  assert.deepEqual(out.events().map((e) => e.type), ["completed", "left", "closed"]);
  assert.deepEqual(out.effects(), [{ effect: "leave_room", keep: false }, { effect: "closed" }]);
  assert.equal(core.state, "closed");
  const goodbye = inRoom({ reconnect: false }).receive({ type: "goodbye", reason: "server_shutdown", reconnect: true });
  assert.deepEqual(goodbye.events().map((e) => e.type), ["left", "closed"]);
});

test("refusals of hello and resume: which are worth another try", () => {
  const fresh = new Session({ token: "t" });
  fresh.open();
  const refused = fresh.receive({ type: "error", code: "invalid_token", message: "bad token" });
  assert.deepEqual(refused.effects(), [{ effect: "refused", code: "invalid_token", message: "bad token", fatal: true }]);
  assert.equal(fresh.state, "connecting");
  for (const [code, fatal] of [["token_expired", true], ["wrong_room", true], ["internal", false], ["rate_limited", false]]) {
    const core = inRoom();
    core.down("network");
    core.open();
    const out = core.receive({ type: "error", code, message: code });
    assert.deepEqual(out.effects(), [{ effect: "refused", code, message: code, fatal }], code);
    assert.equal(core.state, "reconnecting");
  }
  // After unknown_session, a refused hello is the end of trying.
  const core = inRoom();
  core.down("network");
  core.open();
  core.receive({ type: "error", code: "unknown_session", message: "gone" });
  const out = core.receive({ type: "error", code: "token_revoked", message: "revoked" });
  assert.deepEqual(out.effects(), [{ effect: "refused", code: "token_revoked", message: "revoked", fatal: true }]);
});

test("this member's own publications: the media side hears of them before the event", () => {
  const core = inRoom();
  const camera = { id: "ada/camera", participant: "ada", source: "camera", kind: "video", muted: false };
  const published = core.receive({ type: "track_published", room: "standup", seq: 3, publication: camera });
  assert.deepEqual(published.actions.map((a) => a.effect?.effect ?? a.event.kind), ["published", "published"]);
  assert.deepEqual(core.publication("ada/camera"), camera);
  const muted = { ...camera, muted: true };
  const byHost = core.receive({ type: "track_muted", room: "standup", seq: 4, publication: muted, by: "bob" });
  assert.deepEqual(byHost.effects(), [{ effect: "hold", source: "camera", held: true }]);
  assert.deepEqual(byHost.events(), [{ type: "media", kind: "muted", room: "standup", seq: 4, publication: muted, by: "bob" }]);
  const own = core.receive({ type: "track_muted", room: "standup", seq: 5, publication: muted });
  assert.deepEqual(own.effects(), [], "its own mute holds nothing");
  const unmuted = core.receive({ type: "track_muted", room: "standup", seq: 6, publication: camera });
  assert.deepEqual(unmuted.effects(), [{ effect: "hold", source: "camera", held: false }]);
  const gone = core.receive({ type: "track_unpublished", room: "standup", seq: 7, publication: camera, reason: "network" });
  assert.deepEqual(gone.effects(), [{ effect: "unpublished", publication: camera }]);
  assert.equal(core.publication("ada/camera"), undefined);
  const bobs = { id: "bob/camera", participant: "bob", source: "camera", kind: "video", muted: true };
  assert.deepEqual(core.receive({ type: "track_muted", room: "standup", seq: 8, publication: bobs, by: "carol" }).effects(), []);
  const offer = { type: "subscribe_offer", negotiation: 1, sdp: "v=0\r\n", n: 2 };
  assert.deepEqual(core.receive(offer).effects(), [{ effect: "media", frame: offer }]);
});

test("a gap in seq is counted and warned about; a frame that cannot be handled still counts in the replay", () => {
  const core = inRoom();
  const out = core.receive({ type: "message", room: "standup", seq: 5, from: "bob", scope: "group", content_type: "text/plain", content: "x" });
  assert.equal(core.seqGaps, 1);
  assert.deepEqual(out.effects(), [{ effect: "warn", message: "room standup: event 5 after 2" }]);
  core.request({ type: "update", state: "busy" });
  core.down("network");
  core.open();
  core.receive({ type: "resumed", session: 1, replayed: 1 });
  const broken = core.receive({ type: "participant_joined", room: "standup", seq: 6 });
  assert.equal(broken.effects()[0].effect, "warn");
  assert.deepEqual(broken.frames(), [{ type: "update", op: 2, state: "busy" }], "the replay is over all the same");
  assert.equal(core.position().seq, 6);
});

test("ping names the position; a closed call takes nothing", () => {
  const core = inRoom();
  assert.deepEqual(core.ping(), { type: "ping", received: 1, room: "standup", seq: 2 });
  const quit = core.finish("quit");
  assert.deepEqual(quit.events(), [{ type: "left", room: "standup", reason: "quit", op: null }, { type: "closed", reason: "quit" }]);
  assert.deepEqual(core.finish("quit").actions, []);
  assert.deepEqual(core.ping(), { type: "ping", received: 1 });
  assert.deepEqual(core.open().actions, []);
  assert.deepEqual(core.down("network").actions, []);
  assert.deepEqual(core.notify({ type: "ice_candidate" }).actions, []);
  assert.deepEqual(core.receive({ type: "done", op: 1, n: 2 }).actions, []);
});

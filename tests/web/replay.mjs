// Replays a transcript (tests/web/transcripts/README.md) two ways:
// - `replayCore`: through the pure client core, web/jrtc/session.js, step by step;
// - `replayShell`: through jrtc.js's `Call` over a fake WebSocket (the same core, with the
//   shell's socket handling, handshake, reconnect loop, outcome promises and event streams).
// Both compare what each step made with what the transcript expects.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Call } from "../../web/jrtc.js";
import { Session } from "../../web/jrtc/session.js";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Every transcript: `[file name, parsed JSON]`, in file name order. */
export function transcripts() {
  const dir = `${here}transcripts/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(dir + f, "utf8"))]);
}

/** A value as it would be on the wire (undefined fields gone). */
const wire = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

function where(name, i, step) {
  const what = Object.keys(step).find((k) => k === "server" || k === "client" || k === "socket");
  const detail = what === "socket" ? step.socket : what === "client" ? step.client.request : step.server.type;
  return `${name}, step ${i + 1} (${what} ${detail})`;
}

/**
 * Compares a step's outcomes. An expected error's `message` is compared only when the
 * transcript gives it (the client's own failures, `session_lost` and `closed`, word it their way).
 * `kinds`: whether the actual outcomes carry `kind` (the shell's promises give it on errors only).
 */
function sameOutcomes(actual, expected, at, { kinds = true } = {}) {
  assert.equal(actual.length, expected.length, `${at}: outcomes ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  for (let k = 0; k < expected.length; k++) {
    const a = actual[k];
    const e = expected[k];
    assert.equal(a.op, e.op, `${at}: outcome ${k}: ${JSON.stringify(a)}, expected ${JSON.stringify(e)}`);
    if (kinds || "error" in e) assert.equal(a.kind, e.kind, `${at}: outcome ${k}'s kind`);
    if ("error" in e) {
      assert.ok(a.error, `${at}: outcome of op ${e.op} is ${JSON.stringify(a)}, expected an error`);
      assert.equal(a.error.code, e.error.code, `${at}: error code of op ${e.op}`);
      if ("message" in e.error) assert.equal(a.error.message, e.error.message, `${at}: error message of op ${e.op}`);
    } else {
      assert.ok(!a.error, `${at}: op ${e.op} failed: ${JSON.stringify(a.error)}`);
      assert.deepEqual(wire(a.ok), e.ok, `${at}: value of op ${e.op}`);
    }
  }
}

function sameStep(got, step, at, options) {
  assert.deepEqual(wire(got.send), step.send ?? [], `${at}: frames sent`);
  assert.deepEqual(wire(got.events), step.events ?? [], `${at}: events`);
  sameOutcomes(got.outcomes, step.outcomes ?? [], at, options);
  if ("position" in step) assert.deepEqual(wire(got.position), step.position, `${at}: position`);
  if ("room" in step) assert.deepEqual(wire(got.room), step.room, `${at}: room view`);
}

/** The wire frame of a `client` step's request (`op` is what the client is expected to give it). */
function requestFrame(client) {
  const { request, op, ...fields } = client;
  return { type: request, ...fields };
}

/** Replays transcript `t` through the pure core. */
export function replayCore(name, t) {
  const core = new Session({ token: t.token });
  t.steps.forEach((step, i) => {
    const at = where(name, i, step);
    let out;
    if ("server" in step) {
      out = core.receive(structuredClone(step.server));
    } else if ("socket" in step) {
      out = step.socket === "up" ? core.open() : core.down(step.reason ?? "network");
    } else if (step.client.request === "close") {
      out = core.finish("quit");
    } else {
      const made = core.request(requestFrame(step.client));
      if (step.client.op !== undefined) assert.equal(made.op, step.client.op, `${at}: the op the client gave`);
      out = made.out;
    }
    for (const e of out.effects()) {
      assert.ok(!(e.effect === "warn" && /could not be handled/.test(e.message)), `${at}: ${e.message}`);
    }
    sameStep({
      send: out.frames(), events: out.events(), outcomes: out.outcomes(),
      position: core.position(), room: core.roomView(),
    }, step, at);
  });
}

// ---------------------------------------------------------------------------------------------
// The shell: jrtc.js's Call over a fake WebSocket.

/** A WebSocket the test drives: `open()`, `deliver(frame)`, `drop()`. */
class FakeSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.made.push(this);
  }

  send(text) {
    assert.equal(this.readyState, 1, "sent on a socket that is not open");
    this.sent.push(JSON.parse(text));
  }

  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }

  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
}

/** Lets the shell's promise chains and the event iterators run. */
async function settle() {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Makes `call` do what a `client` step asks, through its public methods where there is one. */
function callRequest(call, client) {
  const { request, op, ...f } = client;
  switch (request) {
    case "join":
      return call.join(f.room, { displayName: f.display_name, audio: f.audio, video: f.video, state: f.state, autoSubscribe: f.auto_subscribe });
    case "leave": return call.leave();
    case "end": return call.end();
    case "kick": return call.kick(f.user_id, f.ban === undefined ? undefined : f.ban.for_ms != null ? { forMs: f.ban.for_ms } : true);
    case "set_role": return call.setRole(f.user_id, f.role);
    case "update": return call.update({ audio: f.audio, video: f.video, displayName: f.display_name, state: f.state });
    case "set_properties":
      return call.setProperties({
        custom: f.custom,
        screenShare: f.screen_share === undefined ? undefined : f.screen_share && { userId: f.screen_share.user_id, streamId: f.screen_share.stream_id },
      });
    case "send_message": return call.sendMessage(f.to, f.content_type, f.content);
    case "list_bans": return call.listBans();
    case "refresh": return call.refresh(f.token);
    case "invite": return call.invite(f.callees, { video: f.video, extra: f.extra, timeoutMs: f.timeout_ms });
    case "accept_invite": return call.acceptInvite(f.invitation, { video: f.video });
    case "close": return call.close();
    default: return call._request(requestFrame(client));
  }
}

/** Replays transcript `t` through `Call` (jrtc.js) over a fake WebSocket. */
export async function replayShell(name, t) {
  FakeSocket.made = [];
  let call = null;
  let connecting = null;
  const events = [];
  const settled = [];
  const watched = new Set();
  const socket = () => FakeSocket.made[FakeSocket.made.length - 1];
  const watch = () => {
    if (!call) return;
    for (let op = 1; op < call._core.nextOp; op++) {
      if (watched.has(op)) continue;
      watched.add(op);
      call.outcome(op).then(
        (value) => settled.push({ op, ok: value ?? null }),
        (e) => settled.push({ op, kind: e.kind, error: { code: e.code, message: e.message } }),
      );
    }
  };
  try {
    for (const [i, step] of t.steps.entries()) {
      const at = where(name, i, step);
      const sentBefore = FakeSocket.made.map((s) => s.sent.length);
      events.length = 0;
      settled.length = 0;
      if ("socket" in step && step.socket === "up") {
        if (!connecting) {
          connecting = Call.connect("ws://jrtc.test/signal", t.token, {
            WebSocket: FakeSocket, pingIntervalMs: 1e9, idleTimeoutMs: 1e9,
          });
          connecting.catch(() => {});
        }
        assert.ok(socket() && socket().readyState === 0, `${at}: the client opened no new connection`);
        socket().open();
      } else if ("socket" in step) {
        assert.equal(step.reason ?? "network", "network", `${at}: the shell is replayed with network losses only`);
        socket().drop();
      } else if ("server" in step) {
        socket().deliver(step.server);
      } else {
        assert.ok(call, `${at}: a request before the call is connected`);
        const op = callRequest(call, step.client);
        if (step.client.op !== undefined) assert.equal(op, step.client.op, `${at}: the op the client gave`);
      }
      await settle();
      if (!call && connecting) {
        const ready = await Promise.race([connecting.then(() => true, () => false), settle().then(() => false)]);
        if (ready) {
          call = await connecting;
          (async () => {
            for await (const ev of call.events()) events.push(ev);
          })();
        }
      }
      watch();
      await settle();
      const send = FakeSocket.made.flatMap((s, k) => s.sent.slice(sentBefore[k] ?? 0));
      sameStep({
        send, events: [...events], outcomes: [...settled],
        position: call?._core.position() ?? { received: 0 }, room: call ? call.room() : null,
      }, step, at, { kinds: false });
    }
  } finally {
    call?.close();
  }
  return call;
}

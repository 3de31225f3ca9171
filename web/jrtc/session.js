// jrtc/session.js — the client core of jrtc.js: what docs/protocol.md asks of a client, as pure
// code. It takes server frames (parsed JSON objects), application requests and what happened to
// the connection, and returns what to do: frames to send, events to emit, operation outcomes,
// and effects for the parts that are not its business (the socket, timers, peer connections).
// No WebSocket, no timers, no clock, no RTCPeerConnection: jrtc.js is the shell around it, and
// tests/web/ replays transcripts (server frames in, client frames out) through it in Node.js.
//
//   const core = new Session({ token });
//   core.open();                      // a socket is open: sends hello (or resume)
//   core.receive({ type: "welcome", … });
//   const { op, out } = core.request({ type: "join", room: "standup" });
//   out.frames(); out.events(); out.outcomes(); out.effects();   // or out.actions, in order
//
// What it keeps: the session (user id, resume key, token), the highest personal frame number
// taken (`received`), the room view (participants, properties, publications, its `seq`), the
// requests not answered yet (by `op`, with their frames, to send again after a resume), the
// frames that are no requests waiting for a connection, and where a resume or a rejoin stands.

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** The sources a participant publishes, and their kinds. */
export const SOURCES = Object.freeze({ microphone: "audio", camera: "video", screen: "video" });

/**
 * The kind of a source: one of SOURCES, or an extra camera or screen (`camera.NAME`,
 * `screen.NAME`, NAME 1 to 16 of [a-z0-9_-]), which is video; undefined for anything else.
 */
export function kindOf(source) {
  if (Object.hasOwn(SOURCES, source)) return SOURCES[source];
  return /^(camera|screen)\.[a-z0-9_-]{1,16}$/.test(source) ? "video" : undefined;
}

/** Room events: frames that carry the room's `seq` and no personal number `n`. */
export const ROOM_EVENTS = new Set([
  "participant_joined", "participant_left", "participant_updated", "properties_changed",
  "message", "call_ended", "track_published", "track_unpublished", "track_muted",
  "recording_started", "recording_stopped", "recording_aborted",
]);

/** The operation kind of each request type (as the Rust client's `OperationKind`). */
export const KINDS = Object.freeze({
  join: "join", leave: "leave", end: "end", kick: "kick", set_role: "set_role", update: "update",
  set_properties: "set_properties", send_message: "send_message", invite: "invite",
  cancel_invite: "cancel_invite", accept_invite: "accept_invite", reject_invite: "reject_invite",
  unpublish: "unpublish", mute: "mute", subscribe: "subscribe_track",
  unsubscribe: "unsubscribe_track", request_video: "request_video", unban: "unban",
  list_bans: "list_bans",
  refresh: "refresh_token", revoke: "revoke", start_recording: "start_recording",
  stop_recording: "stop_recording", recorder_ready: "recorder_ready", recorder_join: "recorder_join",
});

/** Frames the client may keep for a connection while it has none (candidates, notices). */
const OUTBOX_LIMIT = 256;

/**
 * What one input produced, in order: `actions` is a list of `{send: frame}`, `{event: ev}`,
 * `{outcome: {op, kind, ok} | {op, kind, error: {code, message}}, answered}` (`answered`: the
 * server's answer, not a failure made by the client) and `{effect: {effect, …}}`. A shell
 * carries them out in that order; the accessors give each kind alone.
 *
 * Effects (the shell's business):
 * - `{effect: "refused", code, message, fatal}` — the server refused `hello` or `resume`
 *   (`fatal`: trying again with the same token is pointless).
 * - `{effect: "expires", at}` — the session's token expires at `at` (seconds since the epoch,
 *   or null): schedule its refresh.
 * - `{effect: "reconnect"}` — the connection is lost: drop the socket without a close frame and
 *   connect again (then `open()`).
 * - `{effect: "closed"}` — the call is over: drop the socket, stop the timers (the `closed`
 *   event follows).
 * - `{effect: "leave_room", keep}` — the member is out of its room: close its peer connections
 *   (with `keep`, keep its local tracks to publish them again after a rejoin).
 * - `{effect: "rejoined", op}` / `{effect: "rejoin_failed", op}` — the join again (`op`) after a
 *   lost session was answered: publish the kept tracks again / stop the captured ones.
 * - `{effect: "media", frame}` — a media frame for the peer connections (`publish_answer` of a
 *   pending publish, `subscribe_offer`, `ice_candidate`, `media_interrupted`, `media_lost`).
 * - `{effect: "published", publication}`, `{effect: "unpublished", publication}` — a
 *   publication of this member's own began or ended in the room.
 * - `{effect: "hold", source, held}` — someone else muted this member's `source` (`held`), or
 *   the server applied its own unmute: stop or resume sending it.
 * - `{effect: "warn", message}` — something a correct server never does (a gap in `seq`, a
 *   frame that could not be handled); the frame was still taken.
 */
export class Output {
  constructor() {
    this.actions = [];
  }
  send(frame) { this.actions.push({ send: frame }); }
  event(ev) { this.actions.push({ event: ev }); }
  outcome(outcome, answered) { this.actions.push({ outcome, answered }); }
  effect(effect) { this.actions.push({ effect }); }
  /** Frames to send, in order. */
  frames() { return this.actions.filter((a) => a.send).map((a) => a.send); }
  /** Events to emit, in order. */
  events() { return this.actions.filter((a) => a.event).map((a) => a.event); }
  /** Operations settled, in order: `{op, kind, ok}` or `{op, kind, error}`. */
  outcomes() { return this.actions.filter((a) => a.outcome).map((a) => a.outcome); }
  /** Effects for the shell, in order. */
  effects() { return this.actions.filter((a) => a.effect).map((a) => a.effect); }
}

/**
 * One logged-in user's session, as the client sees it. `state`: `connecting` (before the first
 * `welcome`), `connected`, `reconnecting`, `closed`.
 */
export class Session {
  /**
   * `token`: the access token to log in with. `reconnect`: whether a lost connection is
   * resumed (true) or ends the call.
   */
  constructor({ token, reconnect = true } = {}) {
    this.token = token;
    this.reconnect = reconnect;
    this.state = "connecting";
    /** The user id the server gave this session (from `welcome`). */
    this.userId = null;
    /** The server's session id (for logs). */
    this.sessionId = null;
    this.resumeKey = null;
    /** The highest personal frame number `n` taken. */
    this.received = 0;
    /** The room: `{room, seq, participants: Map, properties, publications: Map}`, or null. */
    this.room = null;
    /** The next operation id (1, 2, 3, … per call). */
    this.nextOp = 1;
    this.pending = new Map(); // op -> { kind, frame, token?, rejoin? }
    this.outbox = []; // frames that are no requests, waiting for a connection
    this.handshake = null; // "hello" | "resume" | "rehello": what the next frame answers
    this.replayLeft = 0; // frames of a resume's replay still to come
    this.attempt = 0; // reconnection attempts since the connection was lost
    this.lostReason = null;
    this.joinOptions = null; // the last join request, to join again on a new session
    /** Room events taken after a gap in `seq` (none with a correct server). */
    this.seqGaps = 0;
    /** Frames dropped as taken already (their `n` or `seq`). */
    this.duplicates = 0;
  }

  // -- what the client has --------------------------------------------------------------------

  /** Where the client stands in what the server sent: `{received, room, seq}` (no room: no
   * `room` and `seq`). A `ping` and a `resume` name it. */
  position() {
    const p = { received: this.received };
    if (this.room) { p.room = this.room.room; p.seq = this.room.seq; }
    return p;
  }

  /** The `ping` frame to send now (it acknowledges the position). */
  ping() {
    return { type: "ping", ...this.position() };
  }

  /** The room as the client has it now (a copy), or null. */
  roomView() {
    const r = this.room;
    if (!r) return null;
    return {
      room: r.room, seq: r.seq,
      participants: [...r.participants.values()],
      properties: r.properties,
      publications: [...r.publications.values()],
    };
  }

  /** Whether the client is in a room. */
  inRoom() {
    return this.room !== null;
  }

  /** A publication of the room, by id, or undefined. */
  publication(id) {
    return this.room?.publications.get(id);
  }

  /** Whether operation `op` waits for its answer. */
  isPending(op) {
    return this.pending.has(op);
  }

  // -- the connection -------------------------------------------------------------------------

  /** A new connection is open: say `hello` (no session yet) or `resume` the session. */
  open() {
    const out = new Output();
    if (this.state === "closed") return out;
    this.replayLeft = 0;
    if (!this.resumeKey) {
      this.handshake = "hello";
      out.send({ type: "hello", version: PROTOCOL_VERSION, token: this.token });
    } else {
      this.handshake = "resume";
      out.send({
        type: "resume", version: PROTOCOL_VERSION, token: this.newestToken(),
        resume_key: this.resumeKey, ...this.position(),
      });
    }
    return out;
  }

  /**
   * The connection is lost (an error, a close without `goodbye`, silence): `reconnecting`, or
   * the end of the call if reconnecting is off. Nothing while reconnecting already.
   */
  down(reason) {
    const out = new Output();
    if (this.state === "closed" || this.state === "reconnecting") return out;
    this._down(reason, out);
    return out;
  }

  _down(reason, out) {
    if (!this.reconnect) {
      this._finish(reason, undefined, out);
      return;
    }
    this.state = "reconnecting";
    this.handshake = null;
    this.replayLeft = 0;
    this.attempt = 1;
    this.lostReason = reason;
    out.event({ type: "reconnecting", attempt: 1, reason });
    out.effect({ effect: "reconnect" });
  }

  /** A reconnection attempt failed and the next one starts. */
  retry() {
    const out = new Output();
    if (this.state !== "reconnecting") return out;
    this.handshake = null;
    this.attempt += 1;
    out.event({ type: "reconnecting", attempt: this.attempt, reason: this.lostReason });
    return out;
  }

  /**
   * The call ends (`reason`: `quit` when the application closed it): unanswered requests fail
   * (`closed` for a quit, else `session_lost`), the member leaves its room, `closed` is last.
   */
  finish(reason, message) {
    const out = new Output();
    this._finish(reason, message, out);
    return out;
  }

  _finish(reason, message, out) {
    if (this.state === "closed") return;
    this.state = "closed";
    this.handshake = null;
    const code = reason === "quit" ? "closed" : "session_lost";
    for (const op of [...this.pending.keys()]) this._failOp(op, code, message || `the call closed (${reason})`, out);
    if (this.room) {
      const room = this.room.room;
      this._leaveRoom(out);
      out.event({ type: "left", room, reason, op: null });
    }
    this.outbox = [];
    out.effect({ effect: "closed" });
    out.event({ type: "closed", reason });
  }

  /** The token to log in with: a refresh's whose answer was not seen yet, else the session's. */
  newestToken() {
    let token = this.token;
    for (const p of this.pending.values()) if (p.kind === "refresh_token" && p.token) token = p.token;
    return token;
  }

  // -- requests -------------------------------------------------------------------------------

  /**
   * An application request: `frame` is the wire frame without `op` (`{type: "join", room: "r"}`).
   * Returns its operation id and what to do (the frame to send now, or nothing while there is
   * no connection: it goes out after the resume).
   */
  request(frame) {
    const kind = KINDS[frame.type] ?? frame.type;
    const { op, out } = this.reserve(kind);
    const p = this.pending.get(op);
    if (!p) return { op, out };
    if (frame.type === "join") this.joinOptions = { ...frame };
    if (frame.type === "refresh") p.token = frame.token;
    this._sendOp(op, { type: frame.type, op, ...frame }, out);
    return { op, out };
  }

  /**
   * Allocates an operation id for a request whose frame is made later (a publish: its offer
   * takes a moment), or that is the client's own (`negotiate`). A closed call fails it at once.
   */
  reserve(kind) {
    const op = this.nextOp++;
    const out = new Output();
    if (this.state === "closed") {
      // Nothing goes out any more: the outcome says so at once (no event: the streams ended).
      out.outcome({ op, kind, error: { code: "closed", message: "the call is closed" } }, false);
      return { op, out };
    }
    this.pending.set(op, { kind, frame: null });
    return { op, out };
  }

  /** Sends the frame of reserved operation `op` (now, or after the resume). */
  send(op, frame) {
    const out = new Output();
    this._sendOp(op, frame, out);
    return out;
  }

  _sendOp(op, frame, out) {
    const p = this.pending.get(op);
    if (!p) return;
    p.frame = frame;
    if (this.state === "connected") out.send(frame);
  }

  /** Sends a frame that is no request (a candidate, a media notice) now, or once connected. */
  notify(frame) {
    const out = new Output();
    if (this.state === "connected") out.send(frame);
    else if (this.state !== "closed" && this.outbox.length < OUTBOX_LIMIT) this.outbox.push(frame);
    return out;
  }

  /** Settles operation `op` as a success with `value` (a publish, once its answer is applied). */
  answer(op, value = null) {
    const out = new Output();
    this._answer(op, value, out, false);
    return out;
  }

  /** Fails operation `op` on the client's side (it never reached the server, or cannot go on). */
  fail(op, code, message) {
    const out = new Output();
    this._failOp(op, code, message, out);
    return out;
  }

  _failOp(op, code, message, out) {
    const p = this.pending.get(op);
    if (!p) return;
    this.pending.delete(op);
    const error = { code, message };
    out.outcome({ op, kind: p.kind, error }, false);
    this._outcomeEvent(op, p.kind, error, null, out);
  }

  _answer(op, value, out, answered = true) {
    const p = this.pending.get(op);
    if (!p) return; // an answer to no request of this session: ignored
    this.pending.delete(op);
    out.outcome({ op, kind: p.kind, ok: value }, answered);
    this._outcomeEvent(op, p.kind, null, value, out);
  }

  _resendPending(out) {
    const ops = [...this.pending.keys()].sort((a, b) => a - b);
    for (const op of ops) {
      const p = this.pending.get(op);
      if (p.frame) out.send(p.frame);
    }
    for (const frame of this.outbox.splice(0)) out.send(frame);
  }

  // -- frames from the server -----------------------------------------------------------------

  /** A frame from the server (a parsed JSON object). */
  receive(f) {
    const out = new Output();
    if (this.state === "closed" || f === null || typeof f !== "object") return out;
    if (this.handshake) {
      this._handshakeFrame(f, out);
      return out;
    }
    if (this.state !== "connected") return out; // from a connection given up
    try {
      this._frame(f, out);
    } catch (e) {
      out.effect({ effect: "warn", message: `a ${f.type} frame could not be handled: ${e?.message ?? e}` });
    }
    // Requests unanswered are sent again once the replay is in (their answers are not asked
    // for twice: after a resync, a repeat would get `duplicate_request`).
    if (this.replayLeft > 0 && --this.replayLeft === 0) this._resendPending(out);
    return out;
  }

  /** The answer to `hello` or `resume`. */
  _handshakeFrame(f, out) {
    const step = this.handshake;
    this.handshake = null;
    if (step === "resume") {
      if (f.type === "resumed") {
        this.state = "connected";
        this.attempt = 0;
        this.replayLeft = f.replayed ?? 0;
        if (f.resync) this._resynced(f.resync, out);
        else out.event({ type: "reconnected", replayed: f.replayed });
        if (this.replayLeft === 0) this._resendPending(out);
        return;
      }
      if (f.type === "error" && f.code === "unknown_session") {
        // The server forgot the session: log in again on the same connection.
        this.token = this.newestToken();
        this.handshake = "rehello";
        out.send({ type: "hello", version: PROTOCOL_VERSION, token: this.token });
        return;
      }
      // A refused token will not be accepted on the next try either.
      const fatal = f.type === "error" && f.code !== "internal" && f.code !== "rate_limited";
      out.effect({ effect: "refused", code: f.code ?? "internal", message: f.message ?? `unexpected ${f.type}`, fatal });
      return;
    }
    if (f.type !== "welcome") {
      const message = f.message ?? (step === "hello" ? `unexpected ${f.type}` : "hello refused");
      out.effect({ effect: "refused", code: f.code ?? "internal", message, fatal: true });
      return;
    }
    if (step === "hello") {
      this._welcomed(f, out);
      this.state = "connected";
      return;
    }
    this._startOver(f, out);
  }

  _welcomed(f, out) {
    this.userId = f.user_id;
    this.sessionId = f.session;
    this.resumeKey = f.resume_key;
    this.received = 0;
    out.effect({ effect: "expires", at: f.expires_at ?? null });
  }

  /** A new session after `unknown_session`: fail what was unanswered, join the room again. */
  _startOver(f, out) {
    const leaving = [...this.pending.values()].some((p) => p.kind === "leave" || p.kind === "end");
    for (const op of [...this.pending.keys()]) this._failOp(op, "session_lost", "the server lost the session; whether it took effect is unknown", out);
    this._welcomed(f, out);
    this.state = "connected";
    this.attempt = 0;
    const room = this.room;
    // The old peer connections are over (and the candidates and notices kept for them); the
    // local tracks are kept to publish again, unless the member was leaving.
    this._leaveRoom(out, !leaving);
    if (!room) return;
    if (leaving) {
      out.event({ type: "left", room: room.room, reason: "network", op: null });
      return;
    }
    // The same room, display name, flags, state and auto_subscribe as the membership had.
    const join = { ...(this.joinOptions ?? {}), type: "join", room: room.room };
    const { op } = this.reserve("rejoin");
    this.pending.get(op).rejoin = { room: room.room };
    this._sendOp(op, { type: "join", op, ...join }, out);
  }

  /** The server could not replay all that was missed: take its state as it is now. */
  _resynced(r, out) {
    this.received = r.n;
    const before = this.room;
    if (r.room) {
      if (before && before.room !== r.room.room) this._leaveRoom(out);
      this._setRoom(r.room);
    } else if (before) {
      this._leaveRoom(out);
      out.event({ type: "left", room: before.room, reason: "network", op: null });
    }
    out.event({
      type: "resynced", snapshot: r.room ?? null, missed: r.missed,
      invitations: r.invitations ?? [], sent_invitations: r.sent_invitations ?? [],
    });
  }

  _frame(f, out) {
    if (f.n !== undefined) {
      if (f.n <= this.received) { this.duplicates++; return; } // taken already (a replay, a repeated answer)
      this.received = f.n;
    } else if (f.seq !== undefined && ROOM_EVENTS.has(f.type)) {
      const r = this.room;
      if (!r || f.room !== r.room) return; // a room this client is not in (any more)
      if (f.seq <= r.seq) { this.duplicates++; return; } // taken already
      if (f.seq !== r.seq + 1) {
        // Never from a correct server. Taken as docs/protocol.md says (a client drops only
        // what is not above its position), and counted.
        this.seqGaps++;
        out.effect({ effect: "warn", message: `room ${r.room}: event ${f.seq} after ${r.seq}` });
      }
      r.seq = f.seq;
    }
    switch (f.type) {
      case "pong": return;
      case "goodbye": return this._goodbye(f, out);
      case "joined": return this._joined(f, out);
      case "done": return this._done(f, out);
      case "error": return this._error(f, out);
      case "invited": return this._answer(f.op, { room: f.room, invitations: f.invitations, failed: f.failed }, out);
      case "bans": return this._answer(f.op, f.bans, out);
      case "refreshed": return this._refreshed(f, out);
      case "publish_answer":
        if (this.pending.has(f.op)) out.effect({ effect: "media", frame: f });
        return;
      case "subscribe_offer":
      case "ice_candidate":
      case "media_interrupted":
      case "media_lost":
      case "publish_layers":
        return out.effect({ effect: "media", frame: f });
      case "speakers":
        return out.event({ type: "media", kind: "active_speakers", room: f.room, speakers: f.speakers });
      case "media_failed":
        return out.event({ type: "media", kind: "failed", connection: f.connection, publication: f.publication ?? null, message: f.message });
      default: return this._roomEvent(f, out);
    }
  }

  _goodbye(f, out) {
    if (f.reconnect && this.reconnect) this._down(f.reason, out);
    else this._finish(f.reason, undefined, out);
  }

  _refreshed(f, out) {
    const p = this.pending.get(f.op);
    if (p?.token) this.token = p.token;
    out.effect({ effect: "expires", at: f.expires_at ?? null });
    this._answer(f.op, { expiresAt: f.expires_at }, out);
  }

  _setRoom(s) {
    this.room = {
      room: s.room, seq: s.seq,
      participants: new Map((s.participants ?? []).map((p) => [p.user_id, p])),
      properties: s.properties,
      publications: new Map((s.publications ?? []).map((p) => [p.id, p])),
    };
  }

  _leaveRoom(out, keep = false) {
    this.room = null;
    this.outbox = [];
    out.effect({ effect: "leave_room", keep });
  }

  _joined(f, out) {
    const p = this.pending.get(f.op);
    if (!p) return; // an answer to no request of this session: ignored
    const snapshot = { room: f.room, seq: f.seq, participants: f.participants, properties: f.properties, publications: f.publications ?? [] };
    if (this.room && !p.rejoin) {
      // Accepting an invitation during another call: the server took this member out of it
      // first (its peer connections ended with it).
      const old = this.room.room;
      this._leaveRoom(out);
      out.event({ type: "left", room: old, reason: "quit", op: null });
    }
    this._setRoom(snapshot);
    if (p.rejoin) {
      this.pending.delete(f.op);
      out.outcome({ op: f.op, kind: p.kind, ok: snapshot }, true);
      out.event({ type: "rejoined", snapshot });
      out.effect({ effect: "rejoined", op: f.op });
      return;
    }
    out.event({ type: "joined", op: f.op, snapshot });
    // An invite from outside a room answers `joined` first, then `invited`.
    if (p.kind === "invite") return;
    this._answer(f.op, snapshot, out);
  }

  _done(f, out) {
    const p = this.pending.get(f.op);
    if (!p) return; // an answer to no request of this session: ignored
    // A group message's sender gets its `seq` here instead of the message.
    if (p.kind === "send_message" && f.seq != null && this.room && f.seq > this.room.seq) this.room.seq = f.seq;
    if (p.kind === "leave" && this.room) {
      const room = this.room.room;
      this._leaveRoom(out);
      this.pending.delete(f.op);
      out.outcome({ op: f.op, kind: p.kind, ok: null }, true);
      out.event({ type: "left", room, reason: "quit", op: f.op });
      return;
    }
    this._answer(f.op, f.seq != null ? { seq: f.seq } : null, out);
  }

  _error(f, out) {
    const p = f.op != null ? this.pending.get(f.op) : undefined;
    if (!p) {
      out.event({ type: "server_error", error: { code: f.code, message: f.message, op: f.op ?? null } });
      return;
    }
    this.pending.delete(f.op);
    const error = { code: f.code, message: f.message };
    out.outcome({ op: f.op, kind: p.kind, error }, true);
    if (p.rejoin) {
      // The join again was refused (the room is gone, the token expired…): out of the room.
      out.effect({ effect: "rejoin_failed", op: f.op });
      out.event({ type: "left", room: p.rejoin.room, reason: "network", op: null });
      return;
    }
    this._outcomeEvent(f.op, p.kind, error, null, out);
  }

  /** The event that reports an operation's outcome (none for a successful join: `joined`). */
  _outcomeEvent(op, kind, error, value, out) {
    const result = error ? { error: { code: error.code, message: error.message } } : {};
    switch (kind) {
      case "join":
      case "rejoin":
      case "recorder_join":
        if (error) out.event({ type: "joined", op, ...result });
        return;
      case "leave": return out.event({ type: "completed", op, kind, ...result });
      case "send_message": return out.event({ type: "message", kind: "sent", op, seq: value?.seq ?? null, ...result });
      case "invite": return out.event({ type: "invite", kind: "sent", op, report: value ?? null, ...result });
      case "cancel_invite": return out.event({ type: "invite", kind: "cancel_result", op, ...result });
      case "accept_invite":
        if (error) out.event({ type: "joined", op, ...result });
        return out.event({ type: "invite", kind: "accept_result", op, ...result });
      case "reject_invite": return out.event({ type: "invite", kind: "reject_result", op, ...result });
      case "list_bans": return out.event({ type: "bans", op, bans: value ?? null, ...result });
      case "negotiate": return; // the client's own media negotiation: no one waits for it
      default: return out.event({ type: "completed", op, kind: kind ?? "unknown", ...result });
    }
  }

  _roomEvent(f, out) {
    const r = this.room;
    switch (f.type) {
      case "participant_joined":
        r?.participants.set(f.participant.user_id, f.participant);
        return out.event({ type: "participant", kind: "joined", room: f.room, seq: f.seq, participant: f.participant });
      case "participant_left":
        if (f.participant.user_id === this.userId) {
          if (r) this._leaveRoom(out);
          return out.event({ type: "left", room: f.room, reason: f.reason, op: null });
        }
        r?.participants.delete(f.participant.user_id);
        return out.event({ type: "participant", kind: "left", room: f.room, seq: f.seq, participant: f.participant, reason: f.reason });
      case "participant_updated":
        r?.participants.set(f.participant.user_id, f.participant);
        return out.event({ type: "participant", kind: "updated", room: f.room, seq: f.seq, participant: f.participant, changes: f.changes });
      case "properties_changed":
        if (r) r.properties = f.properties;
        return out.event({ type: "property", kind: "changed", room: f.room, seq: f.seq, properties: f.properties, changes: f.changes, by: f.by });
      case "message":
        return out.event({
          type: "message", kind: "received",
          message: { room: f.room, seq: f.seq ?? null, from: f.from, scope: f.scope, content_type: f.content_type, content: f.content },
        });
      case "call_ended":
        if (r) this._leaveRoom(out);
        return out.event({ type: "left", room: f.room, reason: f.reason ?? "over", by: f.by, op: null });
      case "track_published":
        r?.publications.set(f.publication.id, f.publication);
        if (f.publication.participant === this.userId) out.effect({ effect: "published", publication: f.publication });
        return out.event({ type: "media", kind: "published", room: f.room, seq: f.seq, publication: f.publication });
      case "track_muted":
        r?.publications.set(f.publication.id, f.publication);
        // Someone else muted this member's own source: it stops sending it before the event
        // is out (the server forwards nothing of it anyway), until the server says it is
        // unmuted (this member's own unmute, applied).
        if (f.publication.participant === this.userId && (f.by || !f.publication.muted)) {
          out.effect({ effect: "hold", source: f.publication.source, held: f.publication.muted });
        }
        return out.event({ type: "media", kind: f.publication.muted ? "muted" : "unmuted", room: f.room, seq: f.seq, publication: f.publication, by: f.by ?? null });
      case "track_unpublished":
        r?.publications.delete(f.publication.id);
        if (f.publication.participant === this.userId) out.effect({ effect: "unpublished", publication: f.publication });
        return out.event({ type: "media", kind: "unpublished", room: f.room, seq: f.seq, publication: f.publication, reason: f.reason });
      case "recording_started":
        return out.event({ type: "recording", kind: "started", room: f.room, seq: f.seq, recording: f.recording, recorder: f.recorder, by: f.by });
      case "recording_stopped":
        return out.event({ type: "recording", kind: "stopped", room: f.room, seq: f.seq, recording: f.recording, reason: f.reason, files: f.files });
      case "recording_aborted":
        return out.event({ type: "recording", kind: "aborted", room: f.room, seq: f.seq, recording: f.recording, recorder: f.recorder ?? null, reason: f.reason, shut_down: f.shut_down });
      case "invite_received":
        return out.event({ type: "invite", kind: "received", invitation: f.invitation });
      case "invite_canceled":
        return out.event({ type: "invite", kind: "canceled", invitation: f.invitation, reason: f.reason });
      case "invite_accepted":
        return out.event({ type: "invite", kind: "accepted", invitation: f.invitation });
      case "invite_rejected":
        return out.event({ type: "invite", kind: "rejected", invitation: f.invitation, reason: f.reason });
      case "record_job":
        return out.event({ type: "recording", kind: "job", job: f.job });
      case "record_stop":
        return out.event({ type: "recording", kind: "stop_asked", recording: f.recording, reason: f.reason });
      default:
        return undefined; // a newer server's frame (or a connection frame): ignored, as the protocol asks
    }
  }
}

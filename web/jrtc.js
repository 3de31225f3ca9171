// jrtc.js — the browser client of jrtc, an ES module with no dependencies and no build step.
//
// It speaks docs/protocol.md: one WebSocket for signaling (with resume after a network loss:
// nothing lost, nothing twice, order kept), and two RTCPeerConnections for media (one that
// publishes, one that receives). The call handle mirrors the Rust `jrtc::Call`: every request
// returns an operation id at once, its outcome arrives as an event carrying that id (or is
// awaited with `call.outcome(op)`), and `call.events()` is an async iterator of everything the
// call reports, in the server's order, ending with a `closed` event.
//
//   import { Call } from "/jrtc.js";
//   const call = await Call.connect("ws://127.0.0.1:7600/signal", token);
//   const op = call.join("standup");
//   for await (const ev of call.events()) console.log(ev.type, ev.kind ?? "", ev);
//
// Types: jrtc.d.ts beside this file.

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** The sources a participant publishes, and their kinds. */
export const SOURCES = Object.freeze({ microphone: "audio", camera: "video", screen: "video" });

const DEFAULTS = Object.freeze({
  pingIntervalMs: 2500,
  idleTimeoutMs: 7500,
  reconnect: true,
  reconnectForMs: 60000,
  eventCapacity: 4096,
  iceServers: [],
  refreshToken: null,
  WebSocket: null,
});

// Room events: frames that carry the room's `seq` and no personal number `n`.
const ROOM_EVENTS = new Set([
  "participant_joined", "participant_left", "participant_updated", "properties_changed",
  "message", "call_ended", "track_published", "track_unpublished", "track_muted",
  "recording_started", "recording_stopped", "recording_aborted",
]);

// The operation kind of each request type (as the Rust client's `OperationKind`).
const KINDS = {
  join: "join", leave: "leave", end: "end", kick: "kick", set_role: "set_role", update: "update",
  set_properties: "set_properties", send_message: "send_message", invite: "invite",
  cancel_invite: "cancel_invite", accept_invite: "accept_invite", reject_invite: "reject_invite",
  unpublish: "unpublish", mute: "mute", subscribe: "subscribe_track",
  unsubscribe: "unsubscribe_track", unban: "unban", list_bans: "list_bans",
  refresh: "refresh_token", revoke: "revoke", start_recording: "start_recording",
  stop_recording: "stop_recording", recorder_ready: "recorder_ready", recorder_join: "recorder_join",
};

/** A request refused by the server (or failed on the way): `code` is the protocol's error code. */
export class CallError extends Error {
  constructor(code, message, op = null, kind = null) {
    super(message || code);
    this.name = "CallError";
    /** The error code (`permission_denied`, `session_lost`, `media_failed`, …). */
    this.code = code;
    /** The operation it answers, if any. */
    this.op = op;
    /** The operation's kind, if any. */
    this.kind = kind;
  }
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // an outcome nobody awaits is not an unhandled rejection
  return { promise, resolve, reject, settled: false };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Event subscriptions: an async iterator each, bounded, with an explicit `lagged` event when a
// slow reader's queue overflows (never a silent loss).

class Subscription {
  constructor(call, accept, capacity) {
    this.call = call;
    this.accept = accept;
    this.capacity = capacity;
    this.items = [];
    this.waiter = null;
    this.ended = false;
  }

  push(ev) {
    if (this.ended || !(ev.type === "closed" || this.accept(ev))) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: ev, done: false });
    } else if (this.items.length < this.capacity || ev.type === "closed") {
      this.items.push(ev);
    } else {
      const last = this.items[this.items.length - 1];
      if (last.type === "lagged") last.missed += 1;
      else this.items.push({ type: "lagged", missed: 1 });
    }
    if (ev.type === "closed") this.ended = true;
  }

  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  return() {
    this.ended = true;
    this.items = [];
    this.call._subscriptions.delete(this);
    if (this.waiter) this.waiter({ value: undefined, done: true });
    this.waiter = null;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

// ---------------------------------------------------------------------------------------------
// SDP: the few facts the client needs from a description (media sections, their mid,
// direction and msid), and the rewrite of a publishing offer's track ids into source names
// (a browser cannot choose a MediaStreamTrack's id).

function sections(sdp) {
  return sdp.split(/\r?\n(?=m=)/).slice(1).map((text) => {
    const mline = text.split(/\r?\n/, 1)[0];
    const [kind, port] = mline.slice(2).split(" ");
    const mid = /(?:^|\n)a=mid:([^\r\n]+)/.exec(text)?.[1] ?? null;
    const direction = /(?:^|\n)a=(sendrecv|sendonly|recvonly|inactive)\r?$/m.exec(text)?.[1] ?? "sendrecv";
    const msid = /(?:^|\n)a=msid:(\S+) ([^\r\n]+)/.exec(text);
    return {
      kind, mid, direction: port === "0" ? "inactive" : direction,
      stream: msid ? msid[1] : null, track: msid ? msid[2].trim() : null, text,
    };
  });
}

/** The publishing offer with each source's media section naming its source as the track id. */
export function renameTracks(sdp, sourceByMid) {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const parts = sdp.split(/\r?\n(?=m=)/);
  for (let i = 1; i < parts.length; i++) {
    const mid = /(?:^|\n)a=mid:([^\r\n]+)/.exec(parts[i])?.[1];
    const source = mid != null ? sourceByMid.get(mid) : undefined;
    if (!source) continue;
    let text = parts[i];
    if (/(?:^|\n)a=msid:/.test(text)) {
      text = text.replace(/^a=msid:(\S+) [^\r\n]+/gm, `a=msid:$1 ${source}`);
    } else {
      text = text.replace(/^(a=mid:[^\r\n]+)/m, `$1${eol}a=msid:- ${source}`);
    }
    text = text.replace(/^a=ssrc:(\d+) msid:(\S+) [^\r\n]+/gm, `a=ssrc:$1 msid:$2 ${source}`);
    parts[i] = text;
  }
  return parts.join(eol);
}

function candidateFrame(candidate) {
  const c = { candidate: candidate.candidate };
  if (candidate.sdpMid != null) c.sdp_mid = candidate.sdpMid;
  if (candidate.sdpMLineIndex != null) c.sdp_mline_index = candidate.sdpMLineIndex;
  if (candidate.usernameFragment != null) c.username_fragment = candidate.usernameFragment;
  return c;
}

function candidateInit(c) {
  return {
    candidate: c.candidate,
    sdpMid: c.sdp_mid ?? null,
    sdpMLineIndex: c.sdp_mline_index ?? null,
    usernameFragment: c.username_fragment ?? null,
  };
}

// ---------------------------------------------------------------------------------------------

/**
 * One logged-in user: a session on a jrtc server that survives network faults.
 * Made with `Call.connect(url, token, options)`.
 */
export class Call {
  constructor(url, token, options) {
    this.url = url;
    this._token = token;
    this.options = { ...DEFAULTS, ...options };
    this._WS = this.options.WebSocket ?? globalThis.WebSocket;
    /** The user id the server gave this session (from `welcome`). */
    this.userId = null;
    /** The server's session id (for logs). */
    this.session = null;
    this._resumeKey = null;
    this._received = 0; // highest personal frame number taken
    this._room = null; // { room, seq, participants: Map, properties, publications: Map }
    this._nextOp = 1;
    this._pending = new Map(); // op -> { kind, frame, done, extra }
    this._outcomes = new Map(); // op -> deferred
    this._settled = []; // ops settled, oldest first (their outcomes are kept for a while)
    this._subscriptions = new Set();
    this._ws = null;
    this._state = "connecting";
    this._lastFrameAt = Date.now();
    this._timers = [];
    this._closed = false;
    this._welcome = null;
    this._expiresAt = null;
    this._refreshTimer = null;
    this._outbox = [];
    this._media = new Media(this);
  }

  /**
   * Opens a session: connects, says `hello` with `token`, and resolves once the server
   * welcomed it (rejects with a `CallError` if it refused).
   */
  static async connect(url, token, options = {}) {
    const call = new Call(url, token, options);
    await call._login();
    call._timers.push(setInterval(() => call._tick(), 500));
    return call;
  }

  /** `connecting`, `connected`, `reconnecting` or `closed`. */
  get state() {
    return this._state;
  }

  /** The room this call is in now (a copy), or null. */
  room() {
    if (!this._room) return null;
    const r = this._room;
    return {
      room: r.room, seq: r.seq,
      participants: [...r.participants.values()],
      properties: r.properties,
      publications: [...r.publications.values()],
    };
  }

  // -- events -----------------------------------------------------------------------------

  /**
   * Everything the call reports from now on, as an async iterator. `filter`: nothing (all),
   * an event type (`"message"`), a list of them, or a predicate.
   */
  events(filter) {
    let accept = () => true;
    if (typeof filter === "string") accept = (ev) => ev.type === filter;
    else if (Array.isArray(filter)) accept = (ev) => filter.includes(ev.type);
    else if (typeof filter === "function") accept = filter;
    const sub = new Subscription(this, accept, this.options.eventCapacity);
    if (this._closed) sub.push(this._closedEvent);
    else this._subscriptions.add(sub);
    return sub;
  }
  /** Members joining, leaving and changing. */
  participants() { return this.events("participant"); }
  /** Call property changes. */
  properties() { return this.events("property"); }
  /** Messages received, and the outcomes of those sent. */
  messages() { return this.events("message"); }
  /** Invitations received and answered, and the outcomes of invitation requests. */
  invites() { return this.events("invite"); }
  /** Tracks published, muted, unpublished; remote tracks arriving and ending. */
  media() { return this.events("media"); }
  /** The room's recording starting, stopping, aborting. */
  recordings() { return this.events("recording"); }

  _emit(ev) {
    for (const sub of [...this._subscriptions]) sub.push(ev);
  }

  /**
   * The outcome of operation `op`: resolves with its result (the room snapshot for a join, the
   * report for an invite, the bans for `listBans`, `{seq}` for a group message, else
   * undefined), or rejects with a `CallError`.
   */
  outcome(op) {
    let d = this._outcomes.get(op);
    if (!d) {
      if (op >= this._nextOp) return Promise.reject(new CallError("invalid_param", `no operation ${op}`, op));
      return Promise.reject(new CallError("invalid_param", `operation ${op} was settled too long ago`, op));
    }
    return d.promise;
  }

  _settle(op, error, value) {
    const d = this._outcomes.get(op);
    if (!d || d.settled) return;
    d.settled = true;
    if (error) d.reject(error);
    else d.resolve(value);
    this._settled.push(op);
    while (this._settled.length > 1024) this._outcomes.delete(this._settled.shift());
  }

  // -- requests ---------------------------------------------------------------------------

  _op(kind) {
    const op = this._nextOp++;
    const d = deferred();
    this._outcomes.set(op, d);
    if (this._closed) {
      // Nothing goes out any more: the outcome says so at once (no event: the streams ended).
      d.settled = true;
      d.reject(new CallError("closed", "the call is closed", op, kind));
      return op;
    }
    this._pending.set(op, { kind, frame: null });
    return op;
  }

  /** Sends request `frame` (its `type` first) with a new op id; returns the id. */
  _request(frame, extra = {}) {
    const kind = KINDS[frame.type] ?? frame.type;
    const op = this._op(kind);
    if (!this._pending.has(op)) return op;
    Object.assign(this._pending.get(op), extra);
    this._sendOp(op, { type: frame.type, op, ...frame });
    return op;
  }

  _sendOp(op, frame) {
    const p = this._pending.get(op);
    if (!p) return;
    p.frame = frame;
    if (this._state === "connected") this._send(frame);
  }

  /** Fails an operation on the client's side (it never reached the server, or cannot go on). */
  _fail(op, code, message, cause) {
    const p = this._pending.get(op);
    if (!p) return;
    this._pending.delete(op);
    const error = new CallError(code, message, op, p?.kind ?? null);
    if (cause !== undefined) error.cause = cause; // a device's DOMException (`NotAllowedError`, …)
    this._outcomeEvent(op, p?.kind, error, undefined, p);
    this._settle(op, error);
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(frame));
  }

  /** Sends a frame that is no request (a candidate, a media notice) now, or once connected again. */
  _sendSoon(frame) {
    if (this._state === "connected") this._send(frame);
    else if (this._outbox.length < 256) this._outbox.push(frame);
  }

  /**
   * Joins room `room` (null: a new room with an unguessable id). `options`: `displayName`,
   * `audio`, `video`, `state`, `autoSubscribe`.
   */
  join(room, options = {}) {
    const f = { type: "join", room: room ?? null };
    if (options.displayName != null) f.display_name = options.displayName;
    if (options.audio != null) f.audio = options.audio;
    if (options.video != null) f.video = options.video;
    if (options.state != null) f.state = options.state;
    if (options.autoSubscribe != null) f.auto_subscribe = options.autoSubscribe;
    this._joinOptions = f;
    return this._request(f);
  }
  /** Leaves the room. */
  leave() { return this._request({ type: "leave" }); }
  /** Ends the call for everyone (hosts). */
  end() { return this._request({ type: "end" }); }
  /** Removes `userId` from the room (hosts); `ban`: `true` for as long as the room lasts, or `{forMs}`. */
  kick(userId, ban) {
    const f = { type: "kick", user_id: userId };
    if (ban === true) f.ban = {};
    else if (ban && ban.forMs != null) f.ban = { for_ms: ban.forMs };
    return this._request(f);
  }
  /** Lifts a ban (hosts with the `moderate` grant). */
  unban(userId) { return this._request({ type: "unban", user_id: userId }); }
  /** The room's bans (hosts with `moderate`): the outcome and a `bans` event carry them. */
  listBans() { return this._request({ type: "list_bans" }); }
  /** Makes `userId` a `host` or a `guest` (hosts). */
  setRole(userId, role) { return this._request({ type: "set_role", user_id: userId, role }); }
  /** Changes this member's own fields: `audio`, `video`, `displayName`, `state`. */
  update(fields) {
    const f = { type: "update" };
    if (fields.audio != null) f.audio = fields.audio;
    if (fields.video != null) f.video = fields.video;
    if (fields.displayName != null) f.display_name = fields.displayName;
    if (fields.state != null) f.state = fields.state;
    return this._request(f);
  }
  /** Sets call properties: `screenShare` (`{userId, streamId}` or null), `custom` (`{key: value|null}`). */
  setProperties(props) {
    const f = { type: "set_properties" };
    if (props.screenShare !== undefined) {
      f.screen_share = props.screenShare && { user_id: props.screenShare.userId, stream_id: props.screenShare.streamId };
    }
    if (props.custom !== undefined) f.custom = props.custom;
    return this._request(f);
  }
  /** Sends a message: to one member (`to`), or to every other member (`to` null). */
  sendMessage(to, contentType, content) {
    return this._request({ type: "send_message", to: to ?? null, content_type: contentType, content });
  }
  /** Invites users (`options`: `video`, `extra`, `timeoutMs`); from outside a room this starts a call. */
  invite(callees, options = {}) {
    const f = { type: "invite", callees };
    if (options.video != null) f.video = options.video;
    if (options.extra != null) f.extra = options.extra;
    if (options.timeoutMs != null) f.timeout_ms = options.timeoutMs;
    return this._request(f);
  }
  /** Withdraws an invitation this call made. */
  cancelInvite(invitation) { return this._request({ type: "cancel_invite", invitation }); }
  /** Accepts an invitation: joins its room (`options.video`: the camera flag). */
  acceptInvite(invitation, options = {}) {
    return this._request({ type: "accept_invite", invitation, video: !!options.video });
  }
  /** Rejects an invitation: `reason` `"declined"` (default) or `"busy"`. */
  rejectInvite(invitation, reason = "declined") {
    return this._request({ type: "reject_invite", invitation, reason });
  }
  /** Starts recording the room (hosts with `record`): `audio`, `video`, `policy`, `maxDurationMs`, `maxBytes`. */
  startRecording(options = {}) {
    const f = { type: "start_recording" };
    if (options.audio != null) f.audio = options.audio;
    if (options.video != null) f.video = options.video;
    if (options.policy != null) f.policy = options.policy;
    if (options.maxDurationMs != null) f.max_duration_ms = options.maxDurationMs;
    if (options.maxBytes != null) f.max_bytes = options.maxBytes;
    return this._request(f);
  }
  /** Stops the room's recording. */
  stopRecording() { return this._request({ type: "stop_recording" }); }
  /** A recorder (a token with the `recorder` grant) takes jobs from now on: `recording` events
   * of kind `job` (record a room) and `stop_asked` (close the job's files). */
  recorderReady() { return this._request({ type: "recorder_ready" }); }
  /** Joins a job's room as its recorder (from a session of its own, outside a room); the
   * outcome is the room snapshot, as for `join`. */
  recorderJoin(recording) { return this._request({ type: "recorder_join", recording }); }
  /**
   * Reports on a job: `{state: "recording"}`, `{state: "stopped", reason, files}` or
   * `{state: "failed", reason, message}`. It has no answer (no op); a refusal comes as a
   * `server_error` event.
   */
  recordingReport(recording, report) {
    this._sendSoon({ type: "recording_report", recording, report });
  }
  /** Hands the server a newer token of the same user (before the current one expires). */
  refresh(token) { return this._request({ type: "refresh", token }, { token }); }
  /** Revokes a token (`{jti}`) or a user's tokens issued before a time (`{userId, issuedBefore}`); needs `admin`. */
  revoke(what) {
    const f = { type: "revoke" };
    if (what.jti != null) f.jti = what.jti;
    if (what.userId != null) f.user_id = what.userId;
    if (what.issuedBefore != null) f.issued_before = what.issuedBefore;
    return this._request(f);
  }

  // -- media ------------------------------------------------------------------------------

  /** Publishes `track` (a MediaStreamTrack) as `source` (`microphone`, `camera`, `screen`). */
  publish(source, track) { return this._media.publish(source, track, false); }
  /** Captures the camera (`getUserMedia`; `constraints` for `video`) and publishes it. */
  publishCamera(constraints = true) {
    return this._media.capture("camera", () => navigator.mediaDevices.getUserMedia({ video: constraints }));
  }
  /** Captures the microphone (`getUserMedia`; `constraints` for `audio`) and publishes it. */
  publishMicrophone(constraints = true) {
    return this._media.capture("microphone", () => navigator.mediaDevices.getUserMedia({ audio: constraints }));
  }
  /** Captures a screen (`getDisplayMedia`) and publishes it: this member becomes the sharer. */
  publishScreen(constraints = true) {
    return this._media.capture("screen", () => navigator.mediaDevices.getDisplayMedia({ video: constraints }));
  }
  /** Stops publishing `source` (its captured track is stopped). */
  unpublish(source) { return this._media.unpublish(source); }
  /** Mutes or unmutes a published source: a muted source sends nothing. */
  mute(source, muted = true) { return this._media.mute(source, muted); }
  /**
   * Mutes another member's source (a host with the `moderate` grant). The server forwards
   * nothing of it from then on, to anyone (recordings included); everyone gets a `muted` media
   * event whose `by` is this member. Only the member unmutes it.
   */
  muteMember(userId, source) { return this._request({ type: "mute", source, muted: true, user_id: userId }); }
  /** Starts receiving a publication (`"alice/camera"`) this member does not receive. */
  subscribe(publication) { return this._request({ type: "subscribe", publication }); }
  /** Stops receiving a publication. */
  unsubscribe(publication) { return this._request({ type: "unsubscribe", publication }); }
  /** The local track published as `source`, if any. */
  localTrack(source) { return this._media.local.get(source)?.track ?? null; }
  /** The remote media of a publication this member receives: `{publication, stream, track}`, or null. */
  remote(publication) { return this._media.remoteOf(publication); }
  /** Every remote track received now. */
  remotes() { return this._media.remotes(); }
  /**
   * RTP counters of both peer connections, per track: `{inbound: [{publication, kind, packets,
   * bytes, framesDecoded}], outbound: [{source, kind, packets, bytes, framesEncoded}]}`.
   */
  mediaStats() { return this._media.stats(); }
  /** The peer connections (`publish`, `subscribe`; null until made), for `getStats` and debugging. */
  peerConnections() { return { publish: this._media.pub?.pc ?? null, subscribe: this._media.sub?.pc ?? null }; }

  // -- closing ----------------------------------------------------------------------------

  /** Ends the session in order (the room hears `quit`); the last event is `closed`. */
  close() {
    if (this._closed) return;
    const ws = this._ws;
    this._finish("quit");
    if (ws) {
      try { ws.close(1000); } catch { /* already closed */ }
    }
  }

  _finish(reason, message) {
    if (this._closed) return;
    this._closed = true;
    this._state = "closed";
    for (const t of this._timers) clearInterval(t);
    clearTimeout(this._refreshTimer);
    this._detach();
    for (const op of [...this._pending.keys()]) this._fail(op, reason === "quit" ? "closed" : "session_lost", message || `the call closed (${reason})`);
    if (this._room) {
      const room = this._room.room;
      this._media.leaveRoom();
      this._room = null;
      this._emit({ type: "left", room, reason, op: null });
    }
    this._media.close();
    this._closedEvent = { type: "closed", reason };
    this._emit(this._closedEvent);
    this._subscriptions.clear();
  }

  // -- the connection ---------------------------------------------------------------------

  _detach() {
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    return ws;
  }

  /** Stops listening to `ws`, and forgets it if it is the current connection. */
  _abandon(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (this._ws === ws) this._ws = null;
  }

  _open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WS(this.url);
      } catch (e) {
        reject(new CallError("network", String(e)));
        return;
      }
      this._ws = ws;
      const timer = setTimeout(() => { this._abandon(ws); try { ws.close(); } catch { /* */ } reject(new CallError("timeout", "the server did not answer")); }, 10000);
      ws.onopen = () => { clearTimeout(timer); resolve(ws); };
      ws.onerror = () => {};
      ws.onclose = () => { clearTimeout(timer); this._abandon(ws); reject(new CallError("network", `cannot connect to ${this.url}`)); };
    });
  }

  /** Reads the first frame of a new connection (the answer to `hello` / `resume`). */
  _firstFrame(ws) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Abandoned without a close frame (that could end a session it did resume).
        this._abandon(ws);
        reject(new CallError("timeout", "no answer to hello"));
      }, 10000);
      ws.onmessage = (m) => {
        clearTimeout(timer);
        ws.onmessage = null;
        try { resolve(JSON.parse(m.data)); } catch (e) { reject(new CallError("bad_json", String(e))); }
      };
      ws.onclose = () => { clearTimeout(timer); this._abandon(ws); reject(new CallError("network", "the connection closed")); };
    });
  }

  _live(ws) {
    this._lastFrameAt = Date.now();
    ws.onmessage = (m) => {
      this._lastFrameAt = Date.now();
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      try { this._onFrame(frame); } catch (e) { console.error("jrtc: a frame could not be handled", frame, e); }
      if (this._replayLeft > 0 && --this._replayLeft === 0) this._resendPending();
    };
    ws.onclose = () => { if (this._ws === ws) this._lost("network"); };
  }

  async _login() {
    const ws = await this._open();
    const first = this._firstFrame(ws);
    this._send({ type: "hello", version: PROTOCOL_VERSION, token: this._token });
    const f = await first;
    if (f.type !== "welcome") {
      this._detach();
      try { ws.close(1000); } catch { /* */ }
      throw new CallError(f.code ?? "internal", f.message ?? `unexpected ${f.type}`);
    }
    this._welcomed(f);
    this._state = "connected";
    this._live(ws);
  }

  _welcomed(f) {
    this.userId = f.user_id;
    this.session = f.session;
    this._resumeKey = f.resume_key;
    this._received = 0;
    this._scheduleRefresh(f.expires_at);
  }

  _scheduleRefresh(expiresAt) {
    clearTimeout(this._refreshTimer);
    this._expiresAt = expiresAt ?? null;
    const provider = this.options.refreshToken;
    if (!provider || !expiresAt) return;
    const left = expiresAt * 1000 - Date.now();
    const wait = Math.max(1000, left > 120000 ? left - 60000 : left / 2);
    this._refreshTimer = setTimeout(async () => {
      try { this.refresh(await provider()); } catch (e) { console.warn("jrtc: no new token", e); }
    }, wait);
  }

  _tick() {
    if (this._state !== "connected") return;
    const now = Date.now();
    if (now - this._lastFrameAt > this.options.idleTimeoutMs) {
      this._lost("timeout");
      return;
    }
    if (!this._lastPingAt || now - this._lastPingAt >= this.options.pingIntervalMs) {
      this._lastPingAt = now;
      const ping = { type: "ping", received: this._received };
      if (this._room) { ping.room = this._room.room; ping.seq = this._room.seq; }
      this._send(ping);
    }
  }

  /** The connection is gone without a goodbye: connect again and resume the session. */
  _lost(reason) {
    if (this._closed || this._state === "reconnecting") return;
    // Abandon the socket without a close frame: a close frame would end the session.
    this._detach();
    if (!this.options.reconnect) {
      this._finish(reason);
      return;
    }
    this._state = "reconnecting";
    this._reconnect(reason);
  }

  async _reconnect(reason) {
    const started = Date.now();
    let wait = 100;
    for (let attempt = 1; !this._closed; attempt++) {
      this._emit({ type: "reconnecting", attempt, reason });
      try {
        await this._resume();
        return;
      } catch (e) {
        if (e instanceof CallError && e.fatal) {
          this._finish(e.code === "session_gone" ? "network" : e.code, e.message);
          return;
        }
      }
      if (Date.now() - started > this.options.reconnectForMs) {
        this._finish("network", "the server could not be reached again");
        return;
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 5000);
    }
  }

  async _resume() {
    const ws = await this._open();
    const first = this._firstFrame(ws);
    const frame = {
      type: "resume", version: PROTOCOL_VERSION, token: this._newestToken(),
      resume_key: this._resumeKey, received: this._received,
    };
    if (this._room) { frame.room = this._room.room; frame.seq = this._room.seq; }
    this._send(frame);
    const f = await first;
    if (f.type === "resumed") {
      this._state = "connected";
      // Requests unanswered are sent again once the replay is in (its answers are not asked
      // for twice: after a resync, a repeat would get `duplicate_request`).
      this._replayLeft = f.replayed ?? 0;
      this._live(ws);
      if (f.resync) this._resynced(f.resync);
      else this._emit({ type: "reconnected", replayed: f.replayed });
      if (this._replayLeft === 0) this._resendPending();
      return;
    }
    if (f.type === "error" && f.code === "unknown_session") {
      await this._startOver(ws);
      return;
    }
    this._detach();
    try { ws.close(1000); } catch { /* */ }
    const error = new CallError(f.code ?? "internal", f.message ?? `unexpected ${f.type}`);
    // A refused token will not be accepted on the next try either.
    error.fatal = f.type === "error" && f.code !== "internal" && f.code !== "rate_limited";
    throw error;
  }

  /** The token to log in with: a refresh's whose answer was not seen yet, else the session's. */
  _newestToken() {
    let token = this._token;
    for (const p of this._pending.values()) if (p.kind === "refresh_token" && p.token) token = p.token;
    return token;
  }

  _resendPending() {
    const ops = [...this._pending.keys()].sort((a, b) => a - b);
    for (const op of ops) {
      const p = this._pending.get(op);
      if (p.frame) this._send(p.frame);
    }
    for (const frame of this._outbox.splice(0)) this._send(frame);
  }

  _resynced(r) {
    this._received = r.n;
    const before = this._room;
    if (r.room) {
      if (before && before.room !== r.room.room) this._media.leaveRoom();
      this._setRoom(r.room);
    } else if (before) {
      this._media.leaveRoom();
      this._room = null;
      this._emit({ type: "left", room: before.room, reason: "network", op: null });
    }
    this._emit({
      type: "resynced", snapshot: r.room ?? null, missed: r.missed,
      invitations: r.invitations ?? [], sent_invitations: r.sent_invitations ?? [],
    });
  }

  /** The server forgot the session (it restarted): log in again on `ws`, join the room again. */
  async _startOver(ws) {
    const first = this._firstFrame(ws);
    this._token = this._newestToken();
    this._send({ type: "hello", version: PROTOCOL_VERSION, token: this._token });
    const f = await first;
    if (f.type !== "welcome") {
      const e = new CallError(f.code ?? "internal", f.message ?? "hello refused");
      e.fatal = true;
      throw e;
    }
    const leaving = [...this._pending.values()].some((p) => p.kind === "leave" || p.kind === "end");
    for (const op of [...this._pending.keys()]) this._fail(op, "session_lost", "the server lost the session; whether it took effect is unknown");
    this._outbox = []; // candidates and notices of the old session's peer connections
    this._welcomed(f);
    this._state = "connected";
    this._live(ws);
    const room = this._room;
    const sources = this._media.leaveRoom(!leaving);
    this._room = null;
    if (!room) return;
    if (leaving) {
      this._emit({ type: "left", room: room.room, reason: "network", op: null });
      return;
    }
    const join = { ...(this._joinOptions ?? {}), type: "join", room: room.room };
    const op = this._op("rejoin");
    this._pending.get(op).rejoin = { room: room.room, sources };
    this._sendOp(op, { type: "join", op, ...join });
  }

  // -- frames from the server -------------------------------------------------------------

  _onFrame(f) {
    if (f.n !== undefined) {
      if (f.n <= this._received) return; // taken already (a replay, a repeated answer)
      this._received = f.n;
    } else if (f.seq !== undefined && ROOM_EVENTS.has(f.type)) {
      if (!this._room || f.room !== this._room.room || f.seq <= this._room.seq) return;
      this._room.seq = f.seq;
    }
    switch (f.type) {
      case "pong": return;
      case "goodbye": return this._goodbye(f);
      case "joined": return this._joined(f);
      case "done": return this._done(f);
      case "error": return this._error(f);
      case "invited": return this._answer(f.op, { room: f.room, invitations: f.invitations, failed: f.failed });
      case "bans": return this._answer(f.op, f.bans);
      case "refreshed": return this._refreshed(f);
      case "publish_answer": return this._media.onPublishAnswer(f);
      case "subscribe_offer": return this._media.onSubscribeOffer(f);
      case "ice_candidate": return this._media.onCandidate(f);
      case "media_interrupted": return this._media.onInterrupted(f);
      case "media_lost": return this._media.onLost(f);
      case "media_failed":
        return this._emit({ type: "media", kind: "failed", connection: f.connection, publication: f.publication ?? null, message: f.message });
      default: return this._roomEvent(f);
    }
  }

  _goodbye(f) {
    this._detach();
    if (f.reconnect && this.options.reconnect) {
      this._lost(f.reason);
    } else {
      this._finish(f.reason);
    }
  }

  _refreshed(f) {
    const p = this._pending.get(f.op);
    if (p?.token) this._token = p.token;
    this._scheduleRefresh(f.expires_at);
    this._answer(f.op, { expiresAt: f.expires_at });
  }

  _setRoom(s) {
    this._room = {
      room: s.room, seq: s.seq,
      participants: new Map((s.participants ?? []).map((p) => [p.user_id, p])),
      properties: s.properties,
      publications: new Map((s.publications ?? []).map((p) => [p.id, p])),
    };
  }

  _joined(f) {
    const p = this._pending.get(f.op);
    const snapshot = { room: f.room, seq: f.seq, participants: f.participants, properties: f.properties, publications: f.publications ?? [] };
    if (this._room && !p?.rejoin) {
      // Accepting an invitation during another call: the server took this member out of it
      // first (its peer connections ended with it).
      const old = this._room.room;
      this._media.leaveRoom();
      this._room = null;
      this._emit({ type: "left", room: old, reason: "quit", op: null });
    }
    this._setRoom(snapshot);
    if (p?.rejoin) {
      this._pending.delete(f.op);
      this._settle(f.op, null, snapshot);
      this._emit({ type: "rejoined", snapshot });
      for (const local of p.rejoin.sources) this._media.republish(local);
      return;
    }
    this._emit({ type: "joined", op: f.op, snapshot });
    // An invite from outside a room answers `joined` first, then `invited`.
    if (p && p.kind === "invite") return;
    this._answer(f.op, snapshot);
  }

  _done(f) {
    const p = this._pending.get(f.op);
    if (p?.kind === "send_message" && f.seq != null && this._room && f.seq > this._room.seq) this._room.seq = f.seq;
    if (p?.kind === "leave" && this._room) {
      const room = this._room.room;
      this._media.leaveRoom();
      this._room = null;
      this._pending.delete(f.op);
      this._settle(f.op, null, undefined);
      this._emit({ type: "left", room, reason: "quit", op: f.op });
      return;
    }
    if (p?.onDone) p.onDone();
    this._answer(f.op, f.seq != null ? { seq: f.seq } : undefined);
  }

  _error(f) {
    const error = new CallError(f.code, f.message, f.op ?? null);
    const p = f.op != null ? this._pending.get(f.op) : undefined;
    if (!p) {
      this._emit({ type: "server_error", error: { code: f.code, message: f.message, op: f.op ?? null } });
      return;
    }
    error.kind = p.kind;
    this._pending.delete(f.op);
    if (p.rejoin) {
      this._settle(f.op, error);
      for (const local of p.rejoin.sources) if (local.captured) local.track.stop();
      this._emit({ type: "left", room: p.rejoin.room, reason: "network", op: null });
      return;
    }
    if (p.onError) p.onError(error);
    this._outcomeEvent(f.op, p.kind, error, undefined, p);
    this._settle(f.op, error);
  }

  /** A request's successful answer: its outcome event, then its outcome. */
  _answer(op, value) {
    const p = this._pending.get(op);
    if (!p) return;
    if (p.waitAnswer) { // media: the answer goes on to the peer connection first
      p.waitAnswer(value);
      return;
    }
    this._pending.delete(op);
    this._outcomeEvent(op, p.kind, null, value, p);
    this._settle(op, null, value);
  }

  _outcomeEvent(op, kind, error, value, p) {
    const result = error ? { error: { code: error.code, message: error.message } } : {};
    switch (kind) {
      case "join":
      case "rejoin":
      case "recorder_join":
        if (error) this._emit({ type: "joined", op, ...result });
        return;
      case "leave": return this._emit({ type: "completed", op, kind, ...result });
      case "send_message": return this._emit({ type: "message", kind: "sent", op, seq: value?.seq ?? null, ...result });
      case "invite": return this._emit({ type: "invite", kind: "sent", op, report: value ?? null, ...result });
      case "cancel_invite": return this._emit({ type: "invite", kind: "cancel_result", op, ...result });
      case "accept_invite":
        if (error) this._emit({ type: "joined", op, ...result });
        return this._emit({ type: "invite", kind: "accept_result", op, ...result });
      case "reject_invite": return this._emit({ type: "invite", kind: "reject_result", op, ...result });
      case "list_bans": return this._emit({ type: "bans", op, bans: value ?? null, ...result });
      default:
        if (p?.silent) return;
        return this._emit({ type: "completed", op, kind: kind ?? "unknown", ...result });
    }
  }

  _roomEvent(f) {
    const r = this._room;
    switch (f.type) {
      case "participant_joined":
        r?.participants.set(f.participant.user_id, f.participant);
        return this._emit({ type: "participant", kind: "joined", room: f.room, seq: f.seq, participant: f.participant });
      case "participant_left":
        if (f.participant.user_id === this.userId) {
          if (r) { this._media.leaveRoom(); this._room = null; }
          return this._emit({ type: "left", room: f.room, reason: f.reason, op: null });
        }
        r?.participants.delete(f.participant.user_id);
        return this._emit({ type: "participant", kind: "left", room: f.room, seq: f.seq, participant: f.participant, reason: f.reason });
      case "participant_updated":
        r?.participants.set(f.participant.user_id, f.participant);
        return this._emit({ type: "participant", kind: "updated", room: f.room, seq: f.seq, participant: f.participant, changes: f.changes });
      case "properties_changed":
        if (r) r.properties = f.properties;
        return this._emit({ type: "property", kind: "changed", room: f.room, seq: f.seq, properties: f.properties, changes: f.changes, by: f.by });
      case "message":
        return this._emit({
          type: "message", kind: "received",
          message: { room: f.room, seq: f.seq ?? null, from: f.from, scope: f.scope, content_type: f.content_type, content: f.content },
        });
      case "call_ended":
        if (r) { this._media.leaveRoom(); this._room = null; }
        return this._emit({ type: "left", room: f.room, reason: f.reason ?? "over", by: f.by, op: null });
      case "track_published":
        r?.publications.set(f.publication.id, f.publication);
        this._media.published(f.publication);
        return this._emit({ type: "media", kind: "published", room: f.room, seq: f.seq, publication: f.publication });
      case "track_muted":
        r?.publications.set(f.publication.id, f.publication);
        // Someone else muted this member's own source: it stops sending it before the event
        // is out (the server forwards nothing of it anyway), until the server says it is
        // unmuted (this member's own unmute, applied).
        if (f.publication.participant === this.userId && (f.by || !f.publication.muted)) this._media.hold(f.publication.source, f.publication.muted);
        return this._emit({ type: "media", kind: f.publication.muted ? "muted" : "unmuted", room: f.room, seq: f.seq, publication: f.publication, by: f.by ?? null });
      case "track_unpublished":
        r?.publications.delete(f.publication.id);
        this._media.unpublished(f.publication);
        return this._emit({ type: "media", kind: "unpublished", room: f.room, seq: f.seq, publication: f.publication, reason: f.reason });
      case "recording_started":
        return this._emit({ type: "recording", kind: "started", room: f.room, seq: f.seq, recording: f.recording, recorder: f.recorder, by: f.by });
      case "recording_stopped":
        return this._emit({ type: "recording", kind: "stopped", room: f.room, seq: f.seq, recording: f.recording, reason: f.reason, files: f.files });
      case "recording_aborted":
        return this._emit({ type: "recording", kind: "aborted", room: f.room, seq: f.seq, recording: f.recording, recorder: f.recorder ?? null, reason: f.reason, shut_down: f.shut_down });
      case "invite_received":
        return this._emit({ type: "invite", kind: "received", invitation: f.invitation });
      case "invite_canceled":
        return this._emit({ type: "invite", kind: "canceled", invitation: f.invitation, reason: f.reason });
      case "invite_accepted":
        return this._emit({ type: "invite", kind: "accepted", invitation: f.invitation });
      case "invite_rejected":
        return this._emit({ type: "invite", kind: "rejected", invitation: f.invitation, reason: f.reason });
      case "record_job":
        return this._emit({ type: "recording", kind: "job", job: f.job });
      case "record_stop":
        return this._emit({ type: "recording", kind: "stop_asked", recording: f.recording, reason: f.reason });
      default:
        return undefined; // a newer server's frame: ignored, as the protocol asks
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Media: the publishing and the receiving peer connection of the member's room.

class Media {
  constructor(call) {
    this.call = call;
    this.pub = null; // { pc, transceivers: Map source -> transceiver, queued: [], offered, chain, restarting }
    this.sub = null; // { pc, legs: Map mid -> leg, chain, candidates: [], interrupted }
    this.local = new Map(); // source -> { track, captured, published }
    this.remote = new Map(); // publication id -> { publication, stream, track, mid }
  }

  _pc() {
    return new RTCPeerConnection({ iceServers: this.call.options.iceServers, bundlePolicy: "max-bundle" });
  }

  _publisher() {
    if (this.pub) return this.pub;
    const pc = this._pc();
    const pub = { pc, transceivers: new Map(), queued: [], offered: false, chain: Promise.resolve(), interrupted: false };
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      const frame = { type: "ice_candidate", connection: "publish", candidate: candidateFrame(e.candidate) };
      if (pub.offered) this.call._sendSoon(frame);
      else pub.queued.push(frame);
    };
    pc.onconnectionstatechange = () => this._watch("publish", pub);
    this.pub = pub;
    return pub;
  }

  _watch(connection, side) {
    const state = side.pc.connectionState;
    if (state === "failed" && !side.interrupted) {
      side.interrupted = true;
      this.call._sendSoon({ type: "media_interrupted", connection });
      this.call._emit({ type: "media", kind: "interrupted", connection });
      if (connection === "publish") this.restartPublish();
      this._retry(connection, side);
    } else if (state === "connected") {
      this._restored(connection, side);
    }
  }

  _restored(connection, side) {
    if (!side.interrupted) return;
    side.interrupted = false;
    clearInterval(side.retry);
    side.retry = null;
    this.call._emit({ type: "media", kind: "restored", connection });
  }

  /** While `side` stays down, asks again every 5 s: an ICE restart (publish), or the server's
   * (subscribe). It stops once connected, or when the server gives the connection up. */
  _retry(connection, side) {
    if (side.retry) return;
    side.retry = setInterval(() => {
      const current = connection === "publish" ? this.pub : this.sub;
      if (current !== side || side.pc.connectionState === "closed") {
        clearInterval(side.retry);
        return;
      }
      if (side.pc.connectionState === "connected") return this._restored(connection, side);
      if (connection === "publish") this.restartPublish();
      else this.call._sendSoon({ type: "media_interrupted", connection });
    }, 5000);
  }

  capture(source, get) {
    const call = this.call;
    const op = call._op("publish");
    (async () => {
      let stream;
      try {
        stream = await get();
      } catch (e) {
        call._fail(op, "device_failed", `${source}: ${e?.message ?? e}`, e);
        return;
      }
      const track = stream.getTracks()[0];
      if (!call._pending.has(op)) {
        track.stop(); // the call closed while the browser asked for the device
        return;
      }
      if (source === "screen") track.addEventListener("ended", () => { if (this.local.get("screen")?.track === track) this.unpublish("screen"); });
      this._publishOn(op, source, track, true);
    })();
    return op;
  }

  publish(source, track, captured) {
    const op = this.call._op("publish");
    this._publishOn(op, source, track, captured);
    return op;
  }

  /** Publishes a source kept from before a rejoin, as it was (captured or not, muted or not). */
  republish(local) {
    const op = this.call._op("publish");
    this._publishOn(op, local.source, local.track, local.captured, local.muted);
    return op;
  }

  _publishOn(op, source, track, captured, muted = false) {
    const call = this.call;
    const refuse = (code, message) => {
      if (captured && track) track.stop(); // a device opened for nothing is closed again
      call._fail(op, code, message);
    };
    if (!SOURCES[source]) return refuse("unknown_source", `no source ${source}`);
    if (!track || track.kind !== SOURCES[source]) return refuse("unknown_source", `${source} takes a ${SOURCES[source]} track`);
    if (!call._room || !call._pending.has(op)) return refuse("not_in_room", "publish needs a room");
    let pub;
    try {
      pub = this._publisher();
    } catch (e) { // no RTCPeerConnection in this browser
      return refuse("media_failed", `this browser cannot send media (${e?.message ?? e})`);
    }
    this.local.set(source, { track, captured, muted });
    pub.chain = pub.chain.then(async () => {
      try {
        // A source muted before a rejoin is published muted again. The server publishes a
        // track once its media arrives, so until then the sender carries a disabled copy
        // (silence, black frames: nothing of the device), then nothing.
        let sending = track;
        if (muted) {
          sending = track.clone();
          sending.enabled = false;
          const local = this.local.get(source);
          if (local) { local.standIn = sending; local.muteWhenPublished = true; }
        }
        let t = pub.transceivers.get(source);
        if (t && t.currentDirection !== "stopped") await t.sender.replaceTrack(sending);
        else {
          t = pub.pc.addTransceiver(sending, { direction: "sendonly", streams: [new MediaStream([track])] });
          pub.transceivers.set(source, t);
        }
        // Refused (`screen_share_busy`, …) or failed: the source is not published. Its line
        // is stopped (a later offer without `source`, an ICE restart, would ask for it again),
        // and a device the call opened for it is closed — before the outcome settles.
        let withdrawn = false;
        const withdraw = () => {
          if (pub.transceivers.get(source) !== t || this.local.get(source)?.track !== track) return;
          withdrawn = true;
          pub.transceivers.delete(source);
          this.local.delete(source);
          t.sender.replaceTrack(null).catch(() => {});
          if (captured) track.stop();
        };
        const p = call._pending.get(op);
        if (p) p.onRefused = withdraw;
        try {
          await this._negotiatePublish(op, { source });
        } catch (e) {
          withdraw();
          // The line stays, sending nothing (a stopped transceiver that was never negotiated
          // confuses Chromium's next offer).
          if (withdrawn) t.direction = "inactive";
          throw e;
        }
      } catch (e) {
        if (call._pending.has(op)) call._fail(op, e.code ?? "media_failed", String(e?.message ?? e));
      }
    });
    return op;
  }

  /** Sends the publishing connection's offer as operation `op` and applies the answer. */
  async _negotiatePublish(op, extra, iceRestart = false) {
    const call = this.call;
    const pub = this.pub;
    const offer = await pub.pc.createOffer(iceRestart ? { iceRestart: true } : {});
    await pub.pc.setLocalDescription(offer);
    const byMid = new Map();
    for (const [source, t] of pub.transceivers) if (t.mid != null) byMid.set(t.mid, source);
    const sdp = renameTracks(pub.pc.localDescription.sdp, byMid);
    const p = call._pending.get(op);
    if (!p) return;
    const answered = new Promise((resolve) => { p.waitAnswer = resolve; });
    const failed = new Promise((_, reject) => {
      p.onError = (e) => { p.onRefused?.(); reject(e); };
    });
    failed.catch(() => {});
    call._sendOp(op, { type: "publish_offer", op, sdp, ...extra });
    if (!pub.offered) {
      pub.offered = true;
      for (const frame of pub.queued.splice(0)) call._sendSoon(frame);
    }
    let answer;
    try {
      answer = await Promise.race([answered, failed]);
    } catch (e) {
      // Refused: the local offer stays unanswered; roll back so the next offer starts clean.
      try { await pub.pc.setLocalDescription({ type: "rollback" }); } catch { /* */ }
      throw e;
    }
    await pub.pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    p.waitAnswer = null;
    call._answer(op, undefined);
  }

  onPublishAnswer(f) {
    const p = this.call._pending.get(f.op);
    if (p?.waitAnswer) p.waitAnswer(f);
  }

  /** An ICE restart of the publishing connection (after it failed, or the server said so). */
  restartPublish() {
    const pub = this.pub;
    if (!pub || pub.restarting) return;
    pub.restarting = true;
    pub.chain = pub.chain.then(async () => {
      const op = this.call._op("negotiate");
      this.call._pending.get(op).silent = true;
      try {
        await this._negotiatePublish(op, {}, true);
        if (pub.pc.connectionState === "connected") this._restored("publish", pub);
      } catch (e) {
        if (this.call._pending.has(op)) this.call._fail(op, e.code ?? "media_failed", String(e?.message ?? e));
      } finally {
        pub.restarting = false;
      }
    });
  }

  unpublish(source) {
    const call = this.call;
    // Taken now: the room's `track_unpublished` comes before the answer and forgets it.
    const local = this.local.get(source);
    return call._request({ type: "unpublish", source }, {
      onDone: () => {
        if (this.local.get(source) === local) this.local.delete(source);
        const t = this.pub?.transceivers.get(source);
        if (t && !this.local.has(source)) t.sender.replaceTrack(null).catch(() => {});
        if (local?.captured && this.local.get(source)?.track !== local.track) local.track.stop();
      },
    });
  }

  mute(source, muted) {
    const call = this.call;
    const local = this.local.get(source);
    const t = this.pub?.transceivers.get(source);
    const before = local?.muted;
    // At once (a muted source sends nothing from the moment it is asked), and put back if the
    // server refuses (`no_such_track`: the source is not in the room yet, or any more).
    // A source someone else muted (`held`) stays silent until the server applies the unmute.
    if (local && t) {
      local.muted = muted;
      t.sender.replaceTrack(muted || local.held ? null : local.track).catch(() => {});
    }
    return call._request({ type: "mute", source, muted }, {
      onError: () => {
        if (!local || !t || this.local.get(source) !== local || local.muted !== muted) return;
        local.muted = before;
        t.sender.replaceTrack(before || local.held ? null : local.track).catch(() => {});
      },
    });
  }

  /**
   * Someone else muted this member's `source` (`held`): stop sending it until the server says
   * it is unmuted (`held` false: this member's own unmute, applied), then send it again unless
   * this member muted it itself meanwhile.
   */
  hold(source, held) {
    const local = this.local.get(source);
    if (!local || !!local.held === held) return;
    local.held = held;
    const sending = !held && !local.muted;
    this.pub?.transceivers.get(source)?.sender.replaceTrack(sending ? local.track : null).catch(() => {});
  }

  /** A publication of this member is in the room now. */
  published(publication) {
    if (publication.participant !== this.call.userId) return;
    const local = this.local.get(publication.source);
    if (local?.muteWhenPublished) {
      local.muteWhenPublished = false;
      this.pub?.transceivers.get(publication.source)?.sender.replaceTrack(null).catch(() => {});
      local.standIn?.stop();
      local.standIn = null;
      this.call._request({ type: "mute", source: publication.source, muted: true });
    }
  }

  /** A publication of this member ended on the server's side. */
  unpublished(publication) {
    if (publication.participant !== this.call.userId) return;
    const local = this.local.get(publication.source);
    if (!local) return;
    // Unpublished (by this call, or a lost connection): a track the call captured is stopped,
    // one the application gave stays the application's.
    this.local.delete(publication.source);
    if (local.captured) local.track.stop();
    const t = this.pub?.transceivers.get(publication.source);
    if (t) t.sender.replaceTrack(null).catch(() => {});
  }

  _subscriber() {
    if (this.sub) return this.sub;
    const pc = this._pc();
    const sub = { pc, legs: new Map(), chain: Promise.resolve(), candidates: [], described: false, interrupted: false };
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      this.call._sendSoon({ type: "ice_candidate", connection: "subscribe", candidate: candidateFrame(e.candidate) });
    };
    pc.ontrack = (e) => this._onTrack(sub, e);
    pc.onconnectionstatechange = () => this._watch("subscribe", sub);
    this.sub = sub;
    return sub;
  }

  _onTrack(sub, e) {
    const mid = e.transceiver?.mid;
    const leg = sub.legs.get(mid);
    if (!leg || leg.announced) return;
    leg.announced = true;
    const publication = this.call._room?.publications.get(leg.publication) ?? { id: leg.publication, participant: leg.participant, source: leg.publication.split("/")[1], kind: e.track.kind, muted: false };
    const stream = new MediaStream([e.track]);
    const remote = { publication, stream, track: e.track, mid };
    this.remote.set(leg.publication, remote);
    this.call._emit({ type: "media", kind: "subscribed", publication, stream, track: e.track });
  }

  onSubscribeOffer(f) {
    const sub = this._subscriber();
    sub.chain = sub.chain.then(async () => {
      const call = this.call;
      if (sub !== this.sub) return;
      // Which publication each media line carries: `a=msid:<publisher> <publication>#<n>`.
      const ended = [];
      for (const s of sections(f.sdp)) {
        const leg = sub.legs.get(s.mid);
        const active = s.direction === "sendonly" && s.track;
        if (active && !leg) {
          const hash = s.track.lastIndexOf("#");
          sub.legs.set(s.mid, { mid: s.mid, publication: hash > 0 ? s.track.slice(0, hash) : s.track, participant: s.stream, active: true, announced: false });
        } else if (!active && leg?.active) {
          leg.active = false;
          ended.push(leg);
        }
      }
      const op = call._op("negotiate");
      const pending = call._pending.get(op);
      pending.silent = true;
      pending.onError = (e) => call._emit({ type: "media", kind: "failed", connection: "subscribe", publication: null, message: e.message });
      try {
        await sub.pc.setRemoteDescription({ type: "offer", sdp: f.sdp });
        sub.described = true;
        for (const c of sub.candidates.splice(0)) await sub.pc.addIceCandidate(c).catch(() => {});
        const answer = await sub.pc.createAnswer();
        // Be the DTLS server (`passive`): the server then starts the handshake once its ICE is
        // ready. A browser that takes `active` sends its first DTLS packet before that, loses
        // it, and waits for its retransmission timer (~1.6 s to the first frame; docs/protocol.md).
        await sub.pc.setLocalDescription({ type: "answer", sdp: answer.sdp.replace(/^a=setup:active/gm, "a=setup:passive") });
        call._sendOp(op, { type: "subscribe_answer", op, negotiation: f.negotiation, sdp: sub.pc.localDescription.sdp });
        if (sub.pc.connectionState === "connected") this._restored("subscribe", sub);
      } catch (e) {
        call._fail(op, "media_failed", String(e?.message ?? e));
        call._emit({ type: "media", kind: "failed", connection: "subscribe", publication: null, message: String(e?.message ?? e) });
      }
      for (const leg of ended) this._endRemote(leg.publication, leg.mid);
    });
  }

  /** The remote track of publication `id` ended (only if it is the one of line `mid`, if given:
   * the same publication may have come back on a new line in the same offer). */
  _endRemote(id, mid) {
    const remote = this.remote.get(id);
    if (!remote || (mid != null && remote.mid !== mid)) return;
    this.remote.delete(id);
    this.call._emit({ type: "media", kind: "unsubscribed", publication: remote.publication });
  }

  onCandidate(f) {
    const side = f.connection === "publish" ? this.pub : this.sub;
    if (!side) return;
    const init = candidateInit(f.candidate);
    if (f.connection === "subscribe" && !side.described) side.candidates.push(init);
    else side.pc.addIceCandidate(init).catch(() => {});
  }

  onInterrupted(f) {
    const side = f.connection === "publish" ? this.pub : this.sub;
    if (!side) return;
    if (!side.interrupted) {
      side.interrupted = true;
      this.call._emit({ type: "media", kind: "interrupted", connection: f.connection });
    }
    if (f.connection === "publish") this.restartPublish();
    // The browser's side may never have left `connected`: the retry timer sees it restored.
    this._retry(f.connection, side);
  }

  onLost(f) {
    this.call._emit({ type: "media", kind: "failed", connection: f.connection, publication: null, message: f.message ?? "lost" });
    const side = f.connection === "publish" ? this.pub : this.sub;
    if (side) clearInterval(side.retry);
    if (f.connection === "publish") {
      if (this.pub) this.pub.pc.close();
      this.pub = null;
      // The publications ended (the room hears track_unpublished with reason network), and so
      // do the tracks the call captured; publish again to go on.
      for (const local of this.local.values()) if (local.captured) local.track.stop();
      this.local.clear();
    } else {
      if (this.sub) this.sub.pc.close();
      this.sub = null;
      for (const id of [...this.remote.keys()]) this._endRemote(id);
    }
  }

  remoteOf(id) {
    const r = this.remote.get(id);
    return r ? { publication: r.publication, stream: r.stream, track: r.track } : null;
  }

  remotes() {
    return [...this.remote.values()].map((r) => ({ publication: r.publication, stream: r.stream, track: r.track }));
  }

  /**
   * The member left its room (or its session is over): both peer connections end. With
   * `keep`, the local tracks are kept and returned (`[source, track]`) to publish again.
   */
  leaveRoom(keep = false) {
    const kept = [];
    for (const [source, local] of this.local) {
      if (keep) kept.push({ source, ...local });
      else if (local.captured) local.track.stop();
    }
    this.local.clear();
    for (const id of [...this.remote.keys()]) this._endRemote(id);
    for (const side of [this.pub, this.sub]) {
      if (!side) continue;
      clearInterval(side.retry);
      side.pc.close();
    }
    this.pub = null;
    this.sub = null;
    this.call._outbox = [];
    return kept;
  }

  close() {
    this.leaveRoom();
  }

  async stats() {
    const inbound = [];
    const outbound = [];
    if (this.sub) {
      const byMid = new Map([...this.sub.legs].map(([mid, leg]) => [mid, leg.publication]));
      for (const s of (await this.sub.pc.getStats()).values()) {
        if (s.type !== "inbound-rtp") continue;
        inbound.push({
          publication: byMid.get(s.mid) ?? null, kind: s.kind, packets: s.packetsReceived ?? 0,
          bytes: s.bytesReceived ?? 0, framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0,
          framesReceived: s.framesReceived ?? 0, keyFramesDecoded: s.keyFramesDecoded ?? 0,
          pliSent: s.pliCount ?? 0, nackSent: s.nackCount ?? 0,
        });
      }
    }
    if (this.pub) {
      const byMid = new Map([...this.pub.transceivers].map(([source, t]) => [t.mid, source]));
      for (const s of (await this.pub.pc.getStats()).values()) {
        if (s.type !== "outbound-rtp") continue;
        outbound.push({
          source: byMid.get(s.mid) ?? null, kind: s.kind, packets: s.packetsSent ?? 0,
          bytes: s.bytesSent ?? 0, framesEncoded: s.framesEncoded ?? 0,
        });
      }
    }
    return { inbound, outbound };
  }
}

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
// This file is the entry point and the shell: the socket, its timers (ping, silence,
// reconnecting, token refresh), the outcomes' promises and the event streams. What the protocol
// asks of a client (dedupe by `n` and `seq`, pending requests, the room view, resume, resync,
// rejoin) is the pure core in jrtc/session.js; the peer connections are jrtc/media.js. The
// modules beside it are fetched relative to this file (`/jrtc/session.js`, …).
//
// Types: jrtc.d.ts beside this file.

import { CallError } from "./jrtc/errors.js";
import { Subscription } from "./jrtc/events.js";
import { Media } from "./jrtc/media.js";
import { PROTOCOL_VERSION, SOURCES, Session } from "./jrtc/session.js";
import { statistics } from "./jrtc/statistics.js";

export { CallError, PROTOCOL_VERSION, SOURCES };
export { renameTracks } from "./jrtc/sdp.js";

const DEFAULTS = Object.freeze({
  pingIntervalMs: 2500,
  idleTimeoutMs: 7500,
  reconnect: true,
  reconnectForMs: 60000,
  eventCapacity: 4096,
  iceServers: [],
  simulcast: "auto",
  refreshToken: null,
  WebSocket: null,
});

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // an outcome nobody awaits is not an unhandled rejection
  return { promise, resolve, reject, settled: false };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One logged-in user: a session on a jrtc server that survives network faults.
 * Made with `Call.connect(url, token, options)`.
 */
export class Call {
  constructor(url, token, options) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this._WS = this.options.WebSocket ?? globalThis.WebSocket;
    this._core = new Session({ token, reconnect: this.options.reconnect });
    this._outcomes = new Map(); // op -> deferred
    this._settled = []; // ops settled, oldest first (their outcomes are kept for a while)
    this._hooks = new Map(); // op -> what the media side does with its answer (onDone, onError, …)
    this._causes = new Map(); // op -> the browser's own error behind a client-side failure
    this._kept = []; // local tracks kept through a lost session, to publish again
    this._subscriptions = new Set();
    this._closedEvent = null;
    this._ws = null;
    this._lastFrameAt = Date.now();
    this._lastPingAt = 0;
    this._timers = [];
    this._expiresAt = null;
    this._refreshTimer = null;
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
    return this._core.state;
  }

  /** The user id the server gave this session (from `welcome`). */
  get userId() {
    return this._core.userId;
  }

  /** The server's session id (for logs). */
  get session() {
    return this._core.sessionId;
  }

  get _closed() {
    return this._core.state === "closed";
  }

  /** The room this call is in now (a copy), or null. */
  room() {
    return this._core.roomView();
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
    if (this._closedEvent) sub.push(this._closedEvent);
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
    if (ev.type === "closed") {
      this._closedEvent = ev;
      this._subscriptions.clear();
    }
  }

  /**
   * The outcome of operation `op`: resolves with its result (the room snapshot for a join, the
   * report for an invite, the bans for `listBans`, `{seq}` for a group message, else
   * undefined), or rejects with a `CallError`.
   */
  outcome(op) {
    let d = this._outcomes.get(op);
    if (!d && this._core.isPending(op)) {
      // An operation of the core's own (the join again after a lost session).
      d = deferred();
      this._outcomes.set(op, d);
    }
    if (!d) {
      if (op >= this._core.nextOp) return Promise.reject(new CallError("invalid_param", `no operation ${op}`, op));
      return Promise.reject(new CallError("invalid_param", `operation ${op} was settled too long ago`, op));
    }
    return d.promise;
  }

  // -- carrying out what the core decided -------------------------------------------------

  /** Does what the core returned, in its order: sends, events, outcomes, effects. */
  _apply(out) {
    for (const a of out.actions) {
      if (a.send) this._send(a.send);
      else if (a.event) this._emit(a.event);
      else if (a.outcome) this._settle(a.outcome, a.answered);
      else if (a.effect) this._effect(a.effect);
    }
  }

  _effect(e) {
    switch (e.effect) {
      case "expires": return this._scheduleRefresh(e.at);
      case "reconnect":
        // Abandon the socket without a close frame: a close frame would end the session.
        this._detach();
        this._reconnect();
        return;
      case "closed":
        for (const t of this._timers) clearInterval(t);
        clearTimeout(this._refreshTimer);
        this._detach();
        this._media.close();
        for (const local of this._kept.splice(0)) if (local.captured) local.track.stop();
        return;
      case "leave_room": {
        const kept = this._media.leaveRoom(e.keep);
        if (e.keep) this._kept.push(...kept);
        return;
      }
      case "rejoined": {
        const kept = this._kept.splice(0);
        for (const local of kept) this._media.republish(local);
        return;
      }
      case "rejoin_failed":
        for (const local of this._kept.splice(0)) if (local.captured) local.track.stop();
        return;
      case "media": return this._media.onFrame(e.frame);
      case "published": return this._media.published(e.publication);
      case "unpublished": return this._media.unpublished(e.publication);
      case "hold": return this._media.hold(e.source, e.held);
      case "warn": return console.warn(`jrtc: ${e.message}`);
      default: return undefined; // "refused": read by the handshake
    }
  }

  /** Settles an operation's promise (an outcome event, if any, is the core's). */
  _settle(o, answered) {
    let d = this._outcomes.get(o.op);
    if (!d) { // an operation of the core's own (a join again after a lost session)
      d = deferred();
      this._outcomes.set(o.op, d);
    }
    const hooks = this._hooks.get(o.op);
    this._hooks.delete(o.op);
    let error = null;
    if (o.error) {
      error = new CallError(o.error.code, o.error.message, o.op, o.kind ?? null);
      if (this._causes.has(o.op)) error.cause = this._causes.get(o.op); // a device's DOMException (`NotAllowedError`, …)
      if (answered) hooks?.onError?.(error);
    } else if (answered) {
      hooks?.onDone?.();
    }
    this._causes.delete(o.op);
    if (d.settled) return;
    d.settled = true;
    if (error) d.reject(error);
    else d.resolve(o.ok ?? undefined);
    this._settled.push(o.op);
    while (this._settled.length > 1024) this._outcomes.delete(this._settled.shift());
  }

  // -- requests ---------------------------------------------------------------------------

  /** Reserves an operation id of `kind` (its frame is sent later with `_sendOp`). */
  _op(kind) {
    const { op, out } = this._core.reserve(kind);
    this._outcomes.set(op, deferred());
    this._apply(out);
    return op;
  }

  /** Sends request `frame` (its `type` first) with a new op id; returns the id. `hooks`:
   * `onDone` / `onError`, called with the server's answer before the outcome settles. */
  _request(frame, hooks) {
    const { op, out } = this._core.request(frame);
    this._outcomes.set(op, deferred());
    if (hooks && this._core.isPending(op)) this._hooks.set(op, hooks);
    this._apply(out);
    return op;
  }

  /** Whether operation `op` still waits for its answer. */
  _isPending(op) {
    return this._core.isPending(op);
  }

  /** The media side's hooks of pending operation `op` (a throwaway object for any other). */
  _hooksOf(op) {
    if (!this._core.isPending(op)) return {};
    let h = this._hooks.get(op);
    if (!h) this._hooks.set(op, (h = {}));
    return h;
  }

  _sendOp(op, frame) {
    this._apply(this._core.send(op, frame));
  }

  /** Settles reserved operation `op` as a success (a publish, once its answer is applied). */
  _answer(op, value) {
    this._apply(this._core.answer(op, value ?? null));
  }

  /** Fails an operation on the client's side (it never reached the server, or cannot go on). */
  _fail(op, code, message, cause) {
    if (!this._core.isPending(op)) return;
    if (cause !== undefined) this._causes.set(op, cause);
    this._apply(this._core.fail(op, code, message));
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(frame));
  }

  /** Sends a frame that is no request (a candidate, a media notice) now, or once connected again. */
  _sendSoon(frame) {
    this._apply(this._core.notify(frame));
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
  refresh(token) { return this._request({ type: "refresh", token }); }
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
  /**
   * Asks for a remote video (`"alice/camera"`) at most `{width, height}` pixels: the server
   * forwards the largest simulcast layer that fits (the smallest when none does) and switches
   * at its next key frame. Holds until the next request for it; `{width: 16384, height: 16384}`
   * asks for the largest layer again.
   */
  requestVideo(publication, { width, height }) {
    return this._request({ type: "request_video", publication, width, height });
  }
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
  /**
   * What the call's media did, from its peer connections' own counters (the shape of the Rust
   * client's `CallStatistics`, docs/events.md): each published and received track's packets,
   * bytes, bitrate since the previous call of this, loss, jitter, round trip, frames, key-frame
   * and retransmission requests, simulcast layers sent; each member's net and volume status
   * with what this call receives of it; each connection.
   */
  statistics() {
    this._lastBytes ??= new Map();
    return statistics(this._media, this.userId, this.room(), this._lastBytes);
  }
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
    this._apply(this._core.finish(reason, message));
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

  /** Reads the next frame of a new connection (the answer to `hello` / `resume`). */
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
      try { this._apply(this._core.receive(frame)); } catch (e) { console.error("jrtc: a frame could not be handled", frame, e); }
    };
    ws.onclose = () => { if (this._ws === ws) this._lost("network"); };
  }

  /**
   * Logs in (or resumes) on the new connection `ws`: what the core says to send, then its
   * answer, until the session is connected (a resume refused with `unknown_session` is followed
   * by `hello` on the same connection). Throws a `CallError` (`fatal` when trying again is
   * pointless) if the server refused.
   */
  async _handshake(ws) {
    let out = this._core.open();
    for (;;) {
      const first = this._firstFrame(ws);
      this._apply(out);
      const f = await first;
      out = this._core.receive(f);
      const refused = out.effects().find((e) => e.effect === "refused");
      if (refused) {
        this._detach();
        try { ws.close(1000); } catch { /* */ }
        const error = new CallError(refused.code, refused.message);
        error.fatal = refused.fatal;
        throw error;
      }
      if (this._core.state === "connected") {
        this._live(ws);
        this._apply(out);
        return;
      }
      if (this._closed) throw new CallError("closed", "the call is closed");
    }
  }

  async _login() {
    const ws = await this._open();
    await this._handshake(ws);
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
    if (this._core.state !== "connected") return;
    const now = Date.now();
    if (now - this._lastFrameAt > this.options.idleTimeoutMs) {
      this._lost("timeout");
      return;
    }
    if (!this._lastPingAt || now - this._lastPingAt >= this.options.pingIntervalMs) {
      this._lastPingAt = now;
      this._send(this._core.ping());
    }
  }

  /** The connection is gone without a goodbye: connect again and resume the session. */
  _lost(reason) {
    if (this._closed || this._core.state === "reconnecting") return;
    // Abandon the socket without a close frame: a close frame would end the session.
    this._detach();
    this._apply(this._core.down(reason));
  }

  async _reconnect() {
    const started = Date.now();
    let wait = 100;
    while (!this._closed) {
      try {
        const ws = await this._open();
        await this._handshake(ws);
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
      if (this._closed) return;
      this._apply(this._core.retry());
    }
  }
}

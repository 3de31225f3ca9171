// jrtc/media.js — the publishing and the receiving RTCPeerConnection of the member's room.
// The call (jrtc.js) hands it the server's media frames and tells it when the member leaves its
// room; it sends through the call and emits `media` events. Part of jrtc.js (docs/browser.md).

import { kindOf } from "./session.js";
import { candidateFrame, candidateInit, renameTracks, sections } from "./sdp.js";

// A camera's simulcast layers, smallest first as the server numbers them (docs/protocol.md):
// a quarter, a half and the full size, each with a bitrate cap. A browser sends only the layers
// its camera is large enough for (Chromium: three from 960×540 up, two at 640×360).
const SIMULCAST = Object.freeze([
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]);

/**
 * Whether to publish the camera with simulcast: `true`, `false`, or `"auto"` (the default): on,
 * but for Firefox, whose simulcast no test of ours covers yet (with it on, Firefox's screen
 * capture failed now and then in the Firefox test: its user-activation check, under the load of
 * three more encoders on a 2-core machine). `simulcast: true` turns it on there too.
 */
function simulcastOn(option) {
  if (option !== "auto") return !!option;
  return !/Firefox\//.test(globalThis.navigator?.userAgent ?? "");
}

export class Media {
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
      if (!call._isPending(op)) {
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
    const kind = kindOf(source);
    if (!kind) return refuse("unknown_source", `no source ${source}`);
    if (!track || track.kind !== kind) return refuse("unknown_source", `${source} takes a ${kind} track`);
    if (!call._core.inRoom() || !call._isPending(op)) return refuse("not_in_room", "publish needs a room");
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
          const init = { direction: "sendonly", streams: [new MediaStream([track])] };
          if (source === "camera" && simulcastOn(call.options.simulcast)) init.sendEncodings = SIMULCAST;
          t = pub.pc.addTransceiver(sending, init);
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
        call._hooksOf(op).onRefused = withdraw;
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
        if (call._isPending(op)) call._fail(op, e.code ?? "media_failed", String(e?.message ?? e));
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
    if (!call._isPending(op)) return;
    const p = call._hooksOf(op);
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

  /** A media frame from the server (the call's core passes them on). */
  onFrame(f) {
    switch (f.type) {
      case "publish_answer": return this.onPublishAnswer(f);
      case "subscribe_offer": return this.onSubscribeOffer(f);
      case "ice_candidate": return this.onCandidate(f);
      case "media_interrupted": return this.onInterrupted(f);
      case "media_lost": return this.onLost(f);
      case "publish_layers": return this.onLayers(f);
      default: return undefined;
    }
  }

  /** Dynacast: send only the simulcast layers somebody receives (`f.rids`), pause the rest. */
  onLayers(f) {
    this.call._emit({ type: "media", kind: "layers_wanted", source: f.source, layers: f.rids.length });
    const t = this.pub?.transceivers.get(f.source);
    if (!t) return;
    this.pub.chain = this.pub.chain.then(async () => {
      const params = t.sender.getParameters();
      if (!params.encodings?.some((e) => e.rid)) return;
      let changed = false;
      for (const e of params.encodings) {
        const active = f.rids.includes(e.rid);
        changed ||= e.active !== active;
        e.active = active;
      }
      if (changed) await t.sender.setParameters(params).catch(() => {});
    });
  }

  onPublishAnswer(f) {
    this.call._hooks.get(f.op)?.waitAnswer?.(f);
  }

  /** An ICE restart of the publishing connection (after it failed, or the server said so). */
  restartPublish() {
    const pub = this.pub;
    if (!pub || pub.restarting) return;
    pub.restarting = true;
    pub.chain = pub.chain.then(async () => {
      const op = this.call._op("negotiate");
      try {
        await this._negotiatePublish(op, {}, true);
        if (pub.pc.connectionState === "connected") this._restored("publish", pub);
      } catch (e) {
        if (this.call._isPending(op)) this.call._fail(op, e.code ?? "media_failed", String(e?.message ?? e));
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
    const publication = this.call._core.publication(leg.publication) ?? { id: leg.publication, participant: leg.participant, source: leg.publication.split("/")[1], kind: e.track.kind, muted: false };
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
      call._hooksOf(op).onError = (e) => call._emit({ type: "media", kind: "failed", connection: "subscribe", publication: null, message: e.message });
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

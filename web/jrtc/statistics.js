// jrtc/statistics.js — `call.statistics()`: what the call's two RTCPeerConnections count of each
// track (their getStats), in the shape the Rust client's `CallStatistics` has (docs/events.md,
// "The seed's statistics"). Part of jrtc.js (docs/browser.md).

const ms = (seconds) => (typeof seconds === "number" ? seconds * 1000 : null);
const max = (a, b) => (a === null ? b : b === null ? a : Math.max(a, b));
const percent = (part, whole) => (whole > 0 ? (part * 100) / whole : 0);

/** The candidate pair a stats report's transport uses (the nominated, succeeded one otherwise). */
function selectedPair(report) {
  let pair = null;
  for (const s of report.values()) {
    if (s.type === "transport" && s.selectedCandidatePairId) return report.get(s.selectedCandidatePairId) ?? null;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  }
  return pair;
}

function connectionOf(connection, pair, report) {
  const remote = pair ? report.get(pair.remoteCandidateId) : undefined;
  const host = remote?.address?.includes(":") ? `[${remote.address}]` : remote?.address;
  return {
    connection,
    rtt_ms: ms(pair?.currentRoundTripTime) ?? null,
    packets_sent: pair?.packetsSent ?? 0,
    packets_received: pair?.packetsReceived ?? 0,
    bytes_sent: pair?.bytesSent ?? 0,
    bytes_received: pair?.bytesReceived ?? 0,
    remote_address: host != null ? `${host}:${remote.port}` : null,
    protocol: remote?.protocol ?? null,
  };
}

function emptyTrack(publication, participant, source, kind, rtt) {
  return {
    publication, participant, source, kind, packets: 0, bytes: 0, bitrate_bps: 0, packets_lost: 0,
    loss_percent: 0, jitter_ms: null, rtt_ms: rtt, frames: kind === "video" ? 0 : null,
    keyframe_requests: 0, nacks: 0, layers: null, bandwidth_estimate_bps: null,
  };
}

/** Statistics of `media` (the call's Media) for user `me`, in room view `room` (or null). */
export async function statistics(media, me, room, last) {
  const out = { published: [], received: [], participants: [], connections: [] };
  if (media.pub) {
    const report = await media.pub.pc.getStats();
    const pair = selectedPair(report);
    const connection = connectionOf("publish", pair, report);
    const sourceOf = new Map([...media.pub.transceivers].map(([source, t]) => [t.mid, source]));
    const tracks = new Map();
    for (const s of report.values()) {
      if (s.type !== "outbound-rtp") continue;
      const source = sourceOf.get(s.mid);
      if (!source || !media.local.has(source)) continue;
      let t = tracks.get(source);
      if (!t) {
        t = emptyTrack(`${me}/${source}`, me, source, s.kind, connection.rtt_ms);
        t.bandwidth_estimate_bps = pair?.availableOutgoingBitrate ?? null;
        tracks.set(source, t);
      }
      t.packets += s.packetsSent ?? 0;
      t.bytes += s.bytesSent ?? 0;
      t.nacks += s.nackCount ?? 0;
      t.keyframe_requests += (s.pliCount ?? 0) + (s.firCount ?? 0);
      if (t.kind === "video") t.frames += s.framesSent ?? 0;
      if (s.rid) t.layers = (t.layers ?? 0) + (s.active === false ? 0 : 1);
      const remote = s.remoteId ? report.get(s.remoteId) : null;
      if (remote) {
        t.packets_lost += Math.max(0, remote.packetsLost ?? 0);
        t.jitter_ms = max(t.jitter_ms, ms(remote.jitter));
      }
    }
    for (const t of tracks.values()) {
      t.loss_percent = percent(t.packets_lost, t.packets);
      out.published.push(t);
    }
    out.connections.push(connection);
  }
  if (media.sub) {
    const report = await media.sub.pc.getStats();
    const connection = connectionOf("subscribe", selectedPair(report), report);
    const tracks = new Map();
    for (const s of report.values()) {
      if (s.type !== "inbound-rtp") continue;
      const leg = media.sub.legs.get(s.mid);
      if (!leg) continue;
      const remote = media.remote.get(leg.publication);
      if (!remote) continue;
      const p = remote.publication;
      let t = tracks.get(p.id);
      if (!t) {
        t = emptyTrack(p.id, p.participant, p.source, p.kind, connection.rtt_ms);
        tracks.set(p.id, t);
      }
      t.packets += s.packetsReceived ?? 0;
      t.bytes += s.bytesReceived ?? 0;
      t.packets_lost += Math.max(0, s.packetsLost ?? 0);
      t.jitter_ms = max(t.jitter_ms, ms(s.jitter));
      t.nacks += s.nackCount ?? 0;
      t.keyframe_requests += (s.pliCount ?? 0) + (s.firCount ?? 0);
      if (t.kind === "video") t.frames += s.framesReceived ?? 0;
    }
    for (const t of tracks.values()) {
      t.loss_percent = percent(t.packets_lost, t.packets + t.packets_lost);
      out.received.push(t);
    }
    out.received.sort((a, b) => (a.publication < b.publication ? -1 : 1));
    out.connections.push(connection);
  }
  // Bitrates since the previous call (0 the first time).
  const now = performance.now();
  const next = new Map();
  for (const [side, list] of [["publish", out.published], ["subscribe", out.received]]) {
    for (const t of list) {
      const key = `${side} ${t.publication}`;
      const before = last.get(key);
      if (before && now > before.at) t.bitrate_bps = Math.round(((t.bytes - before.bytes) * 8 * 1000) / (now - before.at));
      next.set(key, { at: now, bytes: t.bytes });
    }
  }
  last.clear();
  for (const [k, v] of next) last.set(k, v);
  for (const p of room?.participants ?? []) {
    const theirs = out.received.filter((t) => t.participant === p.user_id);
    out.participants.push({
      user_id: p.user_id, net: p.net ?? "very_good", volume: p.volume ?? "none", tracks: theirs.length,
      bitrate_bps: theirs.reduce((sum, t) => sum + t.bitrate_bps, 0),
      packets_lost: theirs.reduce((sum, t) => sum + t.packets_lost, 0),
    });
  }
  return out;
}

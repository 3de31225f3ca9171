// jrtc/sdp.js — the few facts the browser client needs from a session description (media
// sections, their mid, direction and msid), the rewrite of a publishing offer's track ids into
// source names (a browser cannot choose a MediaStreamTrack's id), and ICE candidates between the
// browser's shape and the wire's. Pure functions; part of jrtc.js (docs/browser.md).

export function sections(sdp) {
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

export function candidateFrame(candidate) {
  const c = { candidate: candidate.candidate };
  if (candidate.sdpMid != null) c.sdp_mid = candidate.sdpMid;
  if (candidate.sdpMLineIndex != null) c.sdp_mline_index = candidate.sdpMLineIndex;
  if (candidate.usernameFragment != null) c.username_fragment = candidate.usernameFragment;
  return c;
}

export function candidateInit(c) {
  return {
    candidate: c.candidate,
    sdpMid: c.sdp_mid ?? null,
    sdpMLineIndex: c.sdp_mline_index ?? null,
    usernameFragment: c.username_fragment ?? null,
  };
}

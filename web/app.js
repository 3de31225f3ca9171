// The call page: join a room by name, a video grid, the participant list, chat, screen share,
// invitations and host actions — all through jrtc.js, as an application would use it.
import { Call } from "/jrtc.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const signalUrl = params.get("signal") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/signal`;

const page = {
  call: null,
  userId: null,
  name: "",
  tiles: new Map(), // tile key (user id, or "user@screen") -> element
  remote: new Map(), // publication id -> MediaStream
  unread: 0,
  devTokens: true,
  own: new Set(), // operations whose failure the page reports itself (not again as "completed")
  speaking: new Set(), // user ids the server says speak now
};

// -- tokens -----------------------------------------------------------------------------------

async function devToken(name, userId) {
  const body = userId ? { name, user_id: userId } : { name };
  const response = await fetch("/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (response.status === 404) return null;
  const json = await response.json();
  if (!response.ok) throw new Error(json.message ?? "no token");
  return json;
}

// A token from the application's backend, in the fragment (`/#token=…`, which the browser never
// sends to a server): taken, and taken out of the address bar and the history at once.
const fragmentToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (fragmentToken) history.replaceState(null, "", location.pathname + location.search);

// Whether this server mints tokens for the page (development mode); if not, ask for one.
fetch("/dev/token").then((r) => {
  if (r.status === 404 && !fragmentToken) $("#token-field").classList.remove("hidden");
}, () => {});

async function tokenFor(name) {
  const pasted = $("#token").value.trim() || fragmentToken;
  if (pasted) {
    page.devTokens = false; // the backend's token: the page cannot refresh it
    return pasted;
  }
  const minted = await devToken(name);
  if (!minted) {
    page.devTokens = false;
    $("#token-field").classList.remove("hidden");
    throw new Error("This server makes no tokens (it is not in development mode): paste a token.");
  }
  page.userId = minted.user_id;
  return minted.token;
}

// -- joining ----------------------------------------------------------------------------------

$("#room").value = params.get("room") ?? localStorage.getItem("jrtc.room") ?? "";
$("#name").value = params.get("name") ?? localStorage.getItem("jrtc.name") ?? "";

$("#join-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const room = $("#room").value.trim();
  const name = $("#name").value.trim();
  $("#join-error").textContent = "";
  $("#join").disabled = true;
  try {
    localStorage.setItem("jrtc.room", room);
    localStorage.setItem("jrtc.name", name);
    page.name = name;
    // After a call, the session stays connected (invitations still reach the lobby): join
    // again on it.
    let call = page.call;
    if (!call || call.state === "closed") {
      const token = await tokenFor(name);
      const refreshToken = page.devTokens ? async () => (await devToken(name, page.call.userId)).token : null;
      call = await Call.connect(signalUrl, token, { refreshToken });
      page.call = call;
      page.userId = call.userId;
      listen(call);
    }
    // A browser without WebRTC can still be in the call, to chat: it asks for no media.
    const media = canDoMedia();
    await call.outcome(call.join(room, media ? { displayName: name } : { displayName: name, autoSubscribe: false }));
    if (!media) notice("This browser cannot send or receive audio or video (it has no WebRTC): you can chat, but not see or hear anyone.");
    else publishDevices([$("#with-camera").checked && "camera", $("#with-mic").checked && "microphone"].filter(Boolean));
  } catch (err) {
    $("#join-error").textContent = errorText(err);
  } finally {
    $("#join").disabled = false;
  }
});

/** Whether this browser can send and receive media (WebRTC). */
function canDoMedia() {
  return typeof window.RTCPeerConnection === "function";
}

function enterCall(snapshot) {
  const media = canDoMedia();
  for (const id of ["#toggle-mic", "#toggle-camera", "#toggle-screen"]) $(id).disabled = !media;
  if (media) notice(null);
  $("#lobby").classList.add("hidden");
  $("#call").classList.remove("hidden");
  $("#room-title").textContent = snapshot.room;
  history.replaceState(null, "", `?room=${encodeURIComponent(snapshot.room)}${params.get("signal") ? `&signal=${encodeURIComponent(signalUrl)}` : ""}`);
  render();
}

function backToLobby(text) {
  for (const tile of page.tiles.values()) tile.remove();
  page.tiles.clear();
  page.remote.clear();
  $("#chat-list").replaceChildren();
  $("#call").classList.add("hidden");
  $("#lobby").classList.remove("hidden");
  $("#room-title").textContent = "";
  $("#recording").classList.add("hidden");
  openPanel(false);
  notice(null);
  status("");
  if (text) toast(text);
}

/** Publishes the camera and/or the microphone; what failed is told in one notice. */
async function publishDevices(sources) {
  const call = page.call;
  const failed = (await Promise.all(sources.map(async (source) => {
    try {
      const op = source === "camera" ? call.publishCamera() : call.publishMicrophone();
      page.own.add(op);
      await call.outcome(op);
      return null;
    } catch (err) {
      return { source, err };
    }
  }))).filter(Boolean);
  if (failed.length) toast(deviceText(failed), [], 10000);
  render();
}

async function publishScreen() {
  const call = page.call;
  try {
    const op = call.publishScreen();
    page.own.add(op);
    await call.outcome(op);
  } catch (err) {
    // Cancelling the browser's picker is no failure.
    if (err.code === "device_failed" && err.cause?.name === "NotAllowedError") return;
    toast(`Your screen is not shared: ${stripSource(errorText(err), "screen")}`);
  }
  render();
}

/** What went wrong with a device (a DOMException's name from getUserMedia, kept by jrtc.js). */
function deviceProblem(err) {
  if (err.code !== "device_failed") return "other";
  if (!navigator.mediaDevices?.getUserMedia) return "unavailable"; // not a secure context (https)
  const name = err.cause?.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "blocked";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "other";
}

/** One human sentence (or a few) for the devices that failed: [{source, err}]. */
function deviceText(failed) {
  const byProblem = new Map();
  for (const f of failed) {
    const problem = deviceProblem(f.err);
    byProblem.set(problem, [...(byProblem.get(problem) ?? []), f]);
  }
  const sentences = [];
  for (const [problem, list] of byProblem) {
    const both = list.length > 1;
    const camera = !both && list[0].source === "camera";
    const The = both ? "Camera and microphone" : camera ? "The camera" : "The microphone";
    if (problem === "blocked") {
      sentences.push(both
        ? "Camera and microphone are blocked — allow them in the browser to be seen and heard."
        : `${The} is blocked — allow it in the browser to be ${camera ? "seen" : "heard"}.`);
    } else if (problem === "missing") {
      sentences.push(both ? "No camera or microphone was found." : `No ${camera ? "camera" : "microphone"} was found.`);
    } else if (problem === "unavailable") {
      sentences.push("This browser offers no camera or microphone to this page: open it over https.");
    } else if (problem === "busy") {
      sentences.push(`${The} ${both ? "are" : "is"} in use by another application.`);
    } else {
      for (const { source, err } of list) {
        sentences.push(`The ${source} could not start: ${stripSource(errorText(err), source)}.`);
      }
    }
  }
  return sentences.join(" ");
}

/** `message` without a leading "camera: " (jrtc.js names the device its errors are about). */
function stripSource(message, source) {
  return message.startsWith(`${source}: `) ? message.slice(source.length + 2) : message;
}

/** An error's message for people: user ids in backticks become names (ids without them). */
function errorText(err) {
  return String(err?.message ?? err ?? "").replace(/`([^`]*)`/g, (_, id) => nameOf(id));
}

// -- events -----------------------------------------------------------------------------------

const REASONS = {
  quit: "You left the call.", kicked: "A host removed you from the call.", over: "The call is over.",
  network: "The connection was lost.", recording_failed: "The call ended: its recording failed.",
  token_expired: "Your session expired.", token_revoked: "Your access was revoked.",
  server_shutdown: "The server shut down.",
};

async function listen(call) {
  for await (const ev of call.events()) {
    switch (ev.type) {
      case "participant":
        // A recorder is no person: the header says the call is recorded instead.
        if (ev.participant.role === "recorder") { render(); break; }
        if (ev.kind === "joined") toast(`${ev.participant.display_name} joined`);
        if (ev.kind === "left") toast(`${ev.participant.display_name} left${ev.reason === "kicked" ? " (removed)" : ""}`);
        render();
        break;
      case "property":
      case "rejoined":
      case "resynced":
        render();
        break;
      case "media":
        if (ev.kind === "active_speakers") {
          page.speaking = new Set(ev.speakers.map((s) => s.user_id));
          showSpeakers();
          break;
        }
        if (ev.kind === "subscribed") page.remote.set(ev.publication.id, ev.stream);
        if (ev.kind === "unsubscribed") page.remote.delete(ev.publication.id);
        if (ev.kind === "interrupted") status("media reconnecting…");
        if (ev.kind === "restored") status("");
        if (ev.kind === "muted" && ev.by && ev.publication.participant === page.userId) {
          toast(`${nameOf(ev.by)} muted your ${ev.publication.source === "microphone" ? "microphone" : ev.publication.source}`);
        }
        render();
        break;
      case "message":
        if (ev.kind === "received") chatLine(ev.message.from, ev.message.content, ev.message.scope === "one_to_one" ? "to you" : null);
        if (ev.kind === "sent" && ev.error) toast(`Not sent: ${errorText(ev.error)}`);
        break;
      case "invite":
        if (ev.kind === "received") inviteToast(ev.invitation);
        if (ev.kind === "accepted") toast(`${ev.invitation.callee_name} accepted your invitation`);
        if (ev.kind === "rejected") toast(`${ev.invitation.callee_name} did not accept (${ev.reason})`);
        if (ev.kind === "sent" && ev.report) for (const f of ev.report.failed) toast(`${nameOf(f.user_id)} was not reached (${f.reason})`);
        if (ev.kind === "sent" && ev.error) toast(`Invite failed: ${errorText(ev.error)}`);
        break;
      case "recording":
        render();
        break;
      case "completed":
        if (page.own.delete(ev.op)) break; // told where the page awaited it
        if (ev.error) toast(`${ev.kind.replace("_", " ")} failed: ${errorText(ev.error)}`);
        break;
      case "reconnecting":
        // Speakers are not replayed: nobody counts as speaking until the server says again.
        page.speaking = new Set();
        showSpeakers();
        status(`reconnecting (attempt ${ev.attempt})…`);
        break;
      case "reconnected":
        status("");
        break;
      case "joined": // a join of the form, or an accepted invitation
        if (ev.snapshot) enterCall(ev.snapshot);
        break;
      case "left":
        backToLobby(REASONS[ev.reason] ?? `You are out of the call (${ev.reason}).`);
        break;
      case "closed":
        if (!$("#call").classList.contains("hidden")) backToLobby(REASONS[ev.reason] ?? "Disconnected.");
        if (page.call === call) page.call = null;
        break;
      default:
        break;
    }
  }
}

// -- rendering --------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

/** Marks the camera tiles of those who speak now (a ring), without rebuilding the grid. */
function showSpeakers() {
  for (const tile of page.tiles.values()) {
    tile.classList.toggle("speaking", tile.dataset.source === "camera" && page.speaking.has(tile.dataset.user));
  }
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
}

function render() {
  const call = page.call;
  const room = call?.room();
  if (!room) return;
  const me = room.participants.find((p) => p.user_id === page.userId);
  const host = me?.role === "host";
  $("#end").classList.toggle("hidden", !host);
  $("#people-count").textContent = String(room.participants.filter((p) => p.role !== "recorder").length);
  const rec = room.properties.recording;
  $("#recording").classList.toggle("hidden", rec.state !== "recording" && rec.state !== "stopping");
  $("#room-title").textContent = room.room;
  renderGrid(room);
  renderPeople(room, host);
  renderControls(room);
  renderRecipients(room);
}

function publicationOf(room, userId, source) {
  return room.publications.find((p) => p.participant === userId && p.source === source);
}

function streamFor(userId, source) {
  if (userId === page.userId) {
    const track = page.call.localTrack(source);
    return track ? new MediaStream([track]) : null;
  }
  return page.remote.get(`${userId}/${source}`) ?? null;
}

/**
 * Asks the server for remote video `id` at the size its tile shows (in device pixels), so a
 * small tile gets a small simulcast layer: on each resize, at most every half second.
 */
function sizeFollowsTile(video, id) {
  let timer = null;
  let asked = "";
  const ask = () => {
    timer = null;
    const scale = globalThis.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(video.clientWidth * scale));
    const height = Math.max(1, Math.round(video.clientHeight * scale));
    const key = `${width}x${height}`;
    // Only for a video received now (asked again when it arrives, see renderGrid).
    if (key === asked || !page.call || !video.isConnected || !page.remote.has(id)) return;
    asked = key;
    const op = page.call.requestVideo(id, { width, height });
    page.own.add(op); // a refusal (the track just went) is no news for the person
  };
  video.askSize = () => { timer ??= setTimeout(ask, 500); };
  new ResizeObserver(video.askSize).observe(video);
}

function renderGrid(room) {
  const grid = $("#grid");
  const wanted = new Map();
  const share = room.properties.screen_share;
  for (const p of room.participants) {
    if (p.role === "recorder") continue;
    if (share && share.user_id === p.user_id && publicationOf(room, p.user_id, "screen")) wanted.set(`${p.user_id}@screen`, { p, source: "screen" });
    wanted.set(p.user_id, { p, source: "camera" });
    // Extra cameras and screens: a tile each.
    for (const extra of p.streams ?? []) {
      if (publicationOf(room, p.user_id, extra)) wanted.set(`${p.user_id}@${extra}`, { p, source: extra });
    }
  }
  for (const [key, tile] of page.tiles) {
    if (!wanted.has(key)) { tile.remove(); page.tiles.delete(key); }
  }
  for (const [key, { p, source }] of wanted) {
    let tile = page.tiles.get(key);
    if (!tile) {
      tile = el("figure", { class: `tile${source === "screen" ? " screen" : ""}${source.includes(".") ? " extra" : ""}`, "data-user": p.user_id, "data-source": source },
        el("video", { autoplay: true, playsinline: true, muted: p.user_id === page.userId }),
        el("div", { class: "avatar" }),
        el("figcaption", {}, el("span", { class: "who" }, el("span", { class: "bars" }, ...[1, 2, 3, 4, 5].map(() => el("i"))), el("span", { class: "name" })), el("span", { class: "flags" })));
      tile.querySelector("video").muted = p.user_id === page.userId || source === "screen";
      if (p.user_id !== page.userId) sizeFollowsTile(tile.querySelector("video"), `${p.user_id}/${source}`);
      page.tiles.set(key, tile);
      grid.append(tile);
    }
    const video = tile.querySelector("video");
    const stream = streamFor(p.user_id, source);
    const pub = publicationOf(room, p.user_id, source);
    const showing = stream && pub && !pub.muted;
    if (stream && video.srcObject?.getTracks()[0] !== stream.getTracks()[0]) {
      video.srcObject = stream;
      video.askSize?.();
    }
    if (!stream) video.srcObject = null;
    tile.classList.toggle("no-video", !showing);
    tile.classList.toggle("self", p.user_id === page.userId);
    tile.classList.toggle("reconnecting", p.connection === "reconnecting");
    tile.classList.toggle("speaking", source === "camera" && page.speaking.has(p.user_id));
    tile.querySelector(".avatar").textContent = initials(p.display_name);
    const extra = source.includes(".") ? ` · ${source.split(".")[0]} ${source.slice(source.indexOf(".") + 1)}` : "";
    tile.querySelector(".who .name").textContent = source === "screen" ? `${p.display_name}'s screen` : `${p.display_name}${p.user_id === page.userId ? " (you)" : ""}${extra}`;
    showNet(tile.querySelector(".bars"), p.net ?? "very_good");
    const flags = [];
    if (source === "camera") {
      const mic = publicationOf(room, p.user_id, "microphone");
      if (!p.audio || !mic || mic.muted) flags.push(el("span", { class: "flag muted", title: "microphone off" }, "mic off"));
      if (share?.user_id === p.user_id) flags.push(el("span", { class: "flag sharing", title: "sharing the screen" }, "sharing"));
      if (p.role === "host") flags.push(el("span", { class: "flag role" }, "host"));
    }
    tile.querySelector(".flags").replaceChildren(...flags);
    attachAudio(p.user_id);
  }
  grid.dataset.count = String(Math.min(page.tiles.size, 9));
  // With a screen shared, the cameras are a row below it: as many columns as cameras.
  const screens = [...wanted.values()].filter((w) => w.source === "screen").length;
  grid.classList.toggle("has-screen", screens > 0);
  grid.style.setProperty("--cams", String(Math.max(1, wanted.size - screens)));
  // The screen tile first, whatever the order the tiles were made in.
  for (const [key, { source }] of wanted) if (source === "screen" && grid.firstChild !== page.tiles.get(key)) grid.prepend(page.tiles.get(key));
}

/** The seed's six net statuses as signal bars (0 to 5 lit), with the status as the tooltip. */
const NET_BARS = { disconnected: 0, very_bad: 1, bad: 2, normal: 3, good: 4, very_good: 5 };
function showNet(bars, net) {
  const lit = NET_BARS[net] ?? 5;
  bars.dataset.net = net;
  bars.title = `connection: ${net.replace("_", " ")}`;
  [...bars.children].forEach((bar, i) => bar.classList.toggle("on", i < lit));
}

function attachAudio(userId) {
  if (userId === page.userId) return;
  const stream = page.remote.get(`${userId}/microphone`);
  const tile = page.tiles.get(userId);
  if (!tile) return;
  let audio = tile.querySelector("audio");
  if (!stream) { audio?.remove(); return; }
  if (!audio) { audio = el("audio", { autoplay: true }); tile.append(audio); }
  if (audio.srcObject !== stream) audio.srcObject = stream;
}

function renderPeople(room, host) {
  const list = $("#people");
  list.replaceChildren(...room.participants.filter((p) => p.role !== "recorder").map((p) => {
    const actions = [];
    if (host && p.user_id !== page.userId) {
      actions.push(el("button", { class: "small", onclick: () => page.call.setRole(p.user_id, p.role === "host" ? "guest" : "host") }, p.role === "host" ? "Make guest" : "Make host"));
      if (publicationOf(room, p.user_id, "microphone")?.muted === false) {
        actions.push(el("button", { class: "small", onclick: () => page.call.muteMember(p.user_id, "microphone") }, "Mute"));
      }
      actions.push(el("button", { class: "small danger", onclick: () => page.call.kick(p.user_id) }, "Remove"));
    }
    if (p.user_id !== page.userId) {
      actions.push(el("button", { class: "small", onclick: () => { $("#chat-to").value = p.user_id; showTab("chat"); $("#chat-input").focus(); } }, "Message"));
    }
    return el("li", { "data-user": p.user_id, class: actions.length === 1 ? "one-action" : null },
      el("span", { class: "avatar small" }, initials(p.display_name)),
      el("span", { class: "person" },
        el("span", { class: "name" }, p.display_name, p.user_id === page.userId ? " (you)" : ""),
        el("span", { class: "meta" }, [p.role, p.connection === "reconnecting" ? "reconnecting" : null, ["normal", "bad", "very_bad"].includes(p.net) ? `connection ${p.net.replace("_", " ")}` : null, p.audio ? "mic on" : "mic off", p.video ? "camera on" : "camera off", p.streams?.length ? `${p.streams.length} more video${p.streams.length > 1 ? "s" : ""}` : null].filter(Boolean).join(" · "))),
      el("span", { class: "actions" }, ...actions));
  }));
}

function renderControls(room) {
  const mic = publicationOf(room, page.userId, "microphone");
  const cam = publicationOf(room, page.userId, "camera");
  const screen = publicationOf(room, page.userId, "screen");
  setToggle("#toggle-mic", mic && !mic.muted, mic ? (mic.muted ? "Unmute" : "Mute") : "Mic");
  setToggle("#toggle-camera", cam && !cam.muted, cam && !cam.muted ? "Stop video" : "Start video");
  $("#toggle-screen").classList.toggle("on", !!screen);
  $("#toggle-screen").querySelector(".label").textContent = screen ? "Stop share" : "Share";
}

function setToggle(selector, on, label) {
  const b = $(selector);
  b.classList.toggle("off", !on);
  b.querySelector(".label").textContent = label;
}

function renderRecipients(room) {
  const select = $("#chat-to");
  const current = select.value;
  const others = room.participants.filter((p) => p.user_id !== page.userId && p.role !== "recorder");
  select.replaceChildren(el("option", { value: "" }, "Everyone"), ...others.map((p) => el("option", { value: p.user_id }, p.display_name)));
  select.value = others.some((p) => p.user_id === current) ? current : "";
}

function chatLine(from, content, note) {
  const room = page.call?.room();
  const who = from === page.userId ? "You" : room?.participants.find((p) => p.user_id === from)?.display_name ?? from;
  const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const list = $("#chat-list");
  list.append(el("li", { class: from === page.userId ? "mine" : "" },
    el("div", { class: "head" }, el("b", {}, who), note ? el("span", { class: "note" }, note) : null, el("time", {}, time)),
    el("div", { class: "text" }, content)));
  list.scrollTop = list.scrollHeight;
  if ($("#tab-chat").classList.contains("hidden") && from !== page.userId) {
    page.unread += 1;
    $("#unread").textContent = String(page.unread);
    $("#unread").classList.remove("hidden");
  }
}

/** A member's display name (this page's own name for its user), or the id itself (the backend
 * is no member; a room id is no user). */
function nameOf(userId) {
  const member = page.call?.room?.()?.participants.find((p) => p.user_id === userId);
  if (member) return member.display_name;
  if (userId === page.userId && page.name) return page.name;
  return userId;
}

/** A lasting notice above the tiles (null: none). */
function notice(text) {
  $("#notice").textContent = text ?? "";
  $("#notice").classList.toggle("hidden", !text);
}

function status(text) {
  $("#status").textContent = text;
}

function toast(text, actions = [], ms = 4000) {
  const node = el("div", { class: "toast" }, el("span", {}, text), ...actions);
  $("#toasts").append(node);
  if (!actions.length) setTimeout(() => node.remove(), ms);
  return node;
}

function inviteToast(invitation) {
  const node = toast(`${invitation.caller_name} invites you to ${invitation.room}${invitation.extra ? ` — ${invitation.extra}` : ""}`, [
    el("button", { class: "small primary", onclick: () => { page.call.acceptInvite(invitation.id, { video: true }); node.remove(); } }, "Join"),
    el("button", { class: "small", onclick: () => { page.call.rejectInvite(invitation.id); node.remove(); } }, "Decline"),
  ]);
  setTimeout(() => node.remove(), invitation.timeout_ms);
}

// -- controls ---------------------------------------------------------------------------------

$("#toggle-mic").addEventListener("click", () => {
  const pub = publicationOf(page.call.room(), page.userId, "microphone");
  if (!pub) publishDevices(["microphone"]);
  else page.call.mute("microphone", !pub.muted);
});
$("#toggle-camera").addEventListener("click", () => {
  const pub = publicationOf(page.call.room(), page.userId, "camera");
  if (!pub) publishDevices(["camera"]);
  else page.call.mute("camera", !pub.muted);
});
$("#toggle-screen").addEventListener("click", () => {
  const pub = publicationOf(page.call.room(), page.userId, "screen");
  if (pub) page.call.unpublish("screen");
  else publishScreen();
});
$("#leave").addEventListener("click", () => page.call?.leave());
$("#end").addEventListener("click", () => { if (confirm("End the call for everyone?")) page.call?.end(); });

$("#chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#chat-input");
  const content = input.value.trim();
  if (!content) return;
  const to = $("#chat-to").value || null;
  input.value = "";
  try {
    await page.call.outcome(page.call.sendMessage(to, "text/plain", content));
    chatLine(page.userId, content, to ? `to ${$("#chat-to").selectedOptions[0].textContent}` : null);
  } catch (err) {
    input.value = content;
  }
});

$("#invite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("#invite-user").value.trim();
  if (!user) return;
  $("#invite-user").value = "";
  try {
    const report = await page.call.outcome(page.call.invite([user], { video: true }));
    if (report.invitations.length) toast(`Invited ${user}`);
  } catch (err) {
    /* reported by the event loop */
  }
});

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("#tab-people").classList.toggle("hidden", name !== "people");
  $("#tab-chat").classList.toggle("hidden", name !== "chat");
  if (name === "chat") { page.unread = 0; $("#unread").classList.add("hidden"); }
}
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
function openPanel(open) {
  document.body.classList.toggle("panel-open", open);
  $("#toggle-panel").setAttribute("aria-expanded", String(open));
}
$("#toggle-panel").addEventListener("click", () => openPanel(!document.body.classList.contains("panel-open")));
$("#close-panel").addEventListener("click", () => openPanel(false));
document.addEventListener("keydown", (e) => { if (e.key === "Escape") openPanel(false); });

window.jrtcPage = page; // for debugging (and the browser tests)

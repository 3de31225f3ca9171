// Compiled (not run) by `npm run types` in CI: an application's use of jrtc.js, checked
// against web/jrtc.d.ts with TypeScript's strict mode.
import { Call, CallError, type CallEvent, type RoomSnapshot } from "../../web/jrtc.js";

export async function example(url: string, token: string): Promise<void> {
  const call = await Call.connect(url, token, { idleTimeoutMs: 7500, refreshToken: async () => token });
  const op: number = call.join("standup", { displayName: "Ada", audio: true });
  const snapshot = (await call.outcome(op)) as RoomSnapshot;
  console.log(snapshot.participants.map((p) => `${p.display_name} (${p.role})`));
  call.publishCamera();
  call.publishMicrophone({ echoCancellation: true });
  call.sendMessage(null, "text/plain", "hello");
  call.kick("mallory", { forMs: 60_000 });
  call.setProperties({ custom: { topic: "Q3", old: null }, screenShare: null });
  for await (const ev of call.events()) {
    handle(ev);
    if (ev.type === "closed") break;
  }
  for await (const ev of call.media()) {
    if (ev.type === "media" && ev.kind === "subscribed") {
      const video: HTMLVideoElement = document.createElement("video");
      video.srcObject = ev.stream;
    }
  }
  const stats = await call.mediaStats();
  console.log(stats.inbound.map((s) => s.framesDecoded));
  try {
    await call.outcome(call.end());
  } catch (e) {
    if (e instanceof CallError) console.log(e.code, e.op);
  }
  call.close();
}

function handle(ev: CallEvent): void {
  switch (ev.type) {
    case "participant":
      console.log(ev.kind, ev.participant.user_id);
      break;
    case "message":
      if (ev.kind === "received") console.log(ev.message.from, ev.message.content);
      break;
    case "left":
      console.log("left", ev.room, ev.reason);
      break;
    case "resynced":
      console.log("missed", ev.missed);
      break;
    default:
      break;
  }
}

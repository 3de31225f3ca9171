// The transcripts of tests/web/transcripts/ (see the README there), replayed through the pure
// client core (web/jrtc/session.js) and through jrtc.js's Call over a fake WebSocket.

import test from "node:test";

import { replayCore, replayShell, transcripts } from "./replay.mjs";

for (const [name, t] of transcripts()) {
  test(`${name}: ${t.title} (core)`, () => replayCore(name, t));
  test(`${name}: ${t.title} (jrtc.js over a fake WebSocket)`, () => replayShell(name, t));
}

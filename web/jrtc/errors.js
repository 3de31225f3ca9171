// jrtc/errors.js — the error of a failed request. Part of jrtc.js (docs/browser.md).

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

// Injected into each test page: loads jrtc.js and keeps every call's events, so that the Rust
// test can connect calls and read what they saw with short evaluations.
window.jrtc = await import("/jrtc.js");
const plain = (ev) => JSON.parse(JSON.stringify(ev, (k, v) => (k === "stream" || k === "track" ? undefined : v)));
window.T = {
  calls: {},
  logs: {},
  async connect(name, url, token, options = {}) {
    const call = await jrtc.Call.connect(url, token, options);
    T.calls[name] = call;
    T.logs[name] = [];
    (async () => {
      for await (const ev of call.events()) T.logs[name].push(ev);
    })();
    return call.userId;
  },
  /** The events of `name` (plain data) that `pred` takes. */
  find(name, pred) {
    return T.logs[name].filter(pred).map(plain);
  },
  /** The first event of `name` that `pred` takes, waiting up to `ms` for it. */
  async until(name, pred, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
      const ev = T.logs[name].find(pred);
      if (ev) return plain(ev);
      if (Date.now() > end) throw new Error(`${name}: no such event in ${ms} ms; saw ${JSON.stringify(T.find(name, () => true).map((e) => [e.type, e.kind]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  /** Polls `f` (async, returning a value or null) until it returns non-null, up to `ms`. */
  async poll(f, ms = 30000) {
    const end = Date.now() + ms;
    let last = null;
    for (;;) {
      last = await f();
      if (last && last.ok) return last;
      if (Date.now() > end) throw new Error(`gave up after ${ms} ms: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  },
  /** `name`'s inbound RTP counters of publication `id`, by kind. */
  async inbound(name, id) {
    const stats = await T.calls[name].mediaStats();
    return stats.inbound.filter((s) => s.publication === id);
  },
};
return "ok";

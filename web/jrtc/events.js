// jrtc/events.js — event subscriptions of the browser client: an async iterator each, bounded,
// with an explicit `lagged` event when a slow reader's queue overflows (never a silent loss).
// Part of jrtc.js (docs/browser.md).

export class Subscription {
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

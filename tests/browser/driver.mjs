// Drives headless Chromium for the Rust browser tests: reads one JSON command per line on
// stdin, answers one JSON line per command on stdout ({id, ok, value} or {id, ok:false, error}).
// Commands run concurrently (an evaluation may wait for events while another one goes on).
//
//   {"id":1,"cmd":"open","url":"http://127.0.0.1:PORT/"}            -> value: page number
//   {"id":2,"cmd":"eval","page":0,"code":"return 1 + 1"}           -> value: 2 (the body of an async function)
//   {"id":3,"cmd":"screenshot","page":0,"path":"x.png","width":1280,"height":800}
//   {"id":4,"cmd":"close","page":0}
import { chromium } from "playwright-core";
import readline from "node:readline";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "jrtc-chromium-"));
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--allow-loopback-in-peer-connection",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
  ...(process.env.JRTC_MDNS ? [] : ["--disable-features=WebRtcHideLocalIpsWithMdns"]),
  "--auto-accept-this-tab-capture", "--auto-select-desktop-capture-source=Entire screen",
];
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args,
  viewport: { width: 1280, height: 800 },
  permissions: ["camera", "microphone"],
});
const pages = [];

function reply(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

async function run(c) {
  switch (c.cmd) {
    case "open": {
      // Every page a fresh context would share the fake devices anyway; pages of one context
      // keep their own JavaScript state.
      const page = await context.newPage();
      page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") process.stderr.write(`[page ${pages.length}] ${m.type()}: ${m.text()}\n`); });
      page.on("pageerror", (e) => process.stderr.write(`[page] error: ${e.message}\n`));
      if (c.width) await page.setViewportSize({ width: c.width, height: c.height });
      await page.goto(c.url);
      pages.push(page);
      return pages.length - 1;
    }
    case "eval": {
      const page = pages[c.page];
      return await page.evaluate(`(async () => { ${c.code} })()`);
    }
    case "fill": {
      await pages[c.page].fill(c.selector, c.value);
      return null;
    }
    case "click": {
      await pages[c.page].click(c.selector);
      return null;
    }
    case "wait": {
      // Polled with evaluate (which the page's content security policy allows), not
      // waitForFunction (which needs eval).
      const end = Date.now() + (c.timeout ?? 30000);
      for (;;) {
        if (await pages[c.page].evaluate(`Boolean(${c.code})`)) return null;
        if (Date.now() > end) throw new Error(`not true within ${c.timeout ?? 30000} ms: ${c.code}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    case "screenshot": {
      const page = pages[c.page];
      if (c.width) await page.setViewportSize({ width: c.width, height: c.height });
      await page.screenshot({ path: c.path });
      return null;
    }
    case "close": {
      await pages[c.page].close();
      return null;
    }
    case "quit": {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
      process.exit(0);
    }
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let c;
  try { c = JSON.parse(line); } catch (e) { reply({ id: null, ok: false, error: String(e) }); return; }
  run(c).then((value) => reply({ id: c.id, ok: true, value: value ?? null }), (e) => reply({ id: c.id, ok: false, error: String(e?.stack ?? e) }));
});
lines.on("close", async () => {
  await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
});
reply({ id: 0, ok: true, value: "ready" });

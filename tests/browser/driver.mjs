// Drives a browser for the Rust browser tests: reads one JSON command per line on stdin, answers
// one JSON line per command on stdout ({id, ok, value} or {id, ok:false, error}). Commands run
// concurrently (an evaluation may wait for events while another one goes on).
//
//   {"id":1,"cmd":"open","url":"http://127.0.0.1:PORT/"}            -> value: page number
//   {"id":2,"cmd":"eval","page":0,"code":"return 1 + 1"}           -> value: 2 (the body of an async function)
//   {"id":3,"cmd":"fill","page":0,"selector":"#name","value":"Ada"}
//   {"id":4,"cmd":"click","page":0,"selector":"#join"}
//   {"id":5,"cmd":"wait","page":0,"code":"document.title === 'x'","timeout":30000}
//   {"id":6,"cmd":"screenshot","page":0,"path":"x.png","width":1280,"height":800}
//   {"id":7,"cmd":"close","page":0}
//
// The browser: `JRTC_BROWSER=chromium` (the default) is Debian's headless Chromium
// (`$CHROMIUM`, else /usr/bin/chromium) driven by playwright-core over CDP;
// `JRTC_BROWSER=firefox` is Debian's headless Firefox ESR (`$FIREFOX`, else
// /usr/bin/firefox-esr) driven by puppeteer-core over WebDriver BiDi. Firefox's getDisplayMedia
// captures an X display even when headless: with `JRTC_XVFB=1` the driver starts an Xvfb of its
// own for it (on the first free display) and stops it when it exits. Each driver has a fresh
// profile of its own, removed when it exits. The driver exits when its input closes (the Rust
// side quitting, or dropping it when a test fails or its process dies), and its browser (and
// Xvfb) with it.
import readline from "node:readline";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const which = process.env.JRTC_BROWSER ?? "chromium";

/** Chromium through playwright-core. */
async function chromium() {
  const { chromium } = await import("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "jrtc-chromium-"));
  const args = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    ...(process.env.JRTC_MDNS ? [] : ["--disable-features=WebRtcHideLocalIpsWithMdns"]),
    "--auto-accept-this-tab-capture", "--auto-select-desktop-capture-source=Entire screen",
    // A camera of the test's own (a y4m file, looped), e.g. one large enough for simulcast.
    ...(process.env.JRTC_FAKE_VIDEO ? [`--use-file-for-fake-video-capture=${process.env.JRTC_FAKE_VIDEO}`] : []),
    // A microphone of the test's own (a WAV file, looped), e.g. a steady loud tone.
    ...(process.env.JRTC_FAKE_AUDIO ? [`--use-file-for-fake-audio-capture=${process.env.JRTC_FAKE_AUDIO}`] : []),
  ];
  process.on("exit", () => {
    try { fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 }); } catch (e) { process.stderr.write(`driver: ${e}\n`); }
  });
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args,
    viewport: { width: 1280, height: 800 },
    permissions: ["camera", "microphone"],
  });
  return {
    newPage: () => context.newPage(),
    resize: (page, width, height) => page.setViewportSize({ width, height }),
    fill: (page, selector, value) => page.fill(selector, value),
    async close() {
      await context.close().catch(() => {});
    },
  };
}

/** An X server for screen capture (`Xvfb`, or `$XVFB`): its display, once it is ready. */
async function xvfb() {
  const { spawn } = await import("node:child_process");
  // -displayfd: Xvfb takes the first free display and writes its number on stdout once it
  // accepts connections.
  const x = spawn(process.env.XVFB ?? "Xvfb", ["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  process.on("exit", () => x.kill("SIGTERM")); // Xvfb removes its socket and lock file
  return await new Promise((resolve, reject) => {
    let out = "";
    x.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(`:${out.trim()}`);
    });
    x.on("error", reject);
    x.on("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it had a display`)));
  });
}

/** Firefox ESR through puppeteer-core (WebDriver BiDi). */
async function firefox() {
  const puppeteer = (await import("puppeteer-core")).default;
  const env = { ...process.env };
  delete env.DISPLAY;
  if (process.env.JRTC_XVFB) env.DISPLAY = await xvfb();
  // No crash reporter (nor its helper process, which would outlive a killed Firefox).
  env.MOZ_CRASHREPORTER_DISABLE = "1";
  // A fresh profile, removed when the driver exits; puppeteer writes these preferences into it
  // on top of its own.
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "jrtc-firefox-"));
  const prefs = {
    // Fake camera and microphone, and no permission prompt: getUserMedia gets the fake devices,
    // getDisplayMedia the whole (Xvfb) screen without a picker.
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    "media.getdisplaymedia.enabled": true,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    // ICE on 127.0.0.1 (the test's network namespace has only `lo`, and a default route through
    // it: without one Firefox gathers no candidates), no mDNS names.
    "media.peerconnection.ice.loopback": true,
    "media.peerconnection.ice.obfuscate_host_addresses": false,
    // Nothing from the network but the test's server.
    "browser.safebrowsing.malware.enabled": false,
    "browser.safebrowsing.phishing.enabled": false,
    "app.update.enabled": false,
  };
  const removeProfile = () => {
    try { fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 }); } catch (e) { process.stderr.write(`driver: ${e}\n`); }
  };
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
    headless: true,
    env,
    userDataDir,
    extraPrefsFirefox: prefs,
    defaultViewport: { width: 1280, height: 800 },
    handleSIGTERM: false,
    handleSIGINT: false,
    handleSIGHUP: false,
    protocolTimeout: 120000,
  }).catch((e) => { removeProfile(); throw e; });
  // When the driver exits, however it exits: Firefox (its process group: puppeteer started it
  // as a group leader) is killed, then its profile removed. Firefox's own shutdown,
  // browser.close(), takes more than 5 s and is of no use here.
  const pid = browser.process()?.pid;
  process.on("exit", () => {
    try { if (pid) process.kill(-pid, "SIGKILL"); } catch { /* gone already */ }
    removeProfile();
  });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => process.exit(1));
  return {
    newPage: () => browser.newPage(),
    resize: (page, width, height) => page.setViewport({ width, height }),
    fill: (page, selector, value) => page.locator(selector).fill(value),
    async close() {}, // at exit
  };
}

const backend = which === "firefox" ? await firefox() : await chromium();
const pages = [];

function reply(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

async function run(c) {
  switch (c.cmd) {
    case "open": {
      // Pages of one browser share the fake devices; each keeps its own JavaScript state.
      const page = await backend.newPage();
      const n = pages.length;
      page.on("console", (m) => {
        const type = m.type();
        if (type === "error" || type === "warning" || type === "warn") process.stderr.write(`[${which} page ${n}] ${type}: ${m.text()}\n`);
      });
      page.on("pageerror", (e) => process.stderr.write(`[${which} page ${n}] error: ${e.message}\n`));
      if (c.width) await backend.resize(page, c.width, c.height);
      await page.goto(c.url);
      pages.push(page);
      return pages.length - 1;
    }
    case "eval": {
      const page = pages[c.page];
      return await page.evaluate(`(async () => { ${c.code} })()`);
    }
    case "fill": {
      await backend.fill(pages[c.page], c.selector, c.value);
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
      if (c.width) await backend.resize(page, c.width, c.height);
      await page.screenshot({ path: c.path });
      return null;
    }
    case "close": {
      await pages[c.page].close();
      return null;
    }
    case "quit": {
      await backend.close();
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
  // Chromium is closed in order if it can be within 5 s; at exit it is killed anyway.
  await Promise.race([backend.close(), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(0);
});
reply({ id: 0, ok: true, value: "ready" });

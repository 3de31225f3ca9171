//! Browsers in jrtc calls: headless Debian Chromium running `jrtc.js` (and the call page) next
//! to Rust clients, and headless Debian Firefox ESR next to Chromium, all inside a network
//! namespace of the test's own that holds only `lo`. Needs root (for `unshare -n`),
//! `/usr/bin/chromium`, `/usr/bin/firefox-esr` and `Xvfb` (for the Firefox test) and Node.js;
//! `npm ci` in `tests/browser` is run on first use (`scripts/test` installs all of it).

mod support;

/// The signaling tests' helpers; the browser tests take their network namespace from it.
#[path = "../signaling/support.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../signaling/proxy.rs"]
#[allow(dead_code)]
mod proxy;
#[path = "../signaling/record_support.rs"]
mod record_support;

mod firefox;
mod media;
mod mute;
mod origins;
mod page;
mod recorder;
mod resume;
mod rooms;

//! Browsers in jrtc calls: headless Debian Chromium running `jrtc.js` (and the call page) next
//! to Rust clients, and headless Debian Firefox ESR next to Chromium, all inside a network
//! namespace of the test's own that holds only `lo`. Needs root (for `unshare -n`),
//! `/usr/bin/chromium`, `/usr/bin/firefox-esr` and `Xvfb` (for the Firefox test) and Node.js;
//! `npm ci` in `tests/browser` is run on first use (`scripts/test` installs all of it).

/// The browser tests' tools (`jrtc_testkit::browser`), under their old name.
pub use jrtc_testkit::browser as support;

mod extra_streams;
mod firefox;
mod media;
mod mute;
mod net_status;
mod origins;
mod page;
mod recorder;
mod resume;
mod rooms;
mod shaped;
mod simulcast;
mod speakers;
mod statistics;
mod udp_blocked;

//! The helpers shared by jrtc's integration tests and benchmarks (`tests/signaling`,
//! `tests/browser`, `benches/browser.rs`, and `jrtc-server`'s tests and benches). A
//! dev-dependency only, never published.
//!
//! - [`support`]: a development server, tokens, a logged-in user with its event stream, and a
//!   test run again inside a network namespace of its own.
//! - [`proxy`]: a TCP proxy that closes, resets or black-holes the connections it forwards.
//! - [`media`]: a real-time sender of the VP8 fixture and Opus frames, and ffprobe's and
//!   mkvinfo's views of a recording.
//! - [`browser`]: headless Chromium and Firefox driven through `tests/browser/driver.mjs`.
//!
//! Files of the repository (the fixtures, the browser driver and its `node_modules`) are found
//! from this crate's directory, so the helpers work from any test crate of the workspace.

pub mod browser;
pub mod media;
pub mod proxy;
pub mod support;

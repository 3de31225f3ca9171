//! Signaling over real WebSocket connections on 127.0.0.1: several clients, one real server.

/// The shared helpers, under the names the tests have always used.
pub use jrtc_testkit::media as record_support;
pub use jrtc_testkit::support;

mod bans;
mod clean_call;
mod extra_streams;
mod floods;
mod hostile;
mod invites;
mod join_leave;
mod kick_roles;
mod lifetime;
mod media;
mod media_fault;
mod media_port;
mod messages;
mod mute;
mod operations;
mod options;
mod properties;
mod proxy;
mod raw;
mod recording;
mod recording_files;
mod resume;
mod security;
mod server_api;
mod simulcast;
mod speakers;
mod statistics;
mod streams;
mod third_party;
mod timers;
mod tls;
mod web;
mod webhooks;

//! Test and benchmark entry points, compiled for tests and behind the hidden `internals`
//! feature (the fuzz targets in `fuzz/` and the benchmarks in `benches/` use it). Not a public
//! API: nothing here is kept stable.
//!
//! - `sim`: a simulated world — the server core, a client session per device, and a model of
//!   the media shell — driven by actions, with cross-party invariants checked after each step.
//! - `proptests`: random action sequences through the simulator.
//! - `scenarios`: the core alone with exact outputs (kick, host hand-over, screen share,
//!   grants, negotiation order, failed connections, rooms kept apart).
//! - `media_recovery_scenarios`: peer connections that fail, are kept for the grace period,
//!   and come back (ICE restart) or end.
//! - `recording_scenarios`: recording jobs (handed out, joined, reported, lost, required,
//!   untaken, ended with the call).
//! - `session_scenarios`: the same for sessions (who may resume one, what a connection whose
//!   session was taken over may still do).
//! - [`fuzzing`]: the fuzz targets' entry points and the corpus replay.
//! - [`bench`]: what the core benchmarks drive.

#[cfg(feature = "internals")]
pub mod bench;
#[cfg(test)]
mod client_policy_props;
#[cfg(test)]
mod extension_scenarios;
pub mod fuzzing;
#[cfg(test)]
mod layer_props;
#[cfg(test)]
mod media_recovery_scenarios;
#[cfg(test)]
mod mute_scenarios;
#[cfg(test)]
mod net_props;
#[cfg(test)]
mod net_scenarios;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod recording_scenarios;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod session_scenarios;
pub(crate) mod sim;
mod sim_actions;
mod sim_backend;
mod sim_media;
#[cfg(test)]
mod simulcast_scenarios;
#[cfg(test)]
mod speaker_props;
#[cfg(test)]
mod speaker_scenarios;
#[cfg(test)]
mod transcripts;

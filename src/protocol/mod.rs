//! The wire protocol: JSON text frames over one WebSocket per logged-in user.
//!
//! `docs/protocol.md` is the public description of every frame here; change both together.
//! Every frame is a JSON object with a `"type"` field naming it. Requests carry a client-chosen
//! `op` id that the answer repeats. Room events carry the room's sequence number `seq`.
//!
//! Client frames are in `client.rs`, server frames in `server.rs`; both are re-exported here.

use serde::{Deserialize, Serialize};

mod error;
#[macro_use]
pub(crate) mod tagged;
// After `tagged`: its macro is in scope for these.
mod client;
mod server;

#[cfg(any(test, feature = "internals"))]
pub use client::decode_client;
#[cfg(test)]
use client::nesting_below;
pub use client::{ClientFrame, RecorderReport, decode_client_within};
pub(crate) use error::refuse;
pub use error::{ErrorCode, FrameError, Refusal};
pub use server::{Resync, RoomState, ServerFrame, frame_number, with_number};

/// The protocol version this build speaks; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame the server interprets, in bytes; larger ones get a `frame_too_large` error.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

pub use crate::model::MediaConnection;

/// An ICE candidate sent as soon as it is found (trickle ICE); the fields of the browser API's
/// `RTCIceCandidateInit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute (RFC 8839).
    pub candidate: String,
    /// The media section's `mid`.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
    /// The ICE username fragment.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// Encodes a frame as JSON text.
pub fn encode<T: Serialize>(frame: &T) -> String {
    // Our frames are plain data with string keys: serialization cannot fail.
    serde_json::to_string(frame).expect("protocol frames always serialize")
}

#[cfg(test)]
mod tests;

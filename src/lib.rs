//! # jrtc — multi-party calls as an async stream of events
//!
//! A [`Call`] is one logged-in user. Everything the call system tells that user arrives on a
//! [`Stream`](futures::Stream) of [`CallEvent`]s, in the server's order. Every request
//! ([`Call::join`], [`Call::kick`], [`Call::send_message`], …) returns an [`OperationId`] as soon
//! as it is on its way; its outcome arrives later as an event carrying the same id (or through
//! [`Call::outcome`], if you would rather await it).
//!
//! The [`Server`] the calls talk to ships in this crate: embed it (as below, on a free loopback
//! port) or run the `jrtc-server` binary.
//!
//! ## Tutorial
//!
//! ```
//! use futures::StreamExt;
//! use jrtc::{AccessToken, Call, CallEvent, Grants, JoinOptions, MessageEvent, Outcome, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A development server on 127.0.0.1 and a free port, with a random token secret. (A real
//! // deployment gives the server its secret: `Server::builder().secret(...)`.)
//! let server = Server::builder().development().start().await?;
//!
//! // Users log in with signed access tokens; your backend would mint these with the secret.
//! let alice_token = server.mint(&AccessToken::new("alice").name("Alice").grants(Grants::host()))?;
//! let bob_token = server.mint(&AccessToken::new("bob").name("Bob").room("standup"))?;
//!
//! // Each `Call` is one logged-in user's handle.
//! let alice = Call::connect(&server.url(), alice_token).await?;
//! let bob = Call::connect(&server.url(), bob_token).await?;
//!
//! // Alice joins first (so she is the host); `outcome` awaits one operation's result.
//! let op = alice.join("standup", JoinOptions::default()).await?;
//! let Outcome::Joined(snapshot) = alice.outcome(op).await? else { unreachable!() };
//! assert_eq!(snapshot.participants.len(), 1);
//!
//! // Bob subscribes before joining, then reads his events as they come.
//! let mut bob_events = bob.events();
//! let join = bob.join("standup", JoinOptions::default().audio(true)).await?;
//! while let Some(event) = bob_events.next().await {
//!     if let CallEvent::Joined { op, result } = event {
//!         assert_eq!(op, join);
//!         // The snapshot holds everyone already there: no one is announced twice or missed.
//!         let room = result?;
//!         assert!(room.participant("alice").is_some());
//!         break;
//!     }
//! }
//!
//! // A typed sub-stream yields only message events.
//! let mut chat = bob.events().messages();
//! alice.send_message(None, "text/plain", "hello, everyone").await?;
//! while let Some(item) = chat.next().await {
//!     if let MessageEvent::Received(message) = item? {
//!         assert_eq!(message.content, "hello, everyone");
//!         break;
//!     }
//! }
//!
//! bob.close().await;
//! alice.close().await;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Event-stream guarantees
//! - **No silent loss.** Each subscriber has its own bounded queue
//!   ([`CallOptions::event_capacity`]). One that falls behind gets [`CallEvent::Lagged`] with the
//!   number it missed and can resynchronise from [`Call::room`].
//! - **Snapshot, then deltas.** A join's result holds the whole roster and the call properties;
//!   [`Call::subscribe`] gives the current snapshot and a stream that continues exactly after it.
//! - **Order.** Events come in the server's order; room events carry the room's gap-free sequence
//!   number `seq`.
//! - **End of stream.** Every stream ends after [`CallEvent::Closed`], which says why.
//! - **No leaks.** A `Call` runs two tasks around its sans-IO core: the driver (the socket,
//!   the core's timers, the [`TokenProvider`](CallOptions::token_provider)) and the media task
//!   (the peer connections, whose own tasks the `webrtc` crate runs). Both end when the call
//!   closes or the last handle is dropped.
//!
//! The wire protocol is described in `docs/protocol.md`; the mapping from the seed SDK's
//! callbacks to events in `docs/events.md`.
#![deny(missing_docs)]

pub mod auth;
pub mod call;
mod embedded;
pub mod event;
pub mod media;
pub mod model;
// The wire frames are described for every language in docs/protocol.md; they are not a Rust API
// to keep stable. The fuzzers and benchmarks reach them through the hidden `internals` feature.
mod http_client;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod protocol;
#[cfg(not(feature = "internals"))]
mod protocol;
pub mod record;
pub mod server;
#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub mod testing;
mod text;
mod tls;

pub use auth::{AccessToken, Grants, Revocation, TokenError};
pub use call::{
    Call, CallError, CallOptions, Credentials, EventStream, InviteOptions, JoinOptions, KindStream,
    Lagged, ReconnectPolicy, Simulcast, TlsRoots, TokenProvider, TokenResult,
};
pub use event::{
    CallEvent, InviteEvent, InviteReport, MediaEvent, MessageEvent, OpError, OperationKind,
    Outcome, ParticipantEvent, PropertyEvent, ReceivedMessage, RecordingEvent, RoomSnapshot,
};
pub use media::{LocalTrack, MediaError, RemoteTrack, RtpPacket};
pub use model::{
    AbortReason, ActiveSpeaker, Ban, BanTerm, CallProperties, CallStatistics, ConnectionState,
    ConnectionStatistics, Invitation, InvitationId, InviteFailure, MediaConnection, MediaKind,
    MemberLink, MessageScope, NetStatus, OperationId, Participant, ParticipantChanges,
    ParticipantStatistics, ParticipantUpdate, PropertyChanges, PropertyUpdate, Publication, Reason,
    RecordedFile, RecordingId, RecordingJob, RecordingOptions, RecordingPolicy, RecordingState,
    Rejection, Role, RoomDetails, RoomId, RoomOptions, RoomStatistics, RoomSummary, ScreenShare,
    ServerEvent, ServerTrackStatistics, StopReason, StreamName, TrackReceiver, TrackSource,
    TrackStatistics, UserId, VideoSize, VolumeStatus, Webhook,
};
pub use protocol::{ErrorCode, PROTOCOL_VERSION};
pub use server::{
    ApiError, Limits, Server, ServerApi, ServerBuilder, ServerError, ServerHandle, ServerOptions,
    TlsIdentity,
};
pub use text::Text;

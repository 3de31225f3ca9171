//! Server settings and limits, and the server layer's error.

use std::time::Duration;

use thiserror::Error;

use crate::auth::MIN_SECRET_LEN;
use crate::protocol::MAX_FRAME_LEN;
use crate::server::hub::speakers::SpeakerConfig;

/// The server layer's error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// No secret to verify access tokens with, and not told this is a development server.
    #[error(
        "no token secret: give the server a secret (at least {MIN_SECRET_LEN} bytes), or call \
         it a development server to have a random one made"
    )]
    NoSecret,
    /// The secret is too short to be safe.
    #[error("the token secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// A request to the running server was refused (nothing was done).
    #[error("refused ({code}): {message}")]
    Refused {
        /// Why, for programs.
        code: crate::protocol::ErrorCode,
        /// Why, for humans.
        message: String,
    },
    /// The TLS certificate or key is not usable.
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong with them.
        reason: String,
    },
    /// An option is out of its range; nothing was started.
    #[error("server option `{option}`: {rule}")]
    InvalidOption {
        /// The option's name (a field of [`ServerOptions`] or [`Limits`]).
        option: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
}

impl ServerOptions {
    /// Checks every option's range (done by [`ServerBuilder::start`](crate::ServerBuilder::start)).
    pub fn validate(&self) -> Result<(), ServerError> {
        let invalid = |option, rule| Err(ServerError::InvalidOption { option, rule });
        let limits = &self.limits;
        if self.outbound_queue == 0 {
            return invalid("outbound_queue", "at least 1 frame");
        }
        if self.invite_timeout.is_zero()
            || self.invite_timeout > Duration::from_millis(crate::model::MAX_INVITE_TIMEOUT_MS)
        {
            return invalid("invite_timeout", "more than 0 and at most 10 minutes");
        }
        if let Some(Err(rule)) = self.auto_record.as_ref().map(|o| o.validate()) {
            return invalid("auto_record", rule);
        }
        for url in &self.webhook_urls {
            let ok = url.parse::<hyper::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                return invalid("webhook_urls", "absolute http:// or https:// URLs");
            }
        }
        if self.webhook_queue == 0 || self.webhook_attempts == 0 || self.webhook_timeout.is_zero() {
            return invalid(
                "webhook_queue / webhook_attempts / webhook_timeout",
                "at least 1 (and more than 0 s)",
            );
        }
        if self.speaker_threshold_dbov > 127 {
            return invalid("speaker_threshold_dbov", "0 to 127");
        }
        let interval = self.speaker_interval.as_millis() as u64;
        if !(crate::model::MIN_SPEAKER_INTERVAL_MS..=crate::model::MAX_SPEAKER_INTERVAL_MS)
            .contains(&interval)
        {
            return invalid("speaker_interval", "100 ms to 10 s");
        }
        if self.recorder_start_timeout.is_zero() {
            return invalid("recorder_start_timeout", "more than 0");
        }
        if limits.handshake_timeout.is_zero() {
            return invalid("handshake_timeout", "more than 0");
        }
        if limits.ping_interval.is_zero() {
            return invalid("ping_interval", "more than 0");
        }
        if limits.idle_timeout <= limits.ping_interval {
            return invalid("idle_timeout", "longer than ping_interval");
        }
        if self.grace_period.is_zero() || self.grace_period > Duration::from_secs(600) {
            return invalid("grace_period", "more than 0 and at most 10 minutes");
        }
        if self.resume_buffer < 16 {
            return invalid("resume_buffer", "at least 16 frames");
        }
        if limits.max_frame_len < 1024 {
            return invalid("max_frame_len", "at least 1 KiB");
        }
        if limits.max_rooms == 0 || limits.max_participants == 0 {
            return invalid("max_rooms / max_participants", "at least 1");
        }
        if limits.max_connections_per_user == 0 {
            return invalid("max_connections_per_user", "at least 1");
        }
        if limits.requests_per_second == 0 || limits.request_burst == 0 {
            return invalid("requests_per_second / request_burst", "at least 1");
        }
        if limits.max_token_lifetime < Duration::from_secs(60) {
            return invalid("max_token_lifetime", "at least a minute");
        }
        if limits.max_unauthenticated == 0 || limits.max_unauthenticated_per_address == 0 {
            return invalid(
                "max_unauthenticated / max_unauthenticated_per_address",
                "at least 1",
            );
        }
        Ok(())
    }
}

/// What one client may do and hold. The defaults are meant for a public server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// How long a new connection may take to send a valid `hello` (10 s).
    pub handshake_timeout: Duration,
    /// How often the server pings a connection (3 s).
    pub ping_interval: Duration,
    /// A connection from which nothing (not even a pong) arrives for this long counts as lost
    /// (10 s): its session waits for a resume for the grace period.
    pub idle_timeout: Duration,
    /// Largest text frame the server reads, in bytes (64 KiB, at most 1 MiB).
    pub max_frame_len: usize,
    /// Most rooms at once (10,000).
    pub max_rooms: usize,
    /// Most members in one room (256).
    pub max_participants: usize,
    /// Most connections one user may have at once (8). A session whose connection was lost and
    /// waits for its resume is not a connection: when a user at the limit logs in again, the
    /// oldest such session ends (its rooms hear it leave for `network`) to make room.
    pub max_connections_per_user: usize,
    /// Requests one connection may make per second, sustained (50).
    pub requests_per_second: u32,
    /// Requests one connection may make in a burst (100).
    pub request_burst: u32,
    /// Longest an access token may be valid, from its `iat` (and from now) to its `exp`
    /// (24 hours); longer-lived tokens are refused (`token_too_long_lived`).
    pub max_token_lifetime: Duration,
    /// Most bans the server holds in all rooms (100,000; a room holds at most 1,024).
    pub max_bans: usize,
    /// Most connections not logged in yet, in all (1,024): a new one over the limit closes the
    /// oldest of them. The server takes at most a quarter of its process's open-file limit
    /// (256 under the common 1,024), so idle connections cannot use up the descriptors members
    /// need; and when `accept` still runs out of descriptors, it closes the oldest connection
    /// not logged in to make room.
    pub max_unauthenticated: usize,
    /// Most connections not logged in yet from one IP address (64): a new one over the limit
    /// from that address is refused (closed at once).
    pub max_unauthenticated_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
            max_frame_len: MAX_FRAME_LEN,
            max_rooms: 10_000,
            max_participants: 256,
            max_connections_per_user: 8,
            requests_per_second: 50,
            request_burst: 100,
            max_token_lifetime: Duration::from_secs(24 * 3600),
            max_bans: 100_000,
            max_unauthenticated: 1024,
            max_unauthenticated_per_address: 64,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        impl Limits {
            $(
                $(#[$doc])*
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`Limits::handshake_timeout`].
    handshake_timeout: Duration;
    /// Sets [`Limits::ping_interval`].
    ping_interval: Duration;
    /// Sets [`Limits::idle_timeout`].
    idle_timeout: Duration;
    /// Sets [`Limits::max_frame_len`] (capped at 1 MiB by the transport).
    max_frame_len: usize;
    /// Sets [`Limits::max_rooms`].
    max_rooms: usize;
    /// Sets [`Limits::max_participants`].
    max_participants: usize;
    /// Sets [`Limits::max_connections_per_user`].
    max_connections_per_user: usize;
    /// Sets [`Limits::requests_per_second`].
    requests_per_second: u32;
    /// Sets [`Limits::request_burst`].
    request_burst: u32;
    /// Sets [`Limits::max_token_lifetime`].
    max_token_lifetime: Duration;
    /// Sets [`Limits::max_bans`].
    max_bans: usize;
    /// Sets [`Limits::max_unauthenticated`].
    max_unauthenticated: usize;
    /// Sets [`Limits::max_unauthenticated_per_address`].
    max_unauthenticated_per_address: usize;
}

/// Server settings. Every server needs a token secret ([`ServerOptions::secret`]) unless it is a
/// development server ([`ServerOptions::development`]), which makes a random one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The secret access tokens are signed with (at least 32 bytes).
    pub secret: Option<Vec<u8>>,
    /// A development server: without a secret, a random one is made (tokens are then minted
    /// with [`ServerHandle::mint`](crate::ServerHandle::mint)).
    pub development: bool,
    /// Per-client limits.
    pub limits: Limits,
    /// Frames queued for one connection before it counts as a slow consumer and is closed.
    pub outbound_queue: usize,
    /// How long an invitation stays open when the caller does not say (30 s, as in comparable
    /// SDKs).
    pub invite_timeout: Duration,
    /// Reject invitations to users who are in another call at once, with reason `busy`, instead
    /// of letting them choose.
    pub auto_reject_busy: bool,
    /// Keep invitations to users who are not connected until they time out, delivering them if
    /// the user logs in meanwhile, instead of failing them with reason `offline`.
    pub hold_offline_invitations: bool,
    /// The UDP port media goes through (`127.0.0.1:0` by default: free ports on loopback).
    /// Each media worker ([`media_workers`](Self::media_workers)) has one socket, which all
    /// the peer connections of its rooms share: the port given and the ones after it (port
    /// `P`: `P` to `P + workers - 1`; `media_workers = 1` for a single port). A server for
    /// other machines binds e.g. `0.0.0.0:7882` and opens those ports in its firewall.
    pub media_bind: std::net::SocketAddr,
    /// The TCP port for ICE over TCP, which reaches clients whose network blocks UDP
    /// (`127.0.0.1:0` by default; `None`: UDP only). Connections announce it as a passive
    /// candidate; UDP is preferred whenever it works.
    pub media_tcp_bind: Option<std::net::SocketAddr>,
    /// Addresses to announce in ICE candidates instead of the bound one (behind NAT).
    pub media_public_ips: Vec<String>,
    /// Threads that forward media (0, the default: one per core), each started when a room
    /// first needs it. Each room's media runs on one of them.
    pub media_workers: usize,
    /// How long a session whose connection was lost keeps its seat, waiting for a `resume`
    /// (20 s); then it leaves with reason `network`.
    pub grace_period: Duration,
    /// Most frames a session keeps for a resume (1,024); a client that missed more gets a
    /// resync (the state as it is) instead of the replay.
    pub resume_buffer: usize,
    /// A member speaks when its microphone is at this level or louder (−dBov, 0 the loudest;
    /// 35 by default) in 40 % of the last second; a room made by the server API may set its
    /// own.
    pub speaker_threshold_dbov: u8,
    /// Rooms hear who speaks at most this often (500 ms; 100 ms to 10 s); a room made by the
    /// server API may set its own.
    pub speaker_interval: Duration,
    /// Whether the `goodbye` of a shutdown ([`ServerHandle::shutdown`](crate::ServerHandle))
    /// tells clients to reconnect (false by default: the server goes away; `jrtc-server` sets it
    /// for SIGTERM, where a restart or another server follows).
    pub reconnect_after_shutdown: bool,
    /// Serve `wss://` with this certificate and key; `None` (the default): plain `ws://`, for
    /// loopback or behind a TLS-terminating proxy.
    pub tls: Option<TlsIdentity>,
    /// Run a recorder inside the server when a recording starts and no recorder process is
    /// connected (true by default). It connects to the server's own port over loopback.
    pub embedded_recorder: bool,
    /// Where the embedded recorder writes (`recordings`, relative to the working directory):
    /// one directory per recording.
    pub recording_dir: std::path::PathBuf,
    /// How long a recording may take to begin, from `start_recording` to the recorder
    /// recording (10 s); then it is aborted with reason `no_recorder` (or `recorder_failed`).
    pub recorder_start_timeout: Duration,
    /// Every new room records from its start with these options (`None`, the default: only
    /// when a host starts it, or the creator's token says so with its `record` claim).
    pub auto_record: Option<crate::model::RecordingOptions>,
    /// Where the server posts its events (room, participant, track and recording events; see
    /// `docs/api.md`): `http://` or `https://` URLs, each with its own queue. None by default.
    pub webhook_urls: Vec<String>,
    /// Events one webhook URL may have waiting (10,000); past that, new events for it are
    /// dropped and counted (`jrtc_webhooks_total{kind="dropped"}`).
    pub webhook_queue: usize,
    /// How long one webhook delivery may take before it counts as failed (5 s).
    pub webhook_timeout: Duration,
    /// Tries per event before it is given up (and counted as dropped): 8, waiting 250 ms
    /// doubling to 8 s between them.
    pub webhook_attempts: u32,
    /// On shutdown, how long `/readyz` answers 503 while calls go on, so that a load balancer
    /// stops sending new ones before the server says goodbye (0: at once).
    pub drain_delay: Duration,
    /// Serve the call page at `/` (a browser joins a room there; `docs/browser.md`). `None`,
    /// the default: on for a development server, off otherwise. The JavaScript client
    /// (`/jrtc.js`) is served either way.
    pub call_page: Option<bool>,
}

/// A server's TLS identity: its certificate chain and private key, as PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
}

impl TlsIdentity {
    /// From PEM text: the certificate chain (leaf first) and its private key (PKCS #8, PKCS #1
    /// or SEC1).
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        TlsIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// Reads the two PEM files.
    pub fn from_files(
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> std::io::Result<Self> {
        Ok(TlsIdentity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ))
    }
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.write_str("TlsIdentity { .. }")
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            secret: None,
            development: false,
            limits: Limits::default(),
            outbound_queue: 1024,
            invite_timeout: Duration::from_secs(30),
            auto_reject_busy: false,
            hold_offline_invitations: false,
            media_bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            media_tcp_bind: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            media_public_ips: Vec::new(),
            media_workers: 0,
            grace_period: Duration::from_secs(20),
            resume_buffer: 1024,
            speaker_threshold_dbov: SpeakerConfig::default().threshold_dbov,
            speaker_interval: Duration::from_millis(SpeakerConfig::default().interval_ms),
            reconnect_after_shutdown: false,
            tls: None,
            embedded_recorder: true,
            recording_dir: std::path::PathBuf::from("recordings"),
            recorder_start_timeout: Duration::from_secs(10),
            auto_record: None,
            webhook_urls: Vec::new(),
            webhook_queue: 10_000,
            webhook_timeout: Duration::from_secs(5),
            webhook_attempts: 8,
            drain_delay: Duration::ZERO,
            call_page: None,
        }
    }
}

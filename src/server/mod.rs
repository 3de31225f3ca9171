//! The signaling server: embeddable ([`Server::builder`]) and run by the `jrtc-server` binary.
//!
//! Its public face is here: [`ServerBuilder`] (checks the options, starts the shell) and
//! [`ServerHandle`]. Every decision is taken by the sans-IO core in `hub/` (no tokio, no webrtc,
//! no clock); `shell/` moves bytes and time for it (the accept loop, the connection tasks, the
//! timer, the HTTP routes, the webhooks); `sfu/` carries out its media commands with the `webrtc`
//! crate. Nothing in it uses the client ([`Call`](crate::Call)) or the recorder: the embedded
//! recorder is a `RunRecorder` the builder is given (`src/embedded.rs` gives it
//! `jrtc::record::Recorder`).

mod admission;
mod api_client;
pub(crate) mod hub;
mod options;
pub(crate) mod sfu;
mod shell;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{AccessToken, MIN_SECRET_LEN, TokenError, random_secret};
pub use crate::http_client::HttpError;
pub use api_client::{ApiError, ServerApi};
use hub::{Hub, HubConfig};
pub use options::{Limits, ServerError, ServerOptions, TlsIdentity};
use shell::State;
pub use shell::{count_media_stack_warning, is_media_stack_target};

/// The embeddable server: `Server::builder().bind("127.0.0.1:0").start().await`.
// `Server::builder` is defined in `src/embedded.rs`, which gives the builder the embedded
// recorder: this module knows no recorder, only `RunRecorder`.
#[derive(Debug)]
pub struct Server;

/// Configures and starts a [`Server`].
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    bind: String,
    options: ServerOptions,
    /// How to run the embedded recorder; `None`: there is none, whatever
    /// [`ServerOptions::embedded_recorder`] says.
    recorder: Option<RunRecorder>,
}

/// Where the server's own recorder connects, and what it is given: made once the server is
/// bound, handed to the [`RunRecorder`] each time the core asks for a recorder.
#[derive(Clone)]
pub(crate) struct RecorderTarget {
    /// Loopback, or `wss://localhost` with TLS.
    pub(crate) url: String,
    /// The token secret (the recorder mints its own `recorder` token).
    pub(crate) secret: Vec<u8>,
    /// [`ServerOptions::recording_dir`].
    pub(crate) dir: std::path::PathBuf,
    /// With TLS, the server's own certificate (PEM), which the recorder trusts.
    pub(crate) cert_pem: Option<Vec<u8>>,
}

/// What the recorder's run ends with.
pub(crate) type RecorderResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type RunFn =
    dyn Fn(RecorderTarget) -> futures::future::BoxFuture<'static, RecorderResult> + Send + Sync;

/// Runs the embedded recorder until it stops: given to the builder by the crate
/// (`src/embedded.rs` connects `record::Recorder` here), so the server depends on no recorder.
#[derive(Clone)]
pub(crate) struct RunRecorder(Arc<RunFn>);

impl RunRecorder {
    /// A recorder that `run` runs.
    pub(crate) fn new<F, Fut>(run: F) -> Self
    where
        F: Fn(RecorderTarget) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = RecorderResult> + Send + 'static,
    {
        RunRecorder(Arc::new(move |target| Box::pin(run(target))))
    }

    /// Runs it for `target`.
    pub(crate) fn run(
        &self,
        target: RecorderTarget,
    ) -> futures::future::BoxFuture<'static, RecorderResult> {
        (self.0)(target)
    }
}

impl std::fmt::Debug for RunRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunRecorder")
    }
}

impl ServerBuilder {
    /// Default options, bound to `127.0.0.1:0`, with `recorder` as the embedded recorder
    /// ([`Server::builder`] gives it the crate's).
    pub(crate) fn new(recorder: Option<RunRecorder>) -> Self {
        ServerBuilder {
            bind: "127.0.0.1:0".into(),
            options: ServerOptions::default(),
            recorder,
        }
    }

    /// The address to listen on, e.g. `127.0.0.1:0` or `0.0.0.0:7600`.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = addr.into();
        self
    }

    /// The secret access tokens are signed with (at least 32 bytes).
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.options.secret = Some(secret.into());
        self
    }

    /// A development server: without a secret, a random one is made; mint tokens with
    /// [`ServerHandle::mint`].
    pub fn development(mut self) -> Self {
        self.options.development = true;
        self
    }

    /// Sets [`ServerOptions::call_page`]: serve the call page at `/` (on by default only for a
    /// development server).
    pub fn call_page(mut self, on: bool) -> Self {
        self.options.call_page = Some(on);
        self
    }

    /// The one UDP port the SFU's peer connections share (default `127.0.0.1:0`: a free port),
    /// and the addresses to announce in ICE candidates instead of the bound one (for a server
    /// behind NAT).
    pub fn media_addresses(mut self, bind: std::net::SocketAddr, public_ips: Vec<String>) -> Self {
        self.options.media_bind = bind;
        self.options.media_public_ips = public_ips;
        self
    }

    /// Sets [`ServerOptions::media_tcp_bind`]: the TCP port for ICE over TCP (`None`: UDP
    /// only).
    pub fn media_tcp_bind(mut self, bind: Option<std::net::SocketAddr>) -> Self {
        self.options.media_tcp_bind = bind;
        self
    }

    /// Sets [`ServerOptions::media_workers`]: threads that forward media (0: one per core).
    pub fn media_workers(mut self, workers: usize) -> Self {
        self.options.media_workers = workers;
        self
    }

    /// Sets every per-client limit.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.options.limits = limits;
        self
    }

    /// Sets [`Limits::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.options.limits.handshake_timeout = timeout;
        self
    }

    /// Sets [`ServerOptions::outbound_queue`] (at least 1; checked by [`start`](Self::start)).
    pub fn outbound_queue(mut self, frames: usize) -> Self {
        self.options.outbound_queue = frames;
        self
    }

    /// Sets [`ServerOptions::invite_timeout`] (more than 0, at most 10 minutes; checked by
    /// [`start`](Self::start)).
    pub fn invite_timeout(mut self, timeout: Duration) -> Self {
        self.options.invite_timeout = timeout;
        self
    }

    /// Replaces every option at once (the setters above change one each).
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets [`ServerOptions::grace_period`] (more than 0, at most 10 minutes; checked by
    /// [`start`](Self::start)).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.options.grace_period = grace;
        self
    }

    /// Sets [`ServerOptions::speaker_threshold_dbov`] (0 to 127) and
    /// [`ServerOptions::speaker_interval`] (100 ms to 10 s; both checked by
    /// [`start`](Self::start)).
    pub fn speakers(mut self, threshold_dbov: u8, interval: Duration) -> Self {
        self.options.speaker_threshold_dbov = threshold_dbov;
        self.options.speaker_interval = interval;
        self
    }

    /// Sets [`ServerOptions::resume_buffer`] (at least 16 frames; checked by [`start`](Self::start)).
    pub fn resume_buffer(mut self, frames: usize) -> Self {
        self.options.resume_buffer = frames;
        self
    }

    /// Sets [`ServerOptions::reconnect_after_shutdown`].
    pub fn reconnect_after_shutdown(mut self, on: bool) -> Self {
        self.options.reconnect_after_shutdown = on;
        self
    }

    /// Serves `wss://` with this certificate and key ([`ServerOptions::tls`]).
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.options.tls = Some(identity);
        self
    }

    /// Sets [`ServerOptions::auto_reject_busy`].
    pub fn auto_reject_busy(mut self, on: bool) -> Self {
        self.options.auto_reject_busy = on;
        self
    }

    /// Sets [`ServerOptions::embedded_recorder`].
    pub fn embedded_recorder(mut self, on: bool) -> Self {
        self.options.embedded_recorder = on;
        self
    }

    /// Sets [`ServerOptions::recording_dir`].
    pub fn recording_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.options.recording_dir = dir.into();
        self
    }

    /// Sets [`ServerOptions::auto_record`]: every new room records from its start.
    pub fn auto_record(mut self, options: crate::model::RecordingOptions) -> Self {
        self.options.auto_record = Some(options);
        self
    }

    /// Sets [`ServerOptions::recorder_start_timeout`].
    pub fn recorder_start_timeout(mut self, timeout: Duration) -> Self {
        self.options.recorder_start_timeout = timeout;
        self
    }

    /// Adds a webhook URL ([`ServerOptions::webhook_urls`]).
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.options.webhook_urls.push(url.into());
        self
    }

    /// Sets [`ServerOptions::webhook_queue`].
    pub fn webhook_queue(mut self, events: usize) -> Self {
        self.options.webhook_queue = events;
        self
    }

    /// Sets [`ServerOptions::webhook_timeout`] and [`ServerOptions::webhook_attempts`].
    pub fn webhook_retries(mut self, timeout: Duration, attempts: u32) -> Self {
        self.options.webhook_timeout = timeout;
        self.options.webhook_attempts = attempts;
        self
    }

    /// Sets [`ServerOptions::drain_delay`].
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.options.drain_delay = delay;
        self
    }

    /// Sets [`ServerOptions::hold_offline_invitations`].
    pub fn hold_offline_invitations(mut self, on: bool) -> Self {
        self.options.hold_offline_invitations = on;
        self
    }

    /// Checks the options ([`ServerOptions::validate`]), then starts listening and serving.
    /// Returns once the socket is bound.
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        self.options.validate()?;
        let secret = match (&self.options.secret, self.options.development) {
            (Some(secret), _) if secret.len() < MIN_SECRET_LEN => {
                return Err(ServerError::WeakSecret);
            }
            (Some(secret), _) => secret.clone(),
            (None, true) => random_secret(),
            (None, false) => return Err(ServerError::NoSecret),
        };
        let tls = match &self.options.tls {
            Some(identity) => Some(tokio_rustls::TlsAcceptor::from(
                crate::tls::server_config(&identity.cert_pem, &identity.key_pem)
                    .map_err(|reason| ServerError::Tls { reason })?,
            )),
            None => None,
        };
        let listener = TcpListener::bind(&self.bind)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.bind.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.bind.clone(),
            source,
        })?;
        let limits = &self.options.limits;
        let config = HubConfig {
            room_prefix: room_prefix(),
            invite_timeout_ms: millis(self.options.invite_timeout).max(1),
            auto_reject_busy: self.options.auto_reject_busy,
            hold_offline_invitations: self.options.hold_offline_invitations,
            secret: secret.clone(),
            max_rooms: limits.max_rooms,
            max_participants: limits.max_participants,
            max_connections_per_user: limits.max_connections_per_user,
            resume_secret: {
                let mut bytes = vec![0u8; 32];
                getrandom::fill(&mut bytes).expect("the operating system's random source works");
                bytes
            },
            grace_ms: millis(self.options.grace_period),
            outbox_capacity: self.options.resume_buffer,
            max_token_lifetime_ms: millis(limits.max_token_lifetime),
            max_bans: limits.max_bans,
            embedded_recorder: self.options.embedded_recorder && self.recorder.is_some(),
            recorder_start_timeout_ms: millis(self.options.recorder_start_timeout).max(1),
            auto_record: self.options.auto_record.clone(),
            speakers: hub::speakers::SpeakerConfig {
                threshold_dbov: self.options.speaker_threshold_dbov,
                interval_ms: millis(self.options.speaker_interval),
            },
        };
        let workers = match self.options.media_workers {
            0 => sfu::workers::default_count(),
            n => n,
        };
        let media_port = sfu::port::MediaPort::bind(
            self.options.media_bind,
            workers,
            self.options.media_tcp_bind,
        )
        .map(Arc::new)
        .map_err(|source| ServerError::Bind {
            addr: self.options.media_bind.to_string(),
            source,
        })?;
        tracing::info!(
            udp = ?media_port.udp_addrs(),
            tcp = ?media_port.tcp_addr(),
            "media port bound"
        );
        let peer_settings = crate::media::PeerSettings {
            bind: media_port.udp_addrs()[0],
            public_ips: self.options.media_public_ips.clone(),
            shared: Some(media_port.clone()),
            tcp: false,
        };
        let embedded = match &self.recorder {
            Some(run) if self.options.embedded_recorder => Some(shell::EmbeddedRecorder {
                target: recorder_target(addr, &self.options, &secret),
                run: run.clone(),
            }),
            _ => None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (state, task) = shell::start(
            listener,
            Hub::new(config),
            self.options,
            shell::Media {
                peers: peer_settings,
                workers,
                port: media_port.clone(),
            },
            shell::Access {
                tls: tls.clone(),
                secret: secret.clone(),
            },
            embedded,
            stop_rx,
        );
        tracing::info!(%addr, tls = tls.is_some(), "jrtc server listening");
        Ok(ServerHandle {
            addr,
            media_port,
            tls: tls.is_some(),
            secret,
            stop: stop_tx,
            task: Some(task),
            state,
        })
    }
}

/// A running server. Dropping it stops the server without waiting; [`ServerHandle::shutdown`]
/// stops it in order and waits.
pub struct ServerHandle {
    addr: SocketAddr,
    media_port: Arc<sfu::port::MediaPort>,
    tls: bool,
    secret: Vec<u8>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    state: Arc<State>,
}

impl ServerHandle {
    /// The URL clients connect to: `ws://`, or `wss://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }

    /// The UDP ports media goes through, one per media worker ([`ServerOptions::media_bind`],
    /// [`ServerOptions::media_workers`]): all of a room's connections use its worker's.
    pub fn media_udp_addrs(&self) -> Vec<SocketAddr> {
        self.media_port.udp_addrs().to_vec()
    }

    /// The TCP port for ICE over TCP ([`ServerOptions::media_tcp_bind`]), if there is one.
    pub fn media_tcp_addr(&self) -> Option<SocketAddr> {
        self.media_port.tcp_addr()
    }

    /// The base URL of the server's HTTP routes on the same port: `http://` (or `https://`
    /// with TLS) and the address: `/healthz`, `/readyz`, `/metrics` and the server API under
    /// `/api/` (`docs/api.md`).
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The call page's URL (the server's root), when this server serves it
    /// ([`ServerOptions::call_page`]).
    pub fn call_page_url(&self) -> Option<String> {
        self.state
            .call_page()
            .then(|| format!("{}/", self.http_url()))
    }

    /// Connections not logged in yet, and how many of them were closed to make room for newer
    /// ones since the start ([`Limits::max_unauthenticated`]).
    pub fn waiting_connections(&self) -> (usize, u64) {
        self.state.waiting_connections()
    }

    /// Refuses the tokens `revocation` covers from now on and ends the sessions logged in with
    /// one (reason [`TokenRevoked`](crate::Reason::TokenRevoked)). Revocations live in memory:
    /// a restart forgets them (a restarted server's tokens should come from a new secret or a
    /// backend that no longer mints them).
    /// Returns how many sessions ended; refused (nothing done) with
    /// [`ServerError::Refused`] when the revocation names no valid token id or user id, or the
    /// server holds as many revocations as it allows (100,000).
    pub fn revoke(&self, revocation: crate::auth::Revocation) -> Result<usize, ServerError> {
        self.state
            .revoke(revocation)
            .map_err(|refusal| ServerError::Refused {
                code: refusal.code,
                message: refusal.message,
            })
    }

    /// Signs `token` with this server's secret, for a client to log in with.
    pub fn mint(&self, token: &AccessToken) -> Result<String, TokenError> {
        token.sign(&self.secret)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now (logged in or not).
    pub fn connection_count(&self) -> usize {
        self.state.connection_count()
    }

    /// Members whose media the SFU handles now.
    pub fn media_peer_count(&self) -> usize {
        self.state.sfu().actor_count()
    }

    /// Peer connections on the media port now; 0 once no member has media.
    pub fn media_port_connections(&self) -> usize {
        self.media_port.connections()
    }

    /// Tasks alive on the SFU's worker threads (member actors, peer-connection drivers, track
    /// readers; not the media port's readers, which stay); 0 once no member has media.
    pub fn media_task_count(&self) -> usize {
        let readers = self.media_port.readers();
        self.state.sfu().task_count().saturating_sub(readers)
    }

    /// Recorders connected and taking jobs (recorder processes, and the embedded one once it
    /// started).
    pub fn recorder_count(&self) -> usize {
        self.state.recorder_count()
    }

    /// Rooms alive now.
    pub fn room_count(&self) -> usize {
        self.state.room_count()
    }

    /// Drains the server: stops accepting, tells every client `goodbye` (reason
    /// `server_shutdown`, with `reconnect` as [`ServerOptions::reconnect_after_shutdown`] says),
    /// gives each connection a bounded time (1 s) to take it, and waits until all server tasks
    /// are done.
    pub async fn shutdown(mut self) {
        self.state.start_draining();
        let delay = self.state.drain_delay();
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "draining: /readyz says 503"
            );
            tokio::time::sleep(delay).await;
        }
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // The last events (members leaving as the server stops) reach the backend, within a
        // bound: a dead receiver does not hold the shutdown.
        let webhooks = futures::future::join_all(self.state.close_webhooks());
        let _ = tokio::time::timeout(WEBHOOK_FLUSH, webhooks).await;
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// How the server's own recorder reaches it: over loopback (the bound address's family when
/// bound to every address), `wss://localhost` trusting the server's own certificate with TLS.
fn recorder_target(addr: SocketAddr, options: &ServerOptions, secret: &[u8]) -> RecorderTarget {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let (url, cert_pem) = match &options.tls {
        // The certificate must name `localhost` for the embedded recorder.
        Some(identity) => (
            format!("wss://localhost:{}", addr.port()),
            Some(identity.cert_pem.clone()),
        ),
        None => (format!("ws://{}", SocketAddr::new(ip, addr.port())), None),
    };
    RecorderTarget {
        url,
        secret: secret.to_vec(),
        dir: options.recording_dir.clone(),
        cert_pem,
    }
}

/// How long a shutdown waits for the webhooks still queued.
const WEBHOOK_FLUSH: Duration = Duration::from_secs(5);

/// A duration in the core's milliseconds (saturating: a huge option means "no limit").
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An unguessable prefix for server-made room ids.
fn room_prefix() -> String {
    format!("r{}-", crate::auth::random_hex::<6>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_recorder_connects_over_loopback_or_to_localhost_with_tls() {
        let mut options = ServerOptions {
            recording_dir: "rec".into(),
            ..Default::default()
        };
        let target = |addr: &str, options: &ServerOptions| {
            recorder_target(addr.parse().unwrap(), options, b"secret")
        };
        let plain = target("0.0.0.0:7600", &options);
        assert_eq!(plain.url, "ws://127.0.0.1:7600");
        assert_eq!(
            (plain.secret.as_slice(), plain.cert_pem),
            (&b"secret"[..], None)
        );
        assert_eq!(plain.dir, std::path::PathBuf::from("rec"));
        assert_eq!(target("[::]:7600", &options).url, "ws://[::1]:7600");
        assert_eq!(target("10.0.0.2:7600", &options).url, "ws://10.0.0.2:7600");
        options.tls = Some(TlsIdentity::from_pem("cert", "key"));
        let tls = target("0.0.0.0:7600", &options);
        assert_eq!(tls.url, "wss://localhost:7600");
        assert_eq!(tls.cert_pem.as_deref(), Some(&b"cert"[..]));
    }
}

//! The signaling server: embeddable ([`Server::builder`]) and run by the `jrtc-server` binary.
//!
//! The async shell here accepts WebSocket connections and moves frames; all decisions are taken
//! by the sans-IO hub (`hub.rs`) and its rooms (`room.rs`).

mod conn;
mod forward;
pub(crate) mod hub;
mod invites;
mod limits;
mod media;
mod options;
#[cfg(test)]
mod proptests;
pub(crate) mod room;
mod room_media;
#[cfg(any(test, feature = "internals"))]
pub(crate) mod sim;
mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::{AccessToken, MIN_SECRET_LEN, TokenError, random_secret};
use crate::model::MAX_INVITE_TIMEOUT_MS;
use crate::model::Reason;
use crate::protocol::{self, ServerFrame};
use hub::{ConnId, Hub, HubConfig, Input, Millis, Output};
pub use options::{Limits, ServerError, ServerOptions};

/// The embeddable server: `Server::builder().bind("127.0.0.1:0").start().await`.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with default options, bound to `127.0.0.1:0` (a free loopback port).
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            bind: "127.0.0.1:0".into(),
            options: ServerOptions::default(),
        }
    }
}

/// Configures and starts a [`Server`].
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    bind: String,
    options: ServerOptions,
}

impl ServerBuilder {
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

    /// Where the SFU's peer connections bind (default `127.0.0.1:0`), and the addresses to
    /// announce in ICE candidates instead of the bound one (for a server behind NAT).
    pub fn media_addresses(mut self, bind: std::net::SocketAddr, public_ips: Vec<String>) -> Self {
        self.options.media_bind = bind;
        self.options.media_public_ips = public_ips;
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

    /// Sets [`ServerOptions::outbound_queue`] (at least 1).
    pub fn outbound_queue(mut self, frames: usize) -> Self {
        self.options.outbound_queue = frames.max(1);
        self
    }

    /// Sets [`ServerOptions::invite_timeout`] (at most 10 minutes).
    pub fn invite_timeout(mut self, timeout: Duration) -> Self {
        self.options.invite_timeout = timeout.min(Duration::from_millis(MAX_INVITE_TIMEOUT_MS));
        self
    }

    /// Sets [`ServerOptions::auto_reject_busy`].
    pub fn auto_reject_busy(mut self, on: bool) -> Self {
        self.options.auto_reject_busy = on;
        self
    }

    /// Sets [`ServerOptions::hold_offline_invitations`].
    pub fn hold_offline_invitations(mut self, on: bool) -> Self {
        self.options.hold_offline_invitations = on;
        self
    }

    /// Starts listening and serving. Returns once the socket is bound.
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        let secret = match (&self.options.secret, self.options.development) {
            (Some(secret), _) if secret.len() < MIN_SECRET_LEN => {
                return Err(ServerError::WeakSecret);
            }
            (Some(secret), _) => secret.clone(),
            (None, true) => random_secret(),
            (None, false) => return Err(ServerError::NoSecret),
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
            invite_timeout_ms: (self.options.invite_timeout.as_millis() as u64).max(1),
            auto_reject_busy: self.options.auto_reject_busy,
            hold_offline_invitations: self.options.hold_offline_invitations,
            secret: secret.clone(),
            max_rooms: limits.max_rooms,
            max_participants: limits.max_participants,
            max_connections_per_user: limits.max_connections_per_user,
        };
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let peer_settings = crate::media::PeerSettings {
            bind: self.options.media_bind,
            public_ips: self.options.media_public_ips.clone(),
        };
        let workers = match self.options.media_workers {
            0 => workers::default_count(),
            n => n,
        };
        let workers = workers::MediaWorkers::new(workers);
        let state = Arc::new_cyclic(|weak| State {
            core: Mutex::new(Core {
                hub: Hub::new(config),
                conns: HashMap::new(),
            }),
            options: self.options,
            deadline: deadline_tx,
            sfu: Arc::new(media::Sfu::new(peer_settings, weak.clone(), workers)),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let timer = tokio::spawn(timer(state.clone(), deadline_rx));
        let task = tokio::spawn(accept_loop(listener, state.clone(), stop_rx, timer));
        tracing::info!(%addr, "jrtc server listening");
        Ok(ServerHandle {
            addr,
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
    secret: Vec<u8>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    state: Arc<State>,
}

impl ServerHandle {
    /// The `ws://` URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
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
        self.state.core().conns.len()
    }

    /// Members whose media the SFU handles now.
    pub fn media_peer_count(&self) -> usize {
        self.state.sfu.actor_count()
    }

    /// Tasks alive on the SFU's worker threads (member actors, peer-connection drivers, track
    /// readers); 0 once no member has media.
    pub fn media_task_count(&self) -> usize {
        self.state.sfu.task_count()
    }

    /// Rooms alive now.
    pub fn room_count(&self) -> usize {
        self.state.core().hub.room_count()
    }

    /// Stops accepting, tells every client `goodbye` (reason `server_shutdown`), closes every
    /// connection and waits until all server tasks are done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
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

/// A connection's outbound queue entry.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// An encoded frame.
    Frame(Utf8Bytes),
    /// Say goodbye with this reason and close.
    Close(Reason),
}

#[derive(Debug)]
struct ConnEntry {
    tx: mpsc::Sender<Outgoing>,
    /// Closes the connection at once (slow consumer).
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug)]
pub(crate) struct State {
    core: Mutex<Core>,
    options: ServerOptions,
    /// The core's next deadline, watched by the timer task.
    deadline: watch::Sender<Option<Millis>>,
    /// The media shell.
    sfu: Arc<media::Sfu>,
}

struct Core {
    hub: Hub,
    conns: HashMap<ConnId, ConnEntry>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("conns", &self.conns.len())
            .finish()
    }
}

impl State {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one frame to one connection (from outside the core: the media shell).
    pub(crate) fn send_to(&self, conn: ConnId, frame: ServerFrame) {
        self.core().deliver(conn, encode(&frame));
    }

    /// Feeds one input to the hub and delivers what it says, under one lock so that every
    /// connection receives room events in the room's order.
    pub(crate) fn handle(&self, input: Input) {
        let mut core = self.core();
        let outputs = core.hub.handle(unix_millis(), input);
        let next = core.hub.next_deadline();
        self.deadline
            .send_if_modified(|d| std::mem::replace(d, next) != next);
        for output in outputs {
            match output {
                Output::Send { to, frame } => core.deliver(to, encode(&frame)),
                Output::Broadcast { to, frame } => {
                    let text = encode(&frame);
                    for conn in to {
                        core.deliver(conn, text.clone());
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(entry) = core.conns.get(&conn) {
                        let _ = entry.tx.try_send(Outgoing::Close(reason));
                    }
                }
                Output::Media(command) => self.sfu.dispatch(command),
            }
        }
    }
}

impl Core {
    fn deliver(&mut self, conn: ConnId, text: Utf8Bytes) {
        let Some(entry) = self.conns.get_mut(&conn) else {
            return;
        };
        if entry.tx.try_send(Outgoing::Frame(text)).is_err()
            && let Some(kill) = entry.kill.take()
        {
            tracing::warn!(conn, "closing a connection that does not read its events");
            let _ = kill.send(());
        }
    }
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(protocol::encode(frame))
}

/// Wakes the core when its next deadline (an invitation's expiry) is due.
async fn timer(state: Arc<State>, mut deadline: watch::Receiver<Option<Millis>>) {
    loop {
        let next = *deadline.borrow_and_update();
        let wait = async {
            match next {
                Some(at) => {
                    let wait = at.saturating_sub(unix_millis());
                    tokio::time::sleep(Duration::from_millis(wait)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => state.handle(Input::Tick),
            changed = deadline.changed() => if changed.is_err() { return },
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    timer: tokio::task::JoinHandle<()>,
) {
    let mut tasks = JoinSet::new();
    let mut next_conn: ConnId = 0;
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    next_conn += 1;
                    let _ = socket.set_nodelay(true);
                    tasks.spawn(conn::serve(next_conn, socket, peer, state.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    timer.abort();
    let _ = timer.await;
    tracing::info!("jrtc server stopped");
}

/// Resolves once the server is told to stop.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The core's clock: milliseconds since the Unix epoch.
fn unix_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// An unguessable prefix for server-made room ids.
fn room_prefix() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("r{hex}-")
}

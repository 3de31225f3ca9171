//! The signaling server: embeddable ([`Server::builder`]) and run by the `jrtc-server` binary.
//!
//! The async shell here accepts WebSocket connections and moves frames; all decisions are taken
//! by the sans-IO hub (`hub.rs`) and its rooms (`room.rs`).

mod conn;
pub(crate) mod hub;
mod invites;
#[cfg(test)]
mod proptests;
pub(crate) mod room;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::model::MAX_INVITE_TIMEOUT_MS;
use crate::model::Reason;
use crate::protocol::{self, ServerFrame};
use hub::{ConnId, Hub, HubConfig, Input, Millis, Output};

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
}

/// Server settings. `ServerOptions::default()` suits tests and small deployments.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// How long a new connection may take to send a valid `hello`.
    pub handshake_timeout: Duration,
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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            handshake_timeout: Duration::from_secs(10),
            outbound_queue: 1024,
            invite_timeout: Duration::from_secs(30),
            auto_reject_busy: false,
            hold_offline_invitations: false,
        }
    }
}

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

    /// Sets [`ServerOptions::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.options.handshake_timeout = timeout;
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
        let prefix = format!(
            "r{:08x}-",
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish() as u32
        );
        let config = HubConfig {
            room_prefix: prefix,
            invite_timeout_ms: (self.options.invite_timeout.as_millis() as u64).max(1),
            auto_reject_busy: self.options.auto_reject_busy,
            hold_offline_invitations: self.options.hold_offline_invitations,
        };
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let state = Arc::new(State {
            core: Mutex::new(Core {
                hub: Hub::new(config),
                conns: HashMap::new(),
            }),
            options: self.options,
            started: Instant::now(),
            deadline: deadline_tx,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let timer = tokio::spawn(timer(state.clone(), deadline_rx));
        let task = tokio::spawn(accept_loop(listener, state.clone(), stop_rx, timer));
        tracing::info!(%addr, "jrtc server listening");
        Ok(ServerHandle {
            addr,
            stop: stop_tx,
            task: Some(task),
            state,
        })
    }
}

/// A running server. Dropping it stops the server without waiting; [`ServerHandle::shutdown`]
/// stops it in order and waits.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    state: Arc<State>,
}

impl ServerHandle {
    /// The `ws://` URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now (logged in or not).
    pub fn connection_count(&self) -> usize {
        self.state.core().conns.len()
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
    /// The core's clock starts here.
    started: Instant,
    /// The core's next deadline, watched by the timer task.
    deadline: watch::Sender<Option<Millis>>,
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

    /// Feeds one input to the hub and delivers what it says, under one lock so that every
    /// connection receives room events in the room's order.
    pub(crate) fn handle(&self, input: Input) {
        let mut core = self.core();
        let now = self.started.elapsed().as_millis() as Millis;
        let outputs = core.hub.handle(now, input);
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
                    tokio::time::sleep_until((state.started + Duration::from_millis(at)).into())
                        .await
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

//! The signaling server: embeddable ([`Server::builder`]) and run by the `jrtc-server` binary.
//!
//! The async shell here accepts WebSocket connections and moves frames; all decisions are taken
//! by the sans-IO hub (`hub.rs`) and its rooms (`room.rs`).

mod conn;
pub(crate) mod hub;
#[cfg(test)]
mod proptests;
pub(crate) mod room;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::model::Reason;
use crate::protocol::{self, ServerFrame};
use hub::{ConnId, Hub, Input, Output};

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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            handshake_timeout: Duration::from_secs(10),
            outbound_queue: 1024,
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
        let state = Arc::new(State {
            core: Mutex::new(Core {
                hub: Hub::new(prefix),
                conns: HashMap::new(),
            }),
            options: self.options,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state.clone(), stop_rx));
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
        let outputs = core.hub.handle(input);
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

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
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
    tracing::info!("jrtc server stopped");
}

/// Resolves once the server is told to stop.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

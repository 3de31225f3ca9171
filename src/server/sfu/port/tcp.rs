//! ICE over TCP on one shared listening port, for clients whose network blocks UDP.
//!
//! Every connection announces a passive TCP candidate on the port. A client connects and sends
//! its first ICE check framed as RFC 4571 says (a two-byte length, then the STUN message); the
//! check's USERNAME names the connection (see [`super::routes`]), and the stream, with the
//! bytes read so far put back in front, is handed to that connection's listener. From then on
//! the connection's driver reads and writes the stream itself.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use webrtc::runtime::{AsyncTcpListener, AsyncTcpStream};

use super::routes::{Routes, binding_request_ufrag, connection_key};
use crate::server::sfu::forward::lock;

/// How long a new stream may take to send its first check.
const FIRST_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest first frame read (an ICE check is a few hundred bytes).
const FIRST_FRAME_MAX: usize = 1024;
/// Streams that may be waiting for their first check at once; more are closed at once.
const MAX_HANDSHAKES: usize = 256;
/// Streams a connection's listener holds before its driver accepts them.
const ACCEPT_QUEUE: usize = 8;

/// What the TCP port counted since it was bound.
#[derive(Debug, Default)]
pub(crate) struct TcpCounters {
    /// Streams handed to a connection.
    pub(crate) accepted: AtomicU64,
    /// Streams closed before reaching one (no or bad first check, unknown username, too many
    /// waiting).
    pub(crate) refused: AtomicU64,
}

type Accepted = (tokio::net::TcpStream, Vec<u8>);

/// A connection's listeners, one per local address: where its streams go.
type Listeners = Vec<(SocketAddr, mpsc::Sender<Accepted>)>;

/// The shared TCP listener and the connections on it.
#[derive(Debug)]
pub(crate) struct SharedTcp {
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    routes: Mutex<Routes<Listeners>>,
    handshakes: AtomicUsize,
    pub(crate) counters: TcpCounters,
}

impl SharedTcp {
    /// Binds the port (within a tokio runtime).
    pub(crate) fn bind(address: SocketAddr) -> io::Result<Arc<SharedTcp>> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local = listener.local_addr()?;
        Ok(Arc::new(SharedTcp {
            listener,
            local,
            routes: Mutex::default(),
            handshakes: AtomicUsize::new(0),
            counters: TcpCounters::default(),
        }))
    }

    /// The port's address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A listener for the connection `ufrag` on local address `ip`.
    pub(crate) fn listen(self: &Arc<Self>, ufrag: &str, ip: IpAddr) -> ConnectionTcp {
        let ip = if self.local.ip().is_unspecified() {
            ip
        } else {
            self.local.ip()
        };
        let local = SocketAddr::new(ip, self.local.port());
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        lock(&self.routes).add_to(ufrag, (local, tx), |(l, _)| *l == local);
        ConnectionTcp {
            shared: self.clone(),
            ufrag: ufrag.to_owned(),
            local,
            accepted: tokio::sync::Mutex::new(rx),
        }
    }

    /// Accepts streams until the listener fails for good.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors, a connection reset before it was accepted: go on.
                Err(error) => {
                    tracing::debug!(%error, "media TCP accept failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            if self.handshakes.fetch_add(1, Ordering::AcqRel) >= MAX_HANDSHAKES {
                self.handshakes.fetch_sub(1, Ordering::AcqRel);
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let shared = self.clone();
            tokio::spawn(async move {
                let routed = tokio::time::timeout(FIRST_CHECK_TIMEOUT, shared.first_check(stream))
                    .await
                    .ok()
                    .flatten();
                shared.handshakes.fetch_sub(1, Ordering::AcqRel);
                let counter = match routed {
                    Some(()) => &shared.counters.accepted,
                    None => &shared.counters.refused,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            });
        }
    }

    /// Reads `stream`'s first frame and hands the stream to the connection it names.
    async fn first_check(&self, mut stream: tokio::net::TcpStream) -> Option<()> {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await.ok()?;
        let len = u16::from_be_bytes(length) as usize;
        if len > FIRST_FRAME_MAX {
            return None;
        }
        let mut read = vec![0u8; 2 + len];
        read[..2].copy_from_slice(&length);
        stream.read_exact(&mut read[2..]).await.ok()?;
        let ufrag = connection_key(binding_request_ufrag(&read[2..])?);
        let local = stream.local_addr().ok()?;
        let sender = {
            let routes = lock(&self.routes);
            let listeners = routes.get(ufrag)?;
            listeners
                .iter()
                .find(|(l, _)| l.ip() == local.ip())
                .or_else(|| listeners.first())?
                .1
                .clone()
        };
        sender.try_send((stream, read)).ok()
    }
}

/// One connection's view of the TCP port: the streams whose first check named it.
#[derive(Debug)]
pub(crate) struct ConnectionTcp {
    shared: Arc<SharedTcp>,
    ufrag: String,
    local: SocketAddr,
    accepted: tokio::sync::Mutex<mpsc::Receiver<Accepted>>,
}

impl Drop for ConnectionTcp {
    fn drop(&mut self) {
        lock(&self.shared.routes)
            .take_from(&self.ufrag, |(l, _): &(SocketAddr, _)| *l == self.local);
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl AsyncTcpListener for ConnectionTcp {
    fn accept<'a>(&'a self) -> Boxed<'a, io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> {
        Box::pin(async move {
            let (stream, first) = self
                .accepted
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            let local_addr = stream.local_addr()?;
            let peer_addr = stream.peer_addr()?;
            let (read_half, write_half) = stream.into_split();
            let stream = ConnectionStream {
                first: Mutex::new(Some(first)),
                read_half,
                write_half,
                local_addr,
                peer_addr,
            };
            Ok((Arc::new(stream) as Arc<dyn AsyncTcpStream>, peer_addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// An accepted stream, with the bytes read to route it put back in front.
#[derive(Debug)]
struct ConnectionStream {
    first: Mutex<Option<Vec<u8>>>,
    read_half: OwnedReadHalf,
    write_half: OwnedWriteHalf,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
}

impl AsyncTcpStream for ConnectionStream {
    fn read<'a, 'b>(&'a self, buf: &'b mut [u8]) -> Boxed<'b, io::Result<usize>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            if let Some(mut first) = lock(&self.first).take() {
                let n = first.len().min(buf.len());
                buf[..n].copy_from_slice(&first[..n]);
                if n < first.len() {
                    first.drain(..n);
                    *lock(&self.first) = Some(first);
                }
                return Ok(n);
            }
            loop {
                self.read_half.readable().await?;
                match self.read_half.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            }
        })
    }

    fn write_all<'a, 'b>(&'a self, buf: &'b [u8]) -> Boxed<'b, io::Result<()>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let mut remaining = buf;
            while !remaining.is_empty() {
                self.write_half.writable().await?;
                match self.write_half.try_write(remaining) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => remaining = &remaining[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer_addr)
    }
}

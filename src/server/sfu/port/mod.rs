//! The media port: a UDP socket per media worker that the peer connections on that worker
//! share (and, for clients whose network blocks UDP, one TCP port for ICE over TCP), instead of
//! a socket per connection.
//!
//! The `webrtc` crate drives each connection through a [`Runtime`], which makes its sockets.
//! A server connection gets a [`PortRuntime`]: the tokio runtime, except that its sockets are
//! views of the shared ones (`udp.rs`, `tcp.rs`). The connection's ICE credentials are minted
//! here, so the first check a client sends names its connection (`routes.rs`). The server is
//! ICE-lite: it answers checks and sends none, so all it needs of a client is its checks.

mod routes;
mod tcp;
mod udp;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

use crate::media::{SharedConnection, SharedPort};
use crate::server::sfu::forward::lock;
use tcp::SharedTcp;
use udp::SharedUdp;

/// The server's media ports: a UDP socket per media worker (read on that worker, where the
/// connections it carries run) and the TCP port. Dropping it stops their readers.
#[derive(Debug)]
pub(crate) struct MediaPort {
    udp: Vec<Mutex<UdpSlot>>,
    /// The UDP sockets' addresses, by worker.
    udp_addrs: Vec<SocketAddr>,
    tcp: Option<Arc<SharedTcp>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// A worker's UDP socket: bound at the start (so its port is known and taken), read from its
/// first connection on (on the worker's runtime).
#[derive(Debug)]
enum UdpSlot {
    Bound(std::net::UdpSocket),
    Reading(Arc<SharedUdp>),
    /// Could not be put on its runtime (the error was returned to that connection).
    Failed,
}

/// What the media port counted since it was bound (the metrics read it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PortCounts {
    /// Datagrams read on the UDP ports.
    pub(crate) received: u64,
    /// Datagrams no connection claimed.
    pub(crate) unrouted: u64,
    /// Datagrams dropped because their connection was not reading fast enough.
    pub(crate) overflowed: u64,
    /// TCP streams handed to a connection.
    pub(crate) tcp_accepted: u64,
    /// TCP streams closed before reaching one.
    pub(crate) tcp_refused: u64,
}

impl MediaPort {
    /// Binds `workers` UDP sockets (at `udp`'s port and the ones after it, or free ports when
    /// it is 0) and, if asked, the TCP port at `tcp`, whose streams are then accepted on the
    /// current tokio runtime.
    pub(crate) fn bind(
        udp: SocketAddr,
        workers: usize,
        tcp: Option<SocketAddr>,
    ) -> io::Result<MediaPort> {
        let mut sockets = Vec::new();
        let mut udp_addrs = Vec::new();
        for i in 0..workers.max(1) {
            let mut address = udp;
            if udp.port() != 0 {
                let port = u16::try_from(usize::from(udp.port()) + i)
                    .map_err(|_| io::Error::other("the media ports run past 65535"))?;
                address.set_port(port);
            }
            let socket = SharedUdp::bind(address)?;
            udp_addrs.push(socket.local_addr()?);
            sockets.push(Mutex::new(UdpSlot::Bound(socket)));
        }
        let tcp = tcp.map(SharedTcp::bind).transpose()?;
        let mut tasks = Vec::new();
        if let Some(tcp) = &tcp {
            tasks.push(tokio::spawn(tcp.clone().run()).abort_handle());
        }
        Ok(MediaPort {
            udp: sockets,
            udp_addrs,
            tcp,
            tasks: Mutex::new(tasks),
        })
    }

    /// The UDP ports' addresses, one per media worker.
    pub(crate) fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The TCP port's address, if there is one.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|t| t.local_addr())
    }

    /// The UDP socket of the worker the caller runs on (of the first, off the workers),
    /// started on the caller's runtime if it is not read yet.
    fn udp_here(&self) -> io::Result<Arc<SharedUdp>> {
        let i = super::workers::current().unwrap_or(0) % self.udp.len();
        let mut slot = lock(&self.udp[i]);
        match &*slot {
            UdpSlot::Reading(shared) => return Ok(shared.clone()),
            UdpSlot::Failed => return Err(io::Error::other("the media port could not start")),
            UdpSlot::Bound(_) => {}
        }
        let UdpSlot::Bound(socket) = std::mem::replace(&mut *slot, UdpSlot::Failed) else {
            unreachable!("matched above");
        };
        let shared = SharedUdp::from_std(socket)?;
        lock(&self.tasks).push(tokio::spawn(shared.clone().run()).abort_handle());
        *slot = UdpSlot::Reading(shared.clone());
        Ok(shared)
    }

    /// The UDP sockets being read.
    fn reading(&self) -> Vec<Arc<SharedUdp>> {
        self.udp
            .iter()
            .filter_map(|slot| match &*lock(slot) {
                UdpSlot::Reading(shared) => Some(shared.clone()),
                _ => None,
            })
            .collect()
    }

    /// The UDP sockets being read, each by a task on its worker.
    pub(crate) fn readers(&self) -> usize {
        self.reading().len()
    }

    /// Connections using the port now.
    pub(crate) fn connections(&self) -> usize {
        self.reading().iter().map(|u| u.connections()).sum()
    }

    /// What the port counted.
    pub(crate) fn counts(&self) -> PortCounts {
        let mut counts = PortCounts::default();
        for udp in self.reading() {
            let c = &udp.counters;
            counts.received += c.received.load(Ordering::Relaxed);
            counts.unrouted += c.unrouted.load(Ordering::Relaxed);
            counts.overflowed += c.overflowed.load(Ordering::Relaxed);
        }
        if let Some(tcp) = &self.tcp {
            counts.tcp_accepted = tcp.counters.accepted.load(Ordering::Relaxed);
            counts.tcp_refused = tcp.counters.refused.load(Ordering::Relaxed);
        }
        counts
    }
}

impl Drop for MediaPort {
    fn drop(&mut self) {
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }
}

impl SharedPort for MediaPort {
    fn connection(&self) -> io::Result<SharedConnection> {
        let udp = self.udp_here()?;
        let ufrag = random_ice_string(routes::UFRAG_LEN);
        Ok(SharedConnection {
            password: random_ice_string(24),
            runtime: Arc::new(PortRuntime {
                udp,
                tcp: self.tcp.clone(),
                ufrag: ufrag.clone(),
            }),
            ufrag,
            tcp: self.tcp.is_some(),
        })
    }
}

/// `len` random ICE characters (letters and digits: 5.95 bits each; 8 make a username
/// fragment of 47 bits, 24 a password of 142, above ICE's minimums of 24 and 128).
fn random_ice_string(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect()
}

/// The runtime of one connection on the port: tokio's, with the port's sockets.
#[derive(Debug)]
struct PortRuntime {
    udp: Arc<SharedUdp>,
    tcp: Option<Arc<SharedTcp>>,
    ufrag: String,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The runtime the port's connections delegate to (a unit value, borrowed for as long as a
/// future it returns lives).
static TOKIO: TokioRuntime = TokioRuntime;

impl Runtime for PortRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TOKIO.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // The driver bound a socket of its own on the connection's address; only that address
        // is kept (it names the interface when the port listens on all of them).
        let ip = socket.local_addr()?.ip();
        drop(socket);
        Ok(Arc::new(self.udp.connect(&self.ufrag, ip)))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        let ip = listener.local_addr()?.ip();
        drop(listener);
        let tcp = self
            .tcp
            .as_ref()
            .ok_or_else(|| io::Error::other("the media port has no TCP port"))?;
        Ok(Arc::new(tcp.listen(&self.ufrag, ip)))
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Boxed<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        TOKIO.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> Boxed<'a, io::Result<Vec<SocketAddr>>> {
        TOKIO.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Boxed<'static, ()> {
        TOKIO.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TOKIO.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TOKIO.block_on(future)
    }

    fn yield_now(&self) -> Boxed<'static, ()> {
        TOKIO.yield_now()
    }

    fn name(&self) -> &'static str {
        "jrtc-media-port"
    }
}

//! The media port: one UDP socket every peer connection of the server shares (and, for clients
//! whose network blocks UDP, one TCP port for ICE over TCP), instead of a socket per
//! connection.
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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

use crate::media::{SharedConnection, SharedPort};
use tcp::SharedTcp;
use udp::SharedUdp;

/// The server's media port(s), read by tasks on the runtime that bound them; dropping the port
/// stops them.
#[derive(Debug)]
pub(crate) struct MediaPort {
    udp: Arc<SharedUdp>,
    tcp: Option<Arc<SharedTcp>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// What the media port counted since it was bound (the metrics read it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PortCounts {
    /// Datagrams read on the UDP port.
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
    /// Binds the UDP port at `udp` and, if asked, the TCP port at `tcp`, and starts reading
    /// them on the current tokio runtime.
    pub(crate) fn bind(udp: SocketAddr, tcp: Option<SocketAddr>) -> io::Result<MediaPort> {
        let udp = SharedUdp::bind(udp)?;
        let tcp = tcp.map(SharedTcp::bind).transpose()?;
        let mut tasks = vec![tokio::spawn(udp.clone().run()).abort_handle()];
        if let Some(tcp) = &tcp {
            tasks.push(tokio::spawn(tcp.clone().run()).abort_handle());
        }
        Ok(MediaPort { udp, tcp, tasks })
    }

    /// The UDP port's address.
    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.udp.local_addr()
    }

    /// The TCP port's address, if there is one.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|t| t.local_addr())
    }

    /// Connections using the port now.
    pub(crate) fn connections(&self) -> usize {
        self.udp.connections()
    }

    /// What the port counted.
    pub(crate) fn counts(&self) -> PortCounts {
        let udp = &self.udp.counters;
        let (tcp_accepted, tcp_refused) = self.tcp.as_ref().map_or((0, 0), |t| {
            (
                t.counters.accepted.load(Ordering::Relaxed),
                t.counters.refused.load(Ordering::Relaxed),
            )
        });
        PortCounts {
            received: udp.received.load(Ordering::Relaxed),
            unrouted: udp.unrouted.load(Ordering::Relaxed),
            overflowed: udp.overflowed.load(Ordering::Relaxed),
            tcp_accepted,
            tcp_refused,
        }
    }
}

impl Drop for MediaPort {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl SharedPort for MediaPort {
    fn connection(&self) -> SharedConnection {
        let ufrag = random_ice_string(routes::UFRAG_LEN);
        SharedConnection {
            password: random_ice_string(24),
            runtime: Arc::new(PortRuntime {
                udp: self.udp.clone(),
                tcp: self.tcp.clone(),
                ufrag: ufrag.clone(),
            }),
            ufrag,
            tcp: self.tcp.is_some(),
        }
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

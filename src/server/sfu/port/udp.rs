//! The shared UDP socket and each connection's view of it.
//!
//! One task reads the socket in batches (recvmmsg, and GRO where the kernel coalesces) and puts
//! each datagram in the inbox of the connection [`Routes`] names; a connection's driver reads
//! its inbox through [`ConnectionUdp`], the `AsyncUdpSocket` its runtime gave it, and sends
//! straight on the shared socket (sendmsg, GSO when the driver batches a burst to one peer).

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use webrtc::runtime::{
    AsyncUdpSocket, BATCH_SIZE, EcnCodepoint, RecvMeta, Transmit, UdpSockRef, UdpSocketState,
};

use super::routes::Routes;
use crate::server::sfu::forward::lock;

/// Datagrams an inbox holds before it drops new ones (a driver that cannot keep up loses the
/// newest, as a full socket buffer would).
const INBOX_CAPACITY: usize = 1024;

/// The largest datagram read (anything larger is no WebRTC packet of ours).
const DATAGRAM_MAX: usize = 2048;

/// What the shared socket counted since it was bound.
#[derive(Debug, Default)]
pub(crate) struct UdpCounters {
    /// Datagrams read.
    pub(crate) received: AtomicU64,
    /// Datagrams no connection claimed (unknown source, unknown username).
    pub(crate) unrouted: AtomicU64,
    /// Datagrams dropped because their connection's inbox was full.
    pub(crate) overflowed: AtomicU64,
}

/// The shared socket and the connections on it.
pub(crate) struct SharedUdp {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    routes: Mutex<Routes<Vec<Arc<Inbox>>>>,
    pub(crate) counters: UdpCounters,
}

impl std::fmt::Debug for SharedUdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedUdp")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Datagrams for one connection's socket on one local address.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// The local address the connection's socket stands for (the port's, with the interface's
    /// address when the port is bound to all of them).
    local: SocketAddr,
    queue: Mutex<VecDeque<Datagram>>,
    waker: AtomicWaker,
}

#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    from: SocketAddr,
    ecn: Option<EcnCodepoint>,
}

impl SharedUdp {
    /// Binds a socket for a port (not yet read: see [`SharedUdp::from_std`]).
    pub(crate) fn bind(address: SocketAddr) -> io::Result<std::net::UdpSocket> {
        let socket = std::net::UdpSocket::bind(address)?;
        socket.set_nonblocking(true)?;
        grow_buffers(&socket);
        Ok(socket)
    }

    /// The port on `socket` (from [`SharedUdp::bind`]), registered with the current tokio
    /// runtime's reactor: its reader and its connections' drivers belong on that runtime.
    pub(crate) fn from_std(socket: std::net::UdpSocket) -> io::Result<Arc<SharedUdp>> {
        let io = tokio::net::UdpSocket::from_std(socket)?;
        let state = UdpSocketState::new(UdpSockRef::from(&io))?;
        let local = io.local_addr()?;
        Ok(Arc::new(SharedUdp {
            io,
            state,
            local,
            routes: Mutex::default(),
            counters: UdpCounters::default(),
        }))
    }

    /// Connections on the port.
    pub(crate) fn connections(&self) -> usize {
        lock(&self.routes).len()
    }

    /// A socket for the connection `ufrag` on local address `ip` (the port's own address when
    /// the port is bound to one).
    pub(crate) fn connect(self: &Arc<Self>, ufrag: &str, ip: IpAddr) -> ConnectionUdp {
        let ip = if self.local.ip().is_unspecified() {
            ip
        } else {
            self.local.ip()
        };
        let inbox = Arc::new(Inbox {
            local: SocketAddr::new(ip, self.local.port()),
            queue: Mutex::default(),
            waker: AtomicWaker::new(),
        });
        let local = inbox.local;
        lock(&self.routes).add_to(ufrag, inbox.clone(), |i: &Arc<Inbox>| i.local == local);
        ConnectionUdp {
            shared: self.clone(),
            ufrag: ufrag.to_owned(),
            inbox,
        }
    }

    /// Reads the socket until it fails for good, handing each datagram to its connection.
    pub(crate) async fn run(self: Arc<Self>) {
        let gro = self.state.gro_segments().max(1);
        let mut buffers = vec![vec![0u8; DATAGRAM_MAX * gro]; BATCH_SIZE];
        let mut meta = [RecvMeta::default(); BATCH_SIZE];
        loop {
            let read = {
                let mut slices: Vec<IoSliceMut<'_>> =
                    buffers.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                self.recv(&mut slices, &mut meta).await
            };
            match read {
                Ok(n) => self.deliver(&buffers[..n], &meta[..n]),
                Err(error) if transient(&error) => {}
                Err(error) => {
                    tracing::error!(%error, "the media port cannot be read; media stops");
                    return;
                }
            }
        }
    }

    async fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        loop {
            self.io.readable().await?;
            match self.io.try_io(tokio::io::Interest::READABLE, || {
                match self.state.recv(UdpSockRef::from(&self.io), bufs, meta)? {
                    0 => Err(io::ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                }
            }) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    fn deliver(&self, buffers: &[Vec<u8>], meta: &[RecvMeta]) {
        let mut routes = lock(&self.routes);
        for (buffer, meta) in buffers.iter().zip(meta) {
            let stride = if meta.stride == 0 {
                meta.len
            } else {
                meta.stride
            };
            if meta.len == 0 {
                // An empty datagram: nobody's.
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            for data in buffer[..meta.len].chunks(stride.max(1)) {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                let Some(inboxes) = routes.route(data, meta.addr) else {
                    self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let inbox = meta
                    .dst_ip
                    .and_then(|ip| inboxes.iter().find(|i| i.local.ip() == ip))
                    .or_else(|| inboxes.first());
                let Some(inbox) = inbox else {
                    self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if !inbox.push(Datagram {
                    data: data.to_vec(),
                    from: meta.addr,
                    ecn: meta.ecn,
                }) {
                    self.counters.overflowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The socket buffers asked for: every connection's media goes through this one socket, so the
/// kernel's default (about 200 KB, a few milliseconds of a busy server's traffic) would drop
/// bursts. The kernel caps the request at `net.core.rmem_max` / `wmem_max`; a busy server
/// raises those (docs/architecture.md, "The media port").
const SOCKET_BUFFER: libc::c_int = 8 << 20;

/// Asks for [`SOCKET_BUFFER`] bytes of receive and send buffer (best effort: the kernel takes
/// what its limits allow).
fn grow_buffers(socket: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt on a descriptor `socket` owns and keeps open for the call, with a
        // pointer to a c_int and that size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&SOCKET_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Errors a read may meet and go on after (an ICMP error reported on the socket, a signal).
fn transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    ) || error.raw_os_error() == Some(libc::EMSGSIZE)
}

impl Inbox {
    /// Queues `datagram` and wakes the reader; false if the inbox is full.
    fn push(&self, datagram: Datagram) -> bool {
        {
            let mut queue = lock(&self.queue);
            if queue.len() >= INBOX_CAPACITY {
                return false;
            }
            queue.push_back(datagram);
        }
        self.waker.wake();
        true
    }
}

/// One connection's socket: its inbox for reading, the shared socket for sending. Dropping it
/// (the connection closed or made its sockets again) takes it off the port.
#[derive(Debug)]
pub(crate) struct ConnectionUdp {
    shared: Arc<SharedUdp>,
    ufrag: String,
    inbox: Arc<Inbox>,
}

impl Drop for ConnectionUdp {
    fn drop(&mut self) {
        lock(&self.shared.routes)
            .take_from(&self.ufrag, |i: &Arc<Inbox>| Arc::ptr_eq(i, &self.inbox));
    }
}

impl AsyncUdpSocket for ConnectionUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inbox.local)
    }

    fn max_gso_segments(&self) -> usize {
        self.shared.state.max_gso_segments()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let shared = &self.shared;
        // From the connection's own address when the port listens on all of them.
        let src_ip = shared
            .local
            .ip()
            .is_unspecified()
            .then_some(self.inbox.local.ip());
        let transmit = Transmit {
            destination: transmit.destination,
            ecn: transmit.ecn,
            contents: transmit.contents,
            segment_size: transmit.segment_size,
            src_ip: transmit.src_ip.or(src_ip),
        };
        loop {
            match shared.io.poll_send_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            // Through `try_io`, so tokio learns when the socket stops being writable.
            match shared.io.try_io(tokio::io::Interest::WRITABLE, || {
                shared
                    .state
                    .try_send(UdpSockRef::from(&shared.io), &transmit)
                    .map(|()| transmit.contents.len())
            }) {
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut queue = lock(&self.inbox.queue);
        if queue.is_empty() {
            // Registered under the queue's lock: a datagram pushed after this wakes it.
            self.inbox.waker.register(cx.waker());
            return Poll::Pending;
        }
        let mut n = 0;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
            let Some(datagram) = queue.pop_front() else {
                break;
            };
            let len = datagram.data.len().min(buf.len());
            buf[..len].copy_from_slice(&datagram.data[..len]);
            let mut m = RecvMeta::default();
            m.addr = datagram.from;
            m.len = len;
            m.stride = len.max(1);
            m.ecn = datagram.ecn;
            m.dst_ip = Some(self.inbox.local.ip());
            *meta = m;
            n += 1;
        }
        Poll::Ready(Ok(n))
    }
}

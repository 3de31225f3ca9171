//! A TCP proxy on 127.0.0.1 that can fault the connections it forwards: close them, reset them,
//! black-hole them, or refuse new ones, so that tests can see how clients cope with a bad network.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A proxy in front of one upstream address. Dropping it stops it: its tasks are aborted and
/// every socket it holds is closed.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// How `Proxy::cut` faults a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Shut both sockets down in order (FIN both ways) without a WebSocket close frame.
    Close,
    /// Drop both sockets with SO_LINGER 0, so both peers get RST.
    Reset,
    /// Stop forwarding bytes both ways but keep both sockets open: the peers see silence.
    BlackHole,
}

struct Shared {
    upstream: SocketAddr,
    down: AtomicBool,
    state: Mutex<State>,
    /// The last cut, with the black-hole release count at the time it was made.
    cut: watch::Sender<Option<(Cut, u64)>>,
    /// How many times `release_black_holes` has been called.
    release: watch::Sender<u64>,
    /// Connections accepted so far.
    accepted: watch::Sender<usize>,
}

/// Connections forwarded now. `epoch` counts cuts: a connection accepted in an earlier epoch has
/// been cut and is no longer counted.
struct State {
    live: usize,
    epoch: u64,
}

/// Counts a forwarded connection as live until it ends or is cut.
struct Live {
    shared: Arc<Shared>,
    epoch: u64,
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().expect("proxy state");
        if state.epoch == self.epoch {
            state.live -= 1;
        }
    }
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards every accepted connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            down: AtomicBool::new(false),
            state: Mutex::new(State { live: 0, epoch: 0 }),
            cut: watch::Sender::new(None),
            release: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy { addr, shared, task }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's address as a WebSocket URL: `ws://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Faults every live connection: Close = shut both sockets down in order (FIN both ways, no
    /// WebSocket close frame); Reset = drop both sockets with SO_LINGER 0 so the peers get RST;
    /// BlackHole = stop forwarding bytes both ways but keep both sockets open (the peers see
    /// silence) until `release_black_holes()` or the proxy is dropped. Connections accepted
    /// later are not affected.
    pub fn cut(&self, how: Cut) {
        let mut state = self.shared.state.lock().expect("proxy state");
        state.live = 0;
        state.epoch += 1;
        let released = *self.shared.release.borrow();
        self.shared.cut.send_replace(Some((how, released)));
    }

    /// While down, newly accepted connections are dropped at once (with RST) instead of
    /// forwarded: the server looks unreachable.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Closes (drops) the sockets held open by black-holed connections.
    pub fn release_black_holes(&self) {
        self.shared.release.send_modify(|count| *count += 1);
    }

    /// Connections accepted so far (forwarded or refused).
    pub fn accepted(&self) -> usize {
        *self.shared.accepted.borrow()
    }

    /// Connections being forwarded now (not cut).
    pub fn live(&self) -> usize {
        self.shared.state.lock().expect("proxy state").live
    }

    /// Waits until at least `n` connections have been accepted in total.
    pub async fn wait_accepted(&self, n: usize) {
        let mut accepted = self.shared.accepted.subscribe();
        // The sender lives in `self.shared`, so this cannot fail while `self` is borrowed.
        let _ = accepted.wait_for(|&count| count >= n).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the listener and the connection tasks' JoinSet, which aborts
        // them all when it is dropped.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        if shared.down.load(Ordering::SeqCst) {
            reset(client);
            shared.accepted.send_modify(|count| *count += 1);
            continue;
        }
        let (live, cuts) = {
            let mut state = shared.state.lock().expect("proxy state");
            state.live += 1;
            let live = Live {
                shared: shared.clone(),
                epoch: state.epoch,
            };
            (live, shared.cut.subscribe())
        };
        shared.accepted.send_modify(|count| *count += 1);
        connections.spawn(forward(client, live, cuts));
    }
}

/// Forwards one connection until it ends or is cut.
async fn forward(mut client: TcpStream, live: Live, mut cuts: watch::Receiver<Option<(Cut, u64)>>) {
    let shared = live.shared.clone();
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let cut = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let both = async {
            tokio::try_join!(
                pipe(&mut client_read, &mut upstream_write),
                pipe(&mut upstream_read, &mut client_write),
            )
        };
        // The cut first: polled in random order, a wake-up that brings both a cut and bytes
        // could copy the bytes before seeing the cut (a browser test once received 40
        // messages sent after a black hole was made).
        tokio::select! {
            biased;
            cut = next_cut(&mut cuts) => Some(cut),
            _ = both => None,
        }
    };
    match cut {
        None => {}
        Some((Cut::Close, _)) => {
            let _ = client.shutdown().await;
            let _ = upstream.shutdown().await;
        }
        Some((Cut::Reset, _)) => {
            reset(client);
            reset(upstream);
        }
        Some((Cut::BlackHole, released)) => {
            drop(live);
            let mut release = shared.release.subscribe();
            let _ = release.wait_for(|&count| count > released).await;
        }
    }
}

/// Copies bytes from `from` to `to` until `from` ends, then shuts `to`'s write half down.
async fn pipe(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// The next cut made after this connection was accepted.
async fn next_cut(cuts: &mut watch::Receiver<Option<(Cut, u64)>>) -> (Cut, u64) {
    loop {
        if cuts.changed().await.is_err() {
            // The sender lives as long as the proxy; without it no cut can come.
            std::future::pending::<()>().await;
        }
        if let Some(cut) = *cuts.borrow_and_update() {
            return cut;
        }
    }
}

/// Drops `socket` so that its peer gets RST.
fn reset(socket: TcpStream) {
    // SO_LINGER 0 makes close send RST at once; it does not block the thread.
    #[allow(deprecated)]
    let _ = socket.set_linger(Some(Duration::ZERO));
}

//! The server's async shell: the accept loop, one task per connection, the timer, and the
//! delivery of the core's outputs. It moves bytes and time; every decision is the core's
//! ([`Hub`]). Media commands go to the SFU; the SFU's reports come back here as inputs.

mod conn;
mod limits;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::admission::{Admission, Admit};
use super::hub::io::MediaReport;
use super::hub::{ConnId, Hub, Input, Millis, Output};
use super::options::ServerOptions;
use super::sfu::Sfu;
use super::sfu::workers::MediaWorkers;
use crate::media::PeerSettings;
use crate::model::Reason;
use crate::protocol::{self, ServerFrame};

/// Starts serving `listener`: returns the shared state and the accept loop's task (it ends
/// once `stop` says so and every connection is closed).
pub(super) fn start(
    listener: TcpListener,
    hub: Hub,
    options: ServerOptions,
    media: Media,
    tls: Option<tokio_rustls::TlsAcceptor>,
    embedded: EmbeddedRecorder,
    stop: watch::Receiver<bool>,
) -> (Arc<State>, tokio::task::JoinHandle<()>) {
    let Media { peers, workers } = media;
    let (deadline_tx, deadline_rx) = watch::channel(None);
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let gate = Gate {
        admission: Admission::new(
            options.limits.max_unauthenticated,
            options.limits.max_unauthenticated_per_address,
        ),
        evict: HashMap::new(),
    };
    let state = Arc::new(State {
        core: Mutex::new(Core {
            hub,
            conns: HashMap::new(),
        }),
        gate: Mutex::new(gate),
        tls,
        options,
        embedded: Mutex::new(Some(embedded)),
        deadline: deadline_tx,
        sfu: Sfu::new(peers, MediaWorkers::new(workers), reports_tx),
    });
    let background = vec![
        tokio::spawn(timer(state.clone(), deadline_rx)),
        tokio::spawn(media_reports(state.clone(), reports_rx)),
    ];
    let task = tokio::spawn(accept_loop(listener, state.clone(), stop, background));
    (state, task)
}

/// How the SFU runs: its peer connections' settings, and how many worker threads.
pub(super) struct Media {
    pub(super) peers: PeerSettings,
    pub(super) workers: usize,
}

/// What the server's own recorder needs: where to connect, the token secret, and how.
#[derive(Clone)]
pub(super) struct EmbeddedRecorder {
    pub(super) url: String,
    pub(super) secret: Vec<u8>,
    pub(super) options: crate::record::RecorderOptions,
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

/// Connections not logged in yet: the admission policy, and how to close each.
#[derive(Debug)]
struct Gate {
    admission: Admission,
    evict: HashMap<ConnId, tokio::sync::oneshot::Sender<()>>,
}

pub(crate) struct State {
    core: Mutex<Core>,
    gate: Mutex<Gate>,
    /// Terminates TLS (`wss://`) when the server has a certificate.
    tls: Option<tokio_rustls::TlsAcceptor>,
    options: ServerOptions,
    /// How to start the embedded recorder (taken when the core first asks for it).
    embedded: Mutex<Option<EmbeddedRecorder>>,
    /// The core's next deadline, watched by the timer task.
    deadline: watch::Sender<Option<Millis>>,
    /// The media shell.
    sfu: Sfu,
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

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("core", &self.core)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl State {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `conn` logged in or is gone: it no longer counts against the limits on
    /// connections not logged in.
    pub(crate) fn settled(&self, conn: ConnId) {
        let mut gate = self.gate();
        gate.evict.remove(&conn);
        if let Some(over) = gate.admission.settled(conn) {
            tracing::warn!(
                address = %over.address,
                refused = over.refused,
                "a flood of connections from one address is over"
            );
        }
    }

    /// Whether connection `conn` carries a session (it logged in).
    pub(crate) fn logged_in(&self, conn: ConnId) -> bool {
        self.core().hub.is_logged_in(conn)
    }

    /// Connections not logged in yet, and connections closed to make room for newer ones.
    pub(super) fn waiting_connections(&self) -> (usize, u64) {
        let gate = self.gate();
        (gate.admission.waiting(), gate.admission.evicted())
    }

    pub(super) fn sfu(&self) -> &Sfu {
        &self.sfu
    }

    pub(super) fn connection_count(&self) -> usize {
        self.core().conns.len()
    }

    pub(super) fn room_count(&self) -> usize {
        self.core().hub.room_count()
    }

    pub(super) fn recorder_count(&self) -> usize {
        self.core().hub.recorder_count()
    }

    /// Feeds one input to the hub and delivers what it says, under one lock so that every
    /// connection receives room events in the room's order.
    pub(crate) fn handle(&self, input: Input) {
        let mut core = self.core();
        let outputs = core.hub.handle(unix_millis(), input);
        self.deliver(&mut core, outputs);
    }

    /// The operator revokes tokens: how many sessions ended, or why nothing was done.
    pub(crate) fn revoke(
        &self,
        revocation: crate::auth::Revocation,
    ) -> Result<usize, crate::protocol::Refusal> {
        let mut core = self.core();
        let (ended, outputs) = core.hub.revoke_now(unix_millis(), revocation)?;
        self.deliver(&mut core, outputs);
        Ok(ended)
    }

    /// Carries out the core's outputs, under the lock they were made under.
    fn deliver(&self, core: &mut Core, outputs: Vec<Output>) {
        let next = core.hub.next_deadline();
        self.deadline
            .send_if_modified(|d| std::mem::replace(d, next) != next);
        for output in outputs {
            match output {
                Output::Send { to, frame } => core.deliver(to, encode(&frame)),
                Output::Deliver { to, n, frame } => {
                    let text = match n {
                        Some(n) => protocol::with_number(protocol::encode(&*frame), n),
                        None => protocol::encode(&*frame),
                    };
                    core.deliver(to, Utf8Bytes::from(text))
                }
                Output::Broadcast { to, frame } => {
                    let text = encode(&frame);
                    for conn in to {
                        core.deliver(conn, text.clone());
                    }
                }
                Output::StartRecorder => {
                    // Kept: if this one goes, the core asks again for the next recording.
                    let embedded = self.embedded.lock().ok().and_then(|e| e.clone());
                    if let Some(EmbeddedRecorder {
                        url,
                        secret,
                        options,
                    }) = embedded
                    {
                        tokio::spawn(async move {
                            if let Err(e) =
                                crate::record::Recorder::run(&url, &secret, options).await
                            {
                                tracing::warn!(error = %e, "the embedded recorder stopped");
                            }
                        });
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(entry) = core.conns.get_mut(&conn)
                        && entry.tx.try_send(Outgoing::Close(reason)).is_err()
                        && let Some(kill) = entry.kill.take()
                    {
                        // Its queue is full: it cannot even take its goodbye.
                        let _ = kill.send(());
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

/// Feeds the SFU's reports to the core, in the order the SFU made them.
async fn media_reports(state: Arc<State>, mut reports: mpsc::UnboundedReceiver<MediaReport>) {
    while let Some(report) = reports.recv().await {
        state.handle(Input::Media(report));
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
) {
    let mut tasks = JoinSet::new();
    let mut next_conn: ConnId = 0;
    let mut failing = AcceptFailures::default();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    failing.recovered();
                    next_conn += 1;
                    let conn = next_conn;
                    let (evict_tx, evict_rx) = tokio::sync::oneshot::channel();
                    let admitted = {
                        let mut gate = state.gate();
                        let (admit, first) = gate.admission.admit(conn, peer.ip());
                        for over in gate.admission.take_over() {
                            tracing::warn!(
                                address = %over.address,
                                refused = over.refused,
                                "a flood of connections from one address is over"
                            );
                        }
                        if first {
                            tracing::warn!(
                                address = %peer.ip(),
                                "an address holds as many connections not logged in as it may: \
                                 refusing more until they go (one line when it is over)"
                            );
                        }
                        match admit {
                            Admit::Refuse => false,
                            Admit::Accept => {
                                gate.evict.insert(conn, evict_tx);
                                true
                            }
                            Admit::AcceptEvicting(oldest) => {
                                if let Some(kill) = gate.evict.remove(&oldest) {
                                    let _ = kill.send(());
                                }
                                gate.evict.insert(conn, evict_tx);
                                true
                            }
                        }
                    };
                    if !admitted {
                        // Closed at once: no task, no buffers.
                        drop(socket);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    tasks.spawn(conn::serve(conn, socket, peer, state.clone(), stop.clone(), evict_rx));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be freed, longer
                    // each time, and say so once per incident rather than once per try.
                    let delay = failing.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped(&mut stop) => break,
                    }
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    for task in background {
        task.abort();
        let _ = task.await;
    }
    tracing::info!("jrtc server stopped");
}

/// The accept loop's failures in a row (an incident): how long to back off, and one log line
/// at its start and one at its end.
#[derive(Default)]
struct AcceptFailures {
    count: u64,
    since: Option<std::time::Instant>,
}

impl AcceptFailures {
    const FIRST_DELAY: Duration = Duration::from_millis(5);
    const MAX_DELAY: Duration = Duration::from_secs(1);

    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.count += 1;
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            tracing::warn!(%error, "accepting connections fails; backing off until it works again");
        }
        let factor = 1u32 << (self.count.min(9) - 1);
        Self::FIRST_DELAY
            .saturating_mul(factor)
            .min(Self::MAX_DELAY)
    }

    fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                failures = self.count,
                lasted_ms = since.elapsed().as_millis() as u64,
                "accepting connections works again"
            );
        }
        self.count = 0;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_doubling_to_a_second_and_reset_when_it_works() {
        let mut failing = AcceptFailures::default();
        let error = std::io::Error::from_raw_os_error(24); // EMFILE
        let delays: Vec<u64> = (0..10)
            .map(|_| failing.failed(&error).as_millis() as u64)
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(failing.count, 10);
        failing.recovered();
        assert_eq!(failing.count, 0);
        assert!(failing.since.is_none());
        assert_eq!(failing.failed(&error), Duration::from_millis(5));
    }
}

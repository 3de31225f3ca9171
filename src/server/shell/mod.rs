//! The server's async shell: the accept loop, one task per connection, the timer, and the
//! delivery of the core's outputs. It moves bytes and time; every decision is the core's
//! ([`Hub`]). Media commands go to the SFU; the SFU's reports come back here as inputs.

mod api;
mod conn;
mod http;
mod limits;
mod metrics;
pub use metrics::{count_media_stack_warning, is_media_stack_target};
mod web;
mod webhooks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::admission::{Admission, Admit, waiting_cap};
use super::hub::io::{MediaFact, MediaReport};
use super::hub::{AdminReply, AdminRequest, ConnId, Hub, Input, Millis, Output, Refusal};
use super::options::ServerOptions;
use super::sfu::Sfu;
use super::sfu::workers::MediaWorkers;
use crate::media::PeerSettings;
use crate::model::Reason;
use crate::protocol::{self, ClientFrame, ErrorCode, ServerFrame};
use metrics::Metrics;
use webhooks::Webhooks;

/// Starts serving `listener`: returns the shared state and the accept loop's task (it ends
/// once `stop` says so and every connection is closed).
pub(super) fn start(
    listener: TcpListener,
    hub: Hub,
    options: ServerOptions,
    media: Media,
    access: Access,
    embedded: Option<EmbeddedRecorder>,
    stop: watch::Receiver<bool>,
) -> (Arc<State>, tokio::task::JoinHandle<()>) {
    let metrics = Arc::new(Metrics::new());
    let Access { tls, secret } = access;
    let secret = Arc::new(secret);
    let webhooks = Webhooks::start(
        &options.webhook_urls,
        options.webhook_queue,
        webhooks::Delivery {
            secret: secret.clone(),
            timeout: options.webhook_timeout,
            attempts: options.webhook_attempts,
            metrics: metrics.clone(),
        },
    );
    let Media {
        peers,
        workers,
        port,
    } = media;
    let (deadline_tx, deadline_rx) = watch::channel(None);
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let descriptors = descriptor_limit();
    let max_waiting = waiting_cap(options.limits.max_unauthenticated, descriptors);
    if max_waiting < options.limits.max_unauthenticated {
        tracing::info!(
            max_waiting,
            descriptors,
            "connections not logged in: at most a quarter of the open-file limit"
        );
    }
    let gate = Gate {
        admission: Admission::new(max_waiting, options.limits.max_unauthenticated_per_address),
        evict: HashMap::new(),
    };
    let state = Arc::new(State {
        core: Mutex::new(Core {
            hub,
            conns: HashMap::new(),
            webhooks,
        }),
        metrics,
        draining: AtomicBool::new(false),
        gate: Mutex::new(gate),
        tls,
        options,
        secret,
        embedded,
        deadline: deadline_tx,
        sfu: Sfu::new(peers, MediaWorkers::new(workers), reports_tx),
        media_port: port,
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
    /// The port the peer connections share (its counters go to the metrics).
    pub(super) port: Arc<crate::server::sfu::port::MediaPort>,
}

/// How clients get in: TLS when the server has a certificate, and the secret their tokens are
/// signed with.
pub(super) struct Access {
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(super) secret: Vec<u8>,
}

/// The server's own recorder: what it is given, and what runs it (the crate's recorder, which
/// the builder was given).
pub(super) struct EmbeddedRecorder {
    pub(super) target: super::RecorderTarget,
    pub(super) run: super::RunRecorder,
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

impl Gate {
    /// Closes connection `conn` (one not logged in that the admission let go).
    fn close(&mut self, conn: ConnId) {
        if let Some(kill) = self.evict.remove(&conn) {
            let _ = kill.send(());
        }
    }
}

pub(crate) struct State {
    core: Mutex<Core>,
    /// The server's metrics (`GET /metrics`).
    metrics: Arc<Metrics>,
    /// Shutting down: `/readyz` says 503.
    draining: AtomicBool,
    gate: Mutex<Gate>,
    /// Terminates TLS (`wss://`) when the server has a certificate.
    tls: Option<tokio_rustls::TlsAcceptor>,
    options: ServerOptions,
    /// The secret tokens are signed with (the development token endpoint mints with it).
    secret: Arc<Vec<u8>>,
    /// How to start the embedded recorder, each time the core asks for it; `None`: there is
    /// none ([`ServerOptions::embedded_recorder`] off).
    embedded: Option<EmbeddedRecorder>,
    /// The core's next deadline, watched by the timer task.
    deadline: watch::Sender<Option<Millis>>,
    /// The media shell.
    sfu: Sfu,
    /// The media port (for its counters).
    media_port: Arc<crate::server::sfu::port::MediaPort>,
}

struct Core {
    hub: Hub,
    conns: HashMap<ConnId, ConnEntry>,
    /// The webhook queues (posted to under this lock, so in the core's order).
    webhooks: Webhooks,
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

    /// Who connection `conn`'s session is and which room it is in (for log fields).
    pub(crate) fn whereabouts(
        &self,
        conn: ConnId,
    ) -> Option<(crate::model::UserId, Option<crate::model::RoomId>)> {
        self.core().hub.whereabouts(conn)
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
        let timed = match &input {
            Input::Frame { frame, .. } => {
                self.count_frame_in(frame);
                Some((matches!(frame, ClientFrame::Join { .. }), Instant::now()))
            }
            _ => None,
        };
        let mut core = self.core();
        let outputs = core.hub.handle(unix_millis(), input);
        self.deliver(&mut core, outputs);
        drop(core);
        if let Some((join, since)) = timed {
            let took = since.elapsed().as_secs_f64();
            self.metrics.request_latency.observe(took);
            if join {
                self.metrics.join_latency.observe(took);
            }
        }
    }

    /// A server API request with the caller's token: the core's answer (its outputs are
    /// delivered like any others).
    pub(super) fn admin(&self, token: &str, request: AdminRequest) -> Result<AdminReply, Refusal> {
        let mut core = self.core();
        let (answer, outputs) = core.hub.admin(unix_millis(), token, request);
        self.deliver(&mut core, outputs);
        answer
    }

    /// Counts a server API request's outcome.
    pub(super) fn count_api(&self, outcome: Result<(), ErrorCode>) {
        match outcome {
            Ok(()) => Metrics::count(&self.metrics.api_requests, "ok"),
            Err(code) => Metrics::count(&self.metrics.api_requests, &code.wire_name()),
        }
    }

    /// Whether the call page is served at `/` ([`ServerOptions::call_page`]).
    pub(crate) fn call_page(&self) -> bool {
        self.options.call_page.unwrap_or(self.options.development)
    }

    /// Why the server is not ready for calls (`/readyz`); empty when it is.
    pub(super) fn not_ready(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.draining.load(Ordering::Relaxed) {
            reasons.push("draining");
        }
        if self.options.auto_record.is_some()
            && self.embedded.is_none()
            && self.recorder_count() == 0
        {
            reasons.push("no_recorder");
        }
        reasons
    }

    /// The webhooks take no more events: their tasks, which end once what is queued is
    /// delivered.
    pub(super) fn close_webhooks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.core().webhooks.close()
    }

    /// How long the server stays up saying it drains.
    pub(super) fn drain_delay(&self) -> Duration {
        self.options.drain_delay
    }

    /// From now on `/readyz` says the server is draining.
    pub(super) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text format.
    pub(super) fn render_metrics(&self) -> String {
        let (hub, webhook_queue) = {
            let core = self.core();
            (core.hub.stats(), core.webhooks.waiting())
        };
        let (waiting, _) = self.waiting_connections();
        self.metrics.render(metrics::Snapshot {
            waiting,
            hub,
            media_members: self.sfu.actor_count(),
            forwarding: self.sfu.counters(),
            port: self.media_port.counts(),
            webhook_queue,
        })
    }

    fn count_frame_in(&self, frame: &ClientFrame) {
        let m = &self.metrics;
        Metrics::count(&m.frames_in, frame.type_name());
    }

    /// Counts a frame sent to `receivers` connections.
    pub(crate) fn count_sent(&self, frame: &ServerFrame, receivers: usize) {
        let m = &self.metrics;
        m.frames_out
            .get_or_create(&metrics::Kind::of(frame.type_name()))
            .inc_by(receivers as u64);
        if let ServerFrame::Error { code, .. } = frame {
            if *code == ErrorCode::RateLimited {
                m.rate_limited.inc();
            }
            Metrics::count(&m.refusals, &code.wire_name());
        }
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
                Output::Send { to, frame } => {
                    self.count_sent(&frame, 1);
                    self.send(core, to, encode(&frame));
                }
                Output::Deliver { to, n, frame } => {
                    self.count_sent(&frame, 1);
                    let text = match n {
                        Some(n) => protocol::with_number(protocol::encode(&*frame), n),
                        None => protocol::encode(&*frame),
                    };
                    self.send(core, to, Utf8Bytes::from(text));
                }
                Output::Broadcast { to, frame } => {
                    self.count_sent(&frame, to.len());
                    let text = encode(&frame);
                    for conn in to {
                        self.send(core, conn, text.clone());
                    }
                }
                Output::Notice(event) => core.webhooks.post(event, unix_millis(), &self.metrics),
                Output::StartRecorder => {
                    // Kept: if this one goes, the core asks again for the next recording.
                    if let Some(EmbeddedRecorder { target, run }) = &self.embedded {
                        let recorder = run.run(target.clone());
                        tokio::spawn(async move {
                            if let Err(e) = recorder.await {
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

impl State {
    /// Queues `text` for `conn`; a connection whose queue is full is closed.
    fn send(&self, core: &mut Core, conn: ConnId, text: Utf8Bytes) {
        let Some(entry) = core.conns.get_mut(&conn) else {
            return;
        };
        if entry.tx.try_send(Outgoing::Frame(text)).is_err()
            && let Some(kill) = entry.kill.take()
        {
            tracing::warn!(conn, "closing a connection that does not read its events");
            self.metrics.slow_consumers.inc();
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
        match &report.fact {
            MediaFact::PeerConnected { .. } => {
                Metrics::count(&state.metrics.peer_connections, "connected")
            }
            MediaFact::PeerFailed { .. } => {
                Metrics::count(&state.metrics.peer_connections, "failed")
            }
            MediaFact::LinkMeasured(sample) => {
                let m = &state.metrics;
                m.link_quality.observe(f64::from(sample.level().bars()));
                if let Some(permille) = sample.up.permille().max(sample.down.permille()) {
                    m.link_loss.observe(permille as f64 / 1_000.0);
                }
            }
            _ => {}
        }
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
                                gate.close(oldest);
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
                    // each time, and say so once per incident rather than once per try. Out of
                    // this process's descriptors, the oldest connection not logged in is closed
                    // first to free one, and the next try comes soon.
                    let mut delay = failing.failed(&e);
                    if e.raw_os_error() == Some(libc::EMFILE) {
                        let mut gate = state.gate();
                        if let Some(oldest) = gate.admission.make_room() {
                            gate.close(oldest);
                            delay = AcceptFailures::FIRST_DELAY;
                        }
                    }
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

/// The process's open-file limit (its soft limit), if it can be read.
fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed to it.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
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

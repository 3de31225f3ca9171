//! One client connection: reads frames into the hub, writes the hub's frames out.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument;

use super::limits::TokenBucket;
use super::{ConnEntry, Outgoing, State, encode, stopped};
use crate::model::OperationId;
use crate::model::Reason;
use crate::protocol::{
    self, ClientFrame, ErrorCode, FrameError, MAX_FRAME_LEN, Refusal, ServerFrame,
};
use crate::server::hub::{ConnId, Input};
use crate::server::options::Limits;

/// Frames above this size are not even read: the connection is closed (1009, message too big).
/// Between [`MAX_FRAME_LEN`] and this, a frame is read and answered with `frame_too_large`.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

/// How long a closing connection may take to take its last frame.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(1);

/// Frames written per flush, so a burst of events costs one write system call, not one each.
const WRITE_BATCH: usize = 64;

pub(crate) async fn serve(
    conn: ConnId,
    socket: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    stop: watch::Receiver<bool>,
    evict: oneshot::Receiver<()>,
) {
    let deadline = tokio::time::sleep(state.options.limits.handshake_timeout);
    tokio::pin!(deadline);
    let start = Start {
        conn,
        peer,
        state,
        stop,
        evict,
    };
    // Every line a connection logs says which connection, from where, and (once known) whose
    // session and which room.
    let span = tracing::info_span!(
        "connection",
        conn,
        peer = %peer,
        user = tracing::field::Empty,
        room = tracing::field::Empty,
    );
    match start.state.tls.clone() {
        // On the heap: a TLS connection's state is several KiB, and a plain connection's task
        // would otherwise reserve room for it too (a task's future is as large as its largest
        // state).
        Some(acceptor) => {
            Box::pin(serve_tls(acceptor, socket, deadline, start))
                .instrument(span)
                .await
        }
        None => {
            super::http::serve(socket, deadline, start)
                .instrument(span)
                .await
        }
    }
}

async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    socket: TcpStream,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    mut start: Start,
) {
    let tls = tokio::select! {
        tls = acceptor.accept(socket) => tls,
        _ = &mut deadline => return start.done(),
        _ = stopped(&mut start.stop) => return start.done(),
        _ = &mut start.evict => return start.done(),
    };
    match tls {
        Ok(tls) => super::http::serve(tls, deadline, start).await,
        Err(e) => {
            tracing::debug!(peer = %start.peer, error = %e, "TLS handshake failed");
            start.done()
        }
    }
}

/// What a connection's task starts with.
pub(super) struct Start {
    pub(super) conn: ConnId,
    pub(super) peer: SocketAddr,
    pub(super) state: Arc<State>,
    pub(super) stop: watch::Receiver<bool>,
    /// Fires when the connection is closed to make room (it has not logged in yet).
    pub(super) evict: oneshot::Receiver<()>,
}

impl Start {
    pub(super) fn done(self) {
        self.state.settled(self.conn);
    }
}

/// A signaling connection's WebSocket settings: a small read buffer (an idle connection keeps
/// it), and the hard frame limit.
pub(super) fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(HARD_FRAME_LIMIT))
        .max_frame_size(Some(HARD_FRAME_LIMIT))
}

/// A signaling connection's life, once its WebSocket is up.
pub(super) async fn run<S>(
    mut ws: WebSocketStream<S>,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    start: &mut Start,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (conn, peer, state) = (start.conn, start.peer, start.state.clone());
    let stop = &mut start.stop;
    let evict = &mut start.evict;
    let mut waiting = true;
    let (tx, mut rx) = mpsc::channel(state.options.outbound_queue);
    let (kill_tx, mut kill) = oneshot::channel();
    state.core().conns.insert(
        conn,
        ConnEntry {
            tx: tx.clone(),
            kill: Some(kill_tx),
        },
    );
    tracing::debug!(conn, %peer, "connected");
    let reply = |frame: ServerFrame| {
        state.count_sent(&frame, 1);
        // Our own answers go through the same queue as room events, keeping one order.
        let _ = tx.try_send(Outgoing::Frame(encode(&frame)));
    };
    let limits = &state.options.limits;
    let mut bucket = TokenBucket::new(
        limits.requests_per_second,
        limits.request_burst,
        Instant::now(),
    );
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    let mut login_deadline_armed = true;
    // Why the connection ends: a close frame from the client is an orderly quit, anything else a
    // lost connection.
    let mut reason = Reason::Network;
    let mut oversized = false;
    let farewell: Option<ServerFrame> = loop {
        tokio::select! {
            _ = &mut deadline, if login_deadline_armed => {
                login_deadline_armed = false;
                state.handle(Input::HandshakeTimeout { conn });
            }
            evicted = &mut *evict, if waiting => {
                waiting = false;
                if evicted.is_ok() {
                    // Closed to make room for a newer connection (it had not logged in).
                    break Some(ServerFrame::Goodbye { reason: Reason::Timeout, reconnect: false });
                }
            }
            _ = stopped(stop) => {
                reason = Reason::ServerShutdown;
                break Some(goodbye(reason, &state));
            }
            _ = &mut kill => break Some(slow_consumer()),
            out = rx.recv() => match out {
                // A client that stops reading blocks this write; the kill signal (its queue
                // overflowed) and shutdown must still get through.
                Some(first) => tokio::select! {
                    written = write_batch(&mut ws, first, &mut rx) => match written {
                        Ok(None) => {}
                        // The core closes a connection for good (no `hello` in time, or its
                        // session taken over by another): no reconnecting.
                        Ok(Some(reason)) => break Some(ServerFrame::Goodbye { reason, reconnect: false }),
                        Err(_) => break None,
                    },
                    _ = &mut kill => break Some(slow_consumer()),
                    _ = stopped(stop) => {
                        reason = Reason::ServerShutdown;
                        break Some(goodbye(reason, &state));
                    }
                },
                None => break None,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= limits.idle_timeout {
                    reason = Reason::Timeout;
                    break Some(goodbye(reason, &state));
                }
                // A peer that reads nothing cannot hold this task here.
                let ping = ws.send(Message::Ping(Default::default()));
                if !matches!(tokio::time::timeout(FAREWELL_TIMEOUT, ping).await, Ok(Ok(()))) {
                    break None;
                }
            }
            msg = ws.next() => {
                last_heard = Instant::now();
                match msg {
                Some(Ok(Message::Text(text))) => {
                    match read_frame(&text, limits, &mut bucket) {
                        Ok(frame) => {
                            let login = matches!(frame, ClientFrame::Hello { .. } | ClientFrame::Resume { .. });
                            let moves = login || matches!(frame, ClientFrame::Join { .. } | ClientFrame::Leave { .. } | ClientFrame::AcceptInvite { .. } | ClientFrame::Invite { .. });
                            let request = tracing::debug_span!("request", r#type = frame.type_name(), op = frame.op().map(|op| op.0));
                            request.in_scope(|| state.handle(Input::Frame { conn, frame }));
                            if moves {
                                record_whereabouts(&state, conn);
                            }
                            if waiting && login && state.logged_in(conn) {
                                // Logged in: no longer limited as a connection that has not.
                                waiting = false;
                                state.settled(conn);
                            }
                        }
                        Err(refusal) => reply(refusal.into_frame()),
                    }
                }
                Some(Ok(Message::Binary(_))) => reply(if bucket.take(Instant::now()) {
                    ServerFrame::Error {
                        op: None,
                        code: ErrorCode::BinaryFrame,
                        message: "the protocol uses text frames only".into(),
                    }
                } else {
                    rate_limited(None, &bucket, limits).into_frame()
                }),
                Some(Ok(Message::Close(_))) => {
                    reason = Reason::Quit;
                    break None;
                }
                None => break None,
                Some(Ok(_)) => {}
                Some(Err(WsError::Capacity(e))) => break Some({
                    oversized = true;
                    ServerFrame::Error {
                    op: None,
                    code: ErrorCode::FrameTooLarge,
                    message: format!("{e}; frames over {HARD_FRAME_LIMIT} bytes close the connection (limit {MAX_FRAME_LEN})"),
                }}),
                Some(Err(e)) => {
                    tracing::debug!(conn, error = %e, "connection failed");
                    break None;
                }
            }},
        }
    };
    state.core().conns.remove(&conn);
    state.handle(Input::Disconnected { conn, reason });
    if let Some(frame) = farewell {
        // A peer that does not read gets a bounded chance to hear why it is being closed.
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, async {
            ws.send(Message::Text(encode(&frame))).await?;
            ws.close(None).await
        })
        .await;
        if oversized {
            drain(ws.get_mut()).await;
        }
    }
    tracing::debug!(conn, %peer, "disconnected");
}

/// Puts the session's user and room on the connection's log span.
fn record_whereabouts(state: &State, conn: ConnId) {
    if let Some((user, room)) = state.whereabouts(conn) {
        let span = tracing::Span::current();
        span.record("user", user.as_str());
        span.record("room", room.as_ref().map_or("", |r| r.as_str()));
        tracing::debug!("session logged in, or in another room");
    }
}

/// After refusing an oversized frame: end the sending side and read (and drop) what the client
/// is still sending, for a bounded time and amount, before closing. Closing a socket with
/// unread bytes resets the connection, and a reset can destroy the refusal before the client
/// reads it.
async fn drain<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    const DRAIN_LIMIT: usize = 4 * HARD_FRAME_LIMIT;
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, async {
        let _ = stream.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < DRAIN_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

/// Writes `first` and whatever else is queued (up to a batch) with one flush. Returns the reason
/// when the queue asked to close the connection.
async fn write_batch<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    first: Outgoing,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> Result<Option<Reason>, WsError> {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(out) = next.take() {
        match out {
            Outgoing::Frame(text) => ws.feed(Message::Text(text)).await?,
            Outgoing::Close(reason) => {
                ws.flush().await?;
                return Ok(Some(reason));
            }
        }
        written += 1;
        if written < WRITE_BATCH {
            next = rx.try_recv().ok();
        }
    }
    ws.flush().await?;
    Ok(None)
}

/// The last frame of a connection the server closes: whether the client should come back
/// depends on why.
fn goodbye(reason: Reason, state: &State) -> ServerFrame {
    let reconnect = match reason {
        // Silence or a full queue: the session waits for a resume.
        Reason::Timeout | Reason::Network => true,
        Reason::ServerShutdown => state.options.reconnect_after_shutdown,
        _ => false,
    };
    ServerFrame::Goodbye { reason, reconnect }
}

fn slow_consumer() -> ServerFrame {
    ServerFrame::Error {
        op: None,
        code: ErrorCode::SlowConsumer,
        message: "too many frames queued for this connection".into(),
    }
}

/// Decodes one text frame within the connection's limits (size, then JSON) and the request rate
/// (every frame counts: readable or not, oversized or not). Returns the refusal to send otherwise.
fn read_frame(
    text: &str,
    limits: &Limits,
    bucket: &mut TokenBucket,
) -> Result<ClientFrame, FrameError> {
    let decoded = protocol::decode_client_within(text, limits.max_frame_len);
    if !bucket.take(Instant::now()) {
        let op = match &decoded {
            Ok(frame) => frame.op(),
            Err(e) => e.op,
        };
        return Err(rate_limited(op, bucket, limits));
    }
    decoded
}

fn rate_limited(op: Option<OperationId>, bucket: &TokenBucket, limits: &Limits) -> FrameError {
    FrameError {
        op,
        refusal: Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "over {} requests per second; retry in {} ms",
                limits.requests_per_second,
                bucket.retry_after().as_millis().max(1)
            ),
        ),
    }
}

//! The call's connection task: the only owner of the socket. It logs in, then moves frames:
//! the server's into the shared state (the session core decides what they mean), the call's
//! requests onto the socket; it pings (saying what the call has taken), notices silence, and,
//! when the connection is lost, connects again and resumes the session (or, when the server no
//! longer knows it, logs in again and rejoins the room).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::clock::{now, until};
use super::policy::link::{Attempted, LinkCore, LinkOutput, LinkTiming};
use super::shared::{Shared, lock};
use super::{CallError, CallOptions, Command, Credentials, TlsRoots};
use crate::event::{CallEvent, OpError};
use crate::model::{OperationId, Reason, UserId};
use crate::protocol::{self, ClientFrame, ErrorCode, PROTOCOL_VERSION, ServerFrame};

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket read buffer of a call's connection, in bytes.
const READ_BUFFER: usize = 8 * 1024;

/// Frames without an answer (ICE candidates) held while reconnecting, at most.
const HELD_FRAMES: usize = 256;

/// Where the call connects, and as whom.
pub(super) struct Link {
    pub(super) url: String,
    pub(super) options: CallOptions,
    /// How to open the socket: plain, or TLS with the configuration made once for the call.
    pub(super) connector: Connector,
    /// The current session's resume key (from its `welcome`).
    pub(super) resume_key: String,
}

/// How a call's connections to `url` are opened: TLS for `wss://` (its configuration, with
/// the roots read, is made once per call and shared by every reconnect), plain otherwise.
pub(super) fn connector(url: &str, tls: &TlsRoots) -> Result<Connector, CallError> {
    if url.starts_with("wss://") {
        let config =
            crate::tls::client_config(tls).map_err(|e| CallError::connect_message(url, e))?;
        Ok(Connector::Rustls(config))
    } else {
        Ok(Connector::Plain)
    }
}

async fn open(url: &str, connector: &Connector) -> Result<Ws, CallError> {
    // Small frames that wait for an answer: send each at once (no Nagle coalescing). A small
    // read buffer: tungstenite zero-fills the free part of it before every read, and the default
    // (128 KiB) made that a large share of receiving a frame; larger frames still fit (the buffer
    // grows for them).
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        Some(config),
        true,
        Some(connector.clone()),
    )
    .await
    .map_err(|e| CallError::connect(url, e))?;
    Ok(ws)
}

/// Reads the next text frame, with its personal number.
async fn next_frame(ws: &mut Ws, url: &str) -> Result<(ServerFrame, Option<u64>), CallError> {
    loop {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| CallError::connect_message(url, "the server closed the connection"))?
            .map_err(|e| CallError::connect(url, e))?;
        let WsMessage::Text(text) = msg else {
            continue;
        };
        let frame = serde_json::from_str::<ServerFrame>(&text).map_err(CallError::protocol)?;
        return Ok((frame, protocol::frame_number(&text)));
    }
}

async fn send(ws: &mut Ws, url: &str, frame: &ClientFrame) -> Result<(), CallError> {
    ws.send(WsMessage::text(protocol::encode(frame)))
        .await
        .map_err(|e| CallError::connect(url, e))
}

fn hello(credentials: &Credentials) -> ClientFrame {
    ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        token: credentials.token.clone(),
    }
}

/// What a `welcome` says: the user, the session's resume key, and when the token expires.
pub(super) struct Welcome {
    pub(super) user_id: UserId,
    pub(super) resume_key: String,
    pub(super) expires_at: u64,
}

/// Waits for `welcome` after a `hello`.
async fn welcomed(ws: &mut Ws, url: &str) -> Result<Welcome, CallError> {
    match next_frame(ws, url).await?.0 {
        ServerFrame::Welcome {
            user_id,
            resume_key,
            expires_at,
            ..
        } => Ok(Welcome {
            user_id,
            resume_key,
            expires_at,
        }),
        ServerFrame::Error { code, message, .. } => {
            Err(CallError::Rejected(OpError { code, message }))
        }
        other => Err(CallError::protocol_message(format!(
            "expected welcome, got {other:?}"
        ))),
    }
}

/// Opens the WebSocket and logs in: `hello` → `welcome`, which names the user and the session.
pub(super) async fn login(
    url: &str,
    credentials: &Credentials,
    connector: &Connector,
) -> Result<(Ws, Welcome), CallError> {
    let mut ws = open(url, connector).await?;
    send(&mut ws, url, &hello(credentials)).await?;
    let welcome = welcomed(&mut ws, url).await?;
    Ok((ws, welcome))
}

/// The connection task: the only owner of the socket. It does what the connection policy
/// ([`LinkCore`]) says: ping, count a silent server as lost, wait, attempt, come back online,
/// finish; and moves frames in between.
pub(super) async fn run(
    ws: Ws,
    shared: Arc<Mutex<Shared>>,
    mut commands: mpsc::Receiver<Command>,
    finished: watch::Sender<bool>,
    mut link: Link,
) {
    let timing = LinkTiming {
        policy: link.options.reconnect.clone(),
        keepalive: link.options.keepalive,
        idle_timeout: link.options.idle_timeout,
        connect_timeout: link.options.connect_timeout,
    };
    let seed = u64::from(crate::media::rand_u32()) << 32 | u64::from(crate::media::rand_u32());
    let mut policy = LinkCore::new(timing, now(), seed);
    let mut driver = Driver {
        ws: Some(ws),
        skip: HashSet::new(),
        held: Vec::new(),
    };
    let mut outputs = Vec::new();
    let reason = 'call: loop {
        // What the policy said last is done first (each step may say more).
        while !outputs.is_empty() {
            for output in std::mem::take(&mut outputs) {
                match output {
                    LinkOutput::Finish(reason) => {
                        if let Some(mut ws) = driver.ws.take() {
                            let _ = ws.close(None).await;
                        }
                        break 'call reason;
                    }
                    LinkOutput::Offline => {
                        driver.ws = None;
                        lock(&shared).online = false;
                    }
                    LinkOutput::Reconnecting { attempt, reason } => {
                        lock(&shared).publish(CallEvent::Reconnecting { attempt, reason });
                    }
                    LinkOutput::Ping => {
                        let taken = lock(&shared).session.taken();
                        let ping = ClientFrame::Ping {
                            received: taken.received,
                            room: taken.room,
                            seq: taken.seq,
                        };
                        let sent = match driver.ws.as_mut() {
                            Some(ws) => ws
                                .send(WsMessage::text(protocol::encode(&ping)))
                                .await
                                .is_ok(),
                            None => false,
                        };
                        if !sent {
                            outputs.extend(policy.lost(now(), Reason::Network));
                        }
                    }
                    LinkOutput::Attempt => {
                        match driver
                            .attempt(&shared, &mut commands, &mut link, &mut policy)
                            .await
                        {
                            Some(more) => outputs.extend(more),
                            None => outputs.extend(policy.close(Reason::Quit)),
                        }
                    }
                    // Dropped with the attempt's future already; `Online` came with the socket.
                    LinkOutput::Abandon | LinkOutput::Online => {}
                }
            }
        }
        outputs = match driver.ws.as_mut() {
            Some(ws) => serve(ws, &shared, &mut commands, &mut policy, &mut driver.skip).await,
            None => tokio::select! {
                () = until(policy.next_deadline()) => policy.tick(now()),
                cmd = commands.recv() => if driver.take(cmd) {
                    Vec::new()
                } else {
                    policy.close(Reason::Quit)
                },
            },
        };
    };
    lock(&shared).finish(reason);
    let _ = finished.send(true);
}

/// The socket and what goes on it around a reconnect.
struct Driver {
    ws: Option<Ws>,
    /// Requests sent again after a resume already: not sent twice when their command arrives.
    skip: HashSet<OperationId>,
    /// Frames without an answer (ICE candidates) that came while offline, a bounded number.
    held: Vec<String>,
}

impl Driver {
    /// A command that came while offline: requests wait in the session (they are sent from
    /// there); other frames are held, a bounded number. False when the call is to close.
    fn take(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Request(..)) => true,
            Some(Command::Frame(text)) => {
                if self.held.len() < HELD_FRAMES {
                    self.held.push(text);
                }
                true
            }
            Some(Command::Close) | None => false,
        }
    }

    /// One attempt, as the policy asked: connect and resume (or log in again), then send
    /// again what is unanswered and what was held. The policy's outputs after it; `None` when
    /// the application closed the call meanwhile.
    async fn attempt(
        &mut self,
        shared: &Mutex<Shared>,
        commands: &mut mpsc::Receiver<Command>,
        link: &mut Link,
        policy: &mut LinkCore,
    ) -> Option<Vec<LinkOutput>> {
        let result = {
            let attempt = attempt(shared, link);
            tokio::pin!(attempt);
            loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    // Too slow: the policy abandons it (the future is dropped with its socket).
                    () = until(policy.next_deadline()) => return Some(policy.tick(now())),
                    cmd = commands.recv() => if !self.take(cmd) { return None },
                }
            }
        };
        let (mut ws, fresh) = match result {
            Ok(Attempt::Resumed(ws)) => (ws, false),
            Ok(Attempt::Fresh(ws, key)) => {
                link.resume_key = key;
                self.held.clear();
                (ws, true)
            }
            Err(CallError::Rejected(e)) => {
                tracing::warn!(error = %e, "reconnecting refused");
                return Some(policy.attempted(now(), Attempted::Refused(e.code)));
            }
            Err(e) => {
                tracing::debug!(error = %e, "reconnecting failed");
                return Some(policy.attempted(now(), Attempted::Failed));
            }
        };
        // Under one lock: what is unanswered now is sent below, and every later request goes
        // through the queue, so none is missed and none sent twice.
        let frames = {
            let mut s = lock(shared);
            if fresh {
                s.session_lost();
            }
            s.online = true;
            s.session.unanswered()
        };
        let mut sent = HashSet::new();
        let mut ok = true;
        for (op, text) in frames {
            sent.insert(op);
            ok &= ws.send(WsMessage::text(text)).await.is_ok();
        }
        for text in self.held.drain(..) {
            ok &= ws.send(WsMessage::text(text)).await.is_ok();
        }
        if !ok {
            lock(shared).online = false;
            return Some(policy.lost(now(), Reason::Network));
        }
        self.ws = Some(ws);
        self.skip = sent;
        Some(policy.attempted(now(), Attempted::Connected))
    }
}

/// Moves frames until the policy has something to do: its deadline (a ping, a silent server),
/// a lost or closed socket, the application closing the call. Requests in `skip` were sent
/// again already (after a resume) and are not sent twice.
async fn serve(
    ws: &mut Ws,
    shared: &Mutex<Shared>,
    commands: &mut mpsc::Receiver<Command>,
    policy: &mut LinkCore,
    skip: &mut HashSet<OperationId>,
) -> Vec<LinkOutput> {
    loop {
        tokio::select! {
            () = until(policy.next_deadline()) => {
                let outputs = policy.tick(now());
                if !outputs.is_empty() {
                    return outputs;
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Request(op, text)) => {
                    // Sent again after a resume already, or answered meanwhile, or failed with
                    // a session the server lost: not for this connection.
                    if skip.remove(&op) || !lock(shared).session.is_pending(op) {
                        continue;
                    }
                    if ws.send(WsMessage::text(text)).await.is_err() {
                        return policy.lost(now(), Reason::Network);
                    }
                }
                Some(Command::Frame(text)) => {
                    if ws.send(WsMessage::text(text)).await.is_err() {
                        return policy.lost(now(), Reason::Network);
                    }
                }
                Some(Command::Close) | None => return policy.close(Reason::Quit),
            },
            msg = ws.next() => match msg {
                Some(Ok(WsMessage::Text(text))) => {
                    policy.heard(now());
                    match serde_json::from_str::<ServerFrame>(&text) {
                        Ok(frame) => {
                            let goodbye = match &frame {
                                ServerFrame::Goodbye { reason, reconnect } => Some((*reason, *reconnect)),
                                _ => None,
                            };
                            lock(shared).handle(frame, protocol::frame_number(&text));
                            match goodbye {
                                Some((reason, true)) => return policy.lost(now(), reason),
                                Some((reason, false)) => return policy.close(reason),
                                None => {}
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable frame from the server"),
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return policy.lost(now(), Reason::Network),
                Some(Ok(_)) => policy.heard(now()),
            },
        }
    }
}

/// What one attempt to connect again gave.
enum Attempt {
    /// The session resumed on `ws`.
    Resumed(Ws),
    /// The server did not know the session; `ws` is logged in on a new one (`key`).
    Fresh(Ws, String),
}

/// One attempt: connect, `resume`; when the session is unknown, `hello` on the same socket.
async fn attempt(shared: &Mutex<Shared>, link: &Link) -> Result<Attempt, CallError> {
    let url = link.url.as_str();
    let mut ws = open(url, &link.connector).await?;
    // The latest token: a refreshed one if the call refreshed it.
    let (taken, credentials) = {
        let s = lock(shared);
        (s.session.taken(), s.resume_credentials())
    };
    let resume = ClientFrame::Resume {
        version: PROTOCOL_VERSION,
        token: credentials.token.clone(),
        resume_key: link.resume_key.clone(),
        received: taken.received,
        room: taken.room,
        seq: taken.seq,
    };
    send(&mut ws, url, &resume).await?;
    let (frame, n) = next_frame(&mut ws, url).await?;
    match frame {
        ServerFrame::Resumed {
            replayed,
            ref resync,
            ..
        } => {
            let resync = resync.is_some();
            {
                let mut s = lock(shared);
                if !resync {
                    s.publish(CallEvent::Reconnected { replayed });
                }
                // A resync's state (and its event) comes from the session core.
                s.handle(frame, n);
            }
            // The replay first: what it answers is not sent again.
            for _ in 0..replayed {
                let (frame, n) = next_frame(&mut ws, url).await?;
                lock(shared).handle(frame, n);
            }
            Ok(Attempt::Resumed(ws))
        }
        ServerFrame::Error {
            code: ErrorCode::UnknownSession,
            ..
        } => {
            send(&mut ws, url, &hello(&credentials)).await?;
            let welcome = welcomed(&mut ws, url).await?;
            lock(shared).token_expires(welcome.expires_at);
            Ok(Attempt::Fresh(ws, welcome.resume_key))
        }
        ServerFrame::Error { code, message, .. } => {
            Err(CallError::Rejected(OpError { code, message }))
        }
        other => Err(CallError::protocol_message(format!(
            "expected resumed, got {other:?}"
        ))),
    }
}

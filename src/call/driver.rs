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
        let config = crate::tls::client_config(tls).map_err(|e| connect_err(url, &e))?;
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
    .map_err(|e| connect_err(url, &e))?;
    Ok(ws)
}

fn connect_err(url: &str, e: &dyn std::fmt::Display) -> CallError {
    CallError::Connect {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

/// Reads the next text frame, with its personal number.
async fn next_frame(ws: &mut Ws, url: &str) -> Result<(ServerFrame, Option<u64>), CallError> {
    loop {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| connect_err(url, &"the server closed the connection"))?
            .map_err(|e| connect_err(url, &e))?;
        let WsMessage::Text(text) = msg else {
            continue;
        };
        let frame =
            serde_json::from_str::<ServerFrame>(&text).map_err(|e| CallError::Protocol {
                message: e.to_string(),
            })?;
        return Ok((frame, protocol::frame_number(&text)));
    }
}

async fn send(ws: &mut Ws, url: &str, frame: &ClientFrame) -> Result<(), CallError> {
    ws.send(WsMessage::text(protocol::encode(frame)))
        .await
        .map_err(|e| connect_err(url, &e))
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
        other => Err(CallError::Protocol {
            message: format!("expected welcome, got {other:?}"),
        }),
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

/// How a connection ended.
enum Ended {
    /// For good: the application closed the call, or the server ended the session.
    Closed(Reason),
    /// Lost: connect again.
    Lost(Reason),
}

/// The connection task: the only owner of the socket.
pub(super) async fn run(
    mut ws: Ws,
    shared: Arc<Mutex<Shared>>,
    mut commands: mpsc::Receiver<Command>,
    finished: watch::Sender<bool>,
    mut link: Link,
) {
    let mut skip = HashSet::new();
    let reason = loop {
        let lost = match serve(&mut ws, &shared, &mut commands, &link.options, &mut skip).await {
            Ended::Closed(reason) => break reason,
            Ended::Lost(reason) => reason,
        };
        if link.options.reconnect.max_attempts == 0 {
            break lost;
        }
        match reconnect(&shared, &mut commands, &mut link, lost).await {
            Ok((new, sent)) => {
                ws = new;
                skip = sent;
            }
            Err(reason) => break reason,
        }
    };
    lock(&shared).finish(reason);
    let _ = finished.send(true);
}

/// Moves frames until the connection ends. Requests in `skip` were sent again already (after a
/// resume) and are not sent twice.
async fn serve(
    ws: &mut Ws,
    shared: &Mutex<Shared>,
    commands: &mut mpsc::Receiver<Command>,
    options: &CallOptions,
    skip: &mut HashSet<OperationId>,
) -> Ended {
    // A server that goes silent (a dead host, a cut link) is noticed: the call pings it, and
    // counts the connection lost when nothing at all has come back for the idle timeout.
    let mut keepalive = tokio::time::interval(options.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.reset();
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= options.idle_timeout {
                    return Ended::Lost(Reason::Timeout);
                }
                let taken = lock(shared).session.taken();
                let ping = ClientFrame::Ping { received: taken.received, room: taken.room, seq: taken.seq };
                if ws.send(WsMessage::text(protocol::encode(&ping))).await.is_err() {
                    return Ended::Lost(Reason::Network);
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
                        return Ended::Lost(Reason::Network);
                    }
                }
                Some(Command::Frame(text)) => {
                    if ws.send(WsMessage::text(text)).await.is_err() {
                        return Ended::Lost(Reason::Network);
                    }
                }
                Some(Command::Close) | None => {
                    let _ = ws.close(None).await;
                    return Ended::Closed(Reason::Quit);
                }
            },
            msg = ws.next() => match msg {
                Some(Ok(WsMessage::Text(text))) => {
                    last_heard = tokio::time::Instant::now();
                    match serde_json::from_str::<ServerFrame>(&text) {
                        Ok(frame) => {
                            let goodbye = match &frame {
                                ServerFrame::Goodbye { reason, reconnect } => Some((*reason, *reconnect)),
                                _ => None,
                            };
                            lock(shared).handle(frame, protocol::frame_number(&text));
                            match goodbye {
                                Some((reason, true)) => return Ended::Lost(reason),
                                Some((reason, false)) => {
                                    let _ = ws.close(None).await;
                                    return Ended::Closed(reason);
                                }
                                None => {}
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable frame from the server"),
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return Ended::Lost(Reason::Network),
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
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
        other => Err(CallError::Protocol {
            message: format!("expected resumed, got {other:?}"),
        }),
    }
}

/// Connects again, as the policy allows. Returns the new socket with the requests already
/// sent again on it, or why the call ends.
async fn reconnect(
    shared: &Mutex<Shared>,
    commands: &mut mpsc::Receiver<Command>,
    link: &mut Link,
    mut reason: Reason,
) -> Result<(Ws, HashSet<OperationId>), Reason> {
    lock(shared).online = false;
    let started = tokio::time::Instant::now();
    let policy = link.options.reconnect.clone();
    let mut held: Vec<String> = Vec::new();
    // Requests keep arriving meanwhile: the session holds them (they are sent from there);
    // other frames are held here, a bounded number.
    let take = |cmd: Option<Command>, held: &mut Vec<String>| match cmd {
        Some(Command::Request(..)) => true,
        Some(Command::Frame(text)) => {
            if held.len() < HELD_FRAMES {
                held.push(text);
            }
            true
        }
        Some(Command::Close) | None => false,
    };
    for n in 1.. {
        let Some(delay) = policy.delay(n, crate::media::rand_u32() as f64 / 4_294_967_296.0) else {
            return Err(reason);
        };
        if started.elapsed() + delay > policy.max_duration {
            return Err(reason);
        }
        lock(shared).publish(CallEvent::Reconnecting { attempt: n, reason });
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                cmd = commands.recv() => if !take(cmd, &mut held) { return Err(Reason::Quit) },
            }
        }
        let result = {
            let attempt = tokio::time::timeout(link.options.connect_timeout, attempt(shared, link));
            tokio::pin!(attempt);
            loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    cmd = commands.recv() => if !take(cmd, &mut held) { return Err(Reason::Quit) },
                }
            }
        };
        let (mut ws, fresh) = match result {
            Ok(Ok(Attempt::Resumed(ws))) => (ws, false),
            Ok(Ok(Attempt::Fresh(ws, key))) => {
                link.resume_key = key;
                held.clear();
                (ws, true)
            }
            // Refused for good (the token expired or was revoked…): no use retrying.
            Ok(Err(CallError::Rejected(e))) => {
                tracing::warn!(error = %e, "reconnecting refused");
                return Err(match e.code {
                    ErrorCode::TokenExpired => Reason::TokenExpired,
                    ErrorCode::TokenRevoked => Reason::TokenRevoked,
                    _ => Reason::InvalidPassword,
                });
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, attempt = n, "reconnecting failed");
                reason = Reason::Network;
                continue;
            }
            Err(_) => {
                reason = Reason::Timeout;
                continue;
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
        for text in held.drain(..) {
            ok &= ws.send(WsMessage::text(text)).await.is_ok();
        }
        if ok {
            return Ok((ws, sent));
        }
        lock(shared).online = false;
        reason = Reason::Network;
    }
    Err(reason)
}

//! The call's connection task: the only owner of the socket. It logs in, then moves frames:
//! the server's into the shared state (the session core decides what they mean), the call's
//! requests onto the socket; it pings, notices silence, and closes.

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::shared::{Shared, lock};
use super::{CallError, CallOptions, Command, Credentials};
use crate::event::OpError;
use crate::model::{Reason, UserId};
use crate::protocol::{self, ClientFrame, PROTOCOL_VERSION, ServerFrame};

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket read buffer of a call's connection, in bytes.
const READ_BUFFER: usize = 8 * 1024;

/// Opens the WebSocket and logs in: `hello` → `welcome`, which names the user.
pub(super) async fn login(url: &str, credentials: &Credentials) -> Result<(Ws, UserId), CallError> {
    let connect_err = |e: &dyn std::fmt::Display| CallError::Connect {
        url: url.to_owned(),
        message: e.to_string(),
    };
    // Small frames that wait for an answer: send each at once (no Nagle coalescing). A small
    // read buffer: tungstenite zero-fills the free part of it before every read, and the default
    // (128 KiB) made that a large share of receiving a frame; larger frames still fit (the buffer
    // grows for them).
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| connect_err(&e))?;
    let hello = ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        token: credentials.token.clone(),
    };
    ws.send(WsMessage::text(protocol::encode(&hello)))
        .await
        .map_err(|e| connect_err(&e))?;
    loop {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| connect_err(&"the server closed the connection"))?
            .map_err(|e| connect_err(&e))?;
        let WsMessage::Text(text) = msg else {
            continue;
        };
        return match serde_json::from_str::<ServerFrame>(&text) {
            Ok(ServerFrame::Welcome { user_id, .. }) => Ok((ws, user_id)),
            Ok(ServerFrame::Error { code, message, .. }) => {
                Err(CallError::Rejected(OpError { code, message }))
            }
            Ok(other) => Err(CallError::Protocol {
                message: format!("expected welcome, got {other:?}"),
            }),
            Err(e) => Err(CallError::Protocol {
                message: e.to_string(),
            }),
        };
    }
}

/// The connection task: the only owner of the socket.
pub(super) async fn run(
    mut ws: Ws,
    shared: Arc<Mutex<Shared>>,
    mut commands: mpsc::Receiver<Command>,
    finished: watch::Sender<bool>,
    options: CallOptions,
) {
    // A server that goes silent (a dead host, a cut link) is noticed: the call pings it, and
    // gives up when nothing at all has come back for the idle timeout.
    let mut keepalive = tokio::time::interval(options.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.reset();
    let mut last_heard = tokio::time::Instant::now();
    let reason = loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= options.idle_timeout {
                    break Reason::Network;
                }
                if ws.send(WsMessage::Ping(Default::default())).await.is_err() {
                    break Reason::Network;
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Frame(text)) => {
                    if ws.send(WsMessage::text(text)).await.is_err() {
                        break Reason::Network;
                    }
                }
                Some(Command::Close) | None => {
                    let _ = ws.close(None).await;
                    break Reason::Quit;
                }
            },
            msg = ws.next() => match msg {
                Some(Ok(WsMessage::Text(text))) => {
                    last_heard = tokio::time::Instant::now();
                    match serde_json::from_str::<ServerFrame>(&text) {
                        Ok(frame) => {
                            let goodbye = match &frame {
                                ServerFrame::Goodbye { reason } => Some(*reason),
                                _ => None,
                            };
                            lock(&shared).handle(frame);
                            if let Some(reason) = goodbye {
                                let _ = ws.close(None).await;
                                break reason;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable frame from the server"),
                    }
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break Reason::Network,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
        }
    };
    lock(&shared).finish(reason);
    let _ = finished.send(true);
}

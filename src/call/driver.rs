//! The call's driver: the one task that owns its socket. It logs in, then does what the client
//! core (`call/core/`) says and tells it what happened: it opens sockets, sends frames, hands
//! over what arrives, wakes the core at its deadlines and asks the token provider. It makes no
//! decision of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::clock::until;
use super::core::Input;
use super::shared::{Shared, SocketWork, lock};
use super::{CallError, Credentials, TlsRoots, TokenProvider};
use crate::event::OpError;
use crate::model::UserId;
use crate::protocol::{self, ClientFrame, PROTOCOL_VERSION, ServerFrame};

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket read buffer of a call's connection, in bytes.
const READ_BUFFER: usize = 8 * 1024;

/// Where the call connects, and how.
pub(super) struct Link {
    pub(super) url: String,
    /// How to open the socket: plain, or TLS with the configuration made once for the call.
    pub(super) connector: Connector,
    /// Asked for a new token when the core says so.
    pub(super) provider: Option<TokenProvider>,
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

/// Something the driver waits for beside the socket: a socket being opened, the token
/// provider at work.
type Work<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The driver: runs until the core says the call is over (the application closes it when
/// every handle is dropped or [`Call::close`](super::Call::close) is called).
pub(super) async fn run(
    ws: Ws,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    mut close: mpsc::Receiver<()>,
    finished: watch::Sender<bool>,
    link: Link,
) {
    let mut ws = Some(ws);
    let mut opening: Option<Work<Result<Ws, CallError>>> = None;
    let mut token: Option<Work<Option<String>>> = None;
    let mut closing = false;
    loop {
        // What the core said, in order (doing it may make it say more).
        loop {
            let Some(work) = lock(&shared).socket.pop_front() else {
                lock(&shared).drained.notify_waiters();
                break;
            };
            match work {
                SocketWork::Send(text) => {
                    let sent = match ws.as_mut() {
                        Some(socket) => socket.send(WsMessage::text(text)).await.is_ok(),
                        // Sent while the socket is gone: the core hears it is lost soon.
                        None => true,
                    };
                    if !sent {
                        ws = None;
                        step(&shared, Input::SocketLost);
                    }
                }
                SocketWork::Connect => {
                    ws = None;
                    let (url, connector) = (link.url.clone(), link.connector.clone());
                    opening = Some(Box::pin(async move { open(&url, &connector).await }));
                }
                SocketWork::Disconnect => {
                    ws = None;
                    opening = None;
                }
                SocketWork::WantToken => {
                    if let Some(provider) = &link.provider {
                        // The provider runs without a handle on the call, so dropping the last
                        // handle while it works still ends the call.
                        let provider = provider.clone();
                        token = Some(Box::pin(async move {
                            match (provider.0)().await {
                                Ok(token) => Some(token),
                                Err(e) => {
                                    tracing::warn!(error = %e, "the token provider failed");
                                    None
                                }
                            }
                        }));
                    }
                }
                SocketWork::Finished => {
                    if let Some(mut socket) = ws.take() {
                        let _ = socket.close(None).await;
                    }
                    let _ = finished.send(true);
                    return;
                }
            }
        }
        let deadline = lock(&shared).core.next_deadline();
        let input = tokio::select! {
            () = wake.notified() => continue,
            () = until(deadline) => Input::Tick,
            _ = close.recv(), if !closing => {
                // Closed by the application, or every handle dropped.
                closing = true;
                Input::Close
            }
            opened = async { opening.as_mut().expect("guarded").await }, if opening.is_some() => {
                opening = None;
                match opened {
                    Ok(socket) => {
                        ws = Some(socket);
                        Input::Opened
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnecting failed");
                        Input::OpenFailed
                    }
                }
            }
            given = async { token.as_mut().expect("guarded").await }, if token.is_some() => {
                token = None;
                Input::Token(given)
            }
            msg = async { ws.as_mut().expect("guarded").next().await }, if ws.is_some() => match msg {
                Some(Ok(WsMessage::Text(text))) => {
                    // Parsed by the core where it lies.
                    step(&shared, Input::Text(text.as_str()));
                    continue;
                }
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                    ws = None;
                    Input::SocketLost
                }
                Some(Ok(_)) => Input::Heard,
            },
        };
        step(&shared, input);
    }
}

/// Hands the core one input.
fn step(shared: &Mutex<Shared>, input: Input<'_>) {
    lock(shared).step(|core, now| core.handle(now, input));
}

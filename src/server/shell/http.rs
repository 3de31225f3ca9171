//! The server's one port: every connection speaks HTTP/1.1 until it asks for the WebSocket
//! upgrade (at `/signal`, or `/`): from then on it is a signaling connection (`conn.rs`, with its
//! limits, decoder and batched writes). Any other request is the health checks, the metrics or
//! the server API (`api.rs`). A connection that has not upgraded by the handshake deadline is
//! closed, like one that has not said `hello`: an HTTP client opens a new one.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::Instrument;

use super::conn::{self, Start};
use super::{State, stopped};

/// The paths that take the WebSocket upgrade.
pub(crate) const SIGNAL_PATHS: [&str; 2] = ["/signal", "/"];

/// Largest request head (line and headers) read, in bytes: an API request needs far less.
const MAX_HEAD: usize = 16 * 1024;

/// How long a request in flight at the handshake deadline may take to be answered.
const LAST_ANSWER: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves one accepted (and, with TLS, decrypted) connection.
pub(super) async fn serve<S>(
    socket: S,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    mut start: Start,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The HTTP phase on the heap, freed once the connection upgrades: a task's future is as
    // large as its largest state, and an idle signaling connection keeps none of hyper's.
    let upgraded = Box::pin(http_phase(socket, deadline.as_mut(), &mut start)).await;
    if let Some(upgraded) = upgraded {
        let ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(conn::websocket_config()),
        )
        .await;
        conn::run(ws, deadline, &mut start).await;
    }
    start.done();
}

/// HTTP/1.1 until the connection upgrades (its upgraded socket) or ends (`None`).
async fn http_phase<S>(
    socket: S,
    mut deadline: Pin<&mut tokio::time::Sleep>,
    start: &mut Start,
) -> Option<Upgraded>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (upgrade_tx, mut upgrade_rx) = oneshot::channel::<OnUpgrade>();
    let slot = Arc::new(Mutex::new(Some(upgrade_tx)));
    let state = start.state.clone();
    let service = hyper::service::service_fn(move |request| {
        let (state, slot) = (state.clone(), slot.clone());
        async move { Ok::<_, Infallible>(respond(request, state, slot).await) }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD.max(8192))
        .serve_connection(TokioIo::new(socket), service)
        .with_upgrades();
    tokio::pin!(http);
    let served = tokio::select! {
        served = &mut http => served,
        // Time is up for a connection that has not upgraded: a request in flight is answered,
        // then the connection closes (keep-alive clients open a new one).
        _ = &mut deadline => {
            http.as_mut().graceful_shutdown();
            match tokio::time::timeout(LAST_ANSWER, &mut http).await {
                Ok(served) => served,
                Err(_) => return None,
            }
        }
        _ = stopped(&mut start.stop) => return None,
        _ = &mut start.evict => return None,
    };
    if let Err(e) = served {
        tracing::debug!(peer = %start.peer, error = %e, "HTTP connection failed");
    }
    let upgrade = upgrade_rx.try_recv().ok()?;
    match upgrade.await {
        Ok(upgraded) => Some(upgraded),
        Err(e) => {
            tracing::debug!(peer = %start.peer, error = %e, "WebSocket upgrade failed");
            None
        }
    }
}

/// Answers one request: the WebSocket upgrade itself, or the routes.
async fn respond(
    mut request: Request<Incoming>,
    state: Arc<State>,
    slot: Arc<Mutex<Option<oneshot::Sender<OnUpgrade>>>>,
) -> Response<Body> {
    if !wants_websocket(request.headers()) {
        return routed(state, request).await;
    }
    if !SIGNAL_PATHS.contains(&request.uri().path()) {
        return plain(
            StatusCode::NOT_FOUND,
            "no WebSocket endpoint here: signaling is at /signal",
        );
    }
    let key = match check_upgrade(&request) {
        Ok(key) => key,
        Err(Unfit::Request(why)) => return plain(StatusCode::BAD_REQUEST, why),
        Err(Unfit::Version) => {
            let mut refused = plain(
                StatusCode::UPGRADE_REQUIRED,
                "this server speaks WebSocket version 13",
            );
            refused.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return refused;
        }
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let Some(tx) = slot.lock().ok().and_then(|mut s| s.take()) else {
        return plain(StatusCode::BAD_REQUEST, "one upgrade per connection");
    };
    let _ = tx.send(upgrade);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// A request for the routes, in a span naming it by its request id: the client's
/// `X-Request-Id` (up to 64 visible characters), or one made here; the answer carries it.
async fn routed(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req-{}", MADE.fetch_add(1, Ordering::Relaxed) + 1));
    let span = tracing::info_span!(
        "http",
        request = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = super::api::route(state, request.map(Body::new))
        .instrument(span.clone())
        .await;
    tracing::debug!(parent: &span, status = response.status().as_u16(), "answered");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The header naming a request in logs and answers.
const REQUEST_ID: &str = "x-request-id";

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Why an upgrade request is refused.
enum Unfit {
    /// Not a well-formed upgrade (400).
    Request(&'static str),
    /// Another WebSocket version than 13 (426).
    Version,
}

/// Checks an upgrade request (RFC 6455, section 4.2.1); returns its key, or why not.
fn check_upgrade(request: &Request<Incoming>) -> Result<String, Unfit> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if request.method() != Method::GET || !has_token(header::CONNECTION, "upgrade") {
        return Err(Unfit::Request(
            "a WebSocket upgrade is a GET with Connection: upgrade",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Unfit::Version);
    }
    match headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
    {
        Some(key) if !key.is_empty() => Ok(key.to_owned()),
        _ => Err(Unfit::Request(
            "a WebSocket upgrade needs Sec-WebSocket-Key",
        )),
    }
}

/// A plain-text answer.
pub(super) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

//! How a [`Call`](crate::Call) logs in and is tuned, and the client layer's error.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::OpError;
use crate::model::{OperationId, Reason};
// Defined beside the TLS code, which the server's HTTP client shares; re-exported here, as
// `jrtc::call::TlsRoots`.
pub use crate::tls::TlsRoots;

/// How a [`Call`](crate::Call) logs in: a signed access token (see
/// [`AccessToken`](crate::AccessToken)). Made from the token string:
/// `Call::connect(url, token)` takes a `String` or `&str` as well.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) token: String,
}

impl Credentials {
    /// Logs in with this access token.
    pub fn token(token: impl Into<String>) -> Self {
        Credentials {
            token: token.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is a password: keep it out of logs.
        f.write_str("Credentials { token: <hidden> }")
    }
}

impl From<String> for Credentials {
    fn from(token: String) -> Self {
        Credentials::token(token)
    }
}

impl From<&str> for Credentials {
    fn from(token: &str) -> Self {
        Credentials::token(token)
    }
}

impl From<&String> for Credentials {
    fn from(token: &String) -> Self {
        Credentials::token(token.clone())
    }
}

/// Tuning of a [`Call`](crate::Call). `CallOptions::default()` suits most applications.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallOptions {
    /// Events a subscriber may have queued before it starts missing some (and is told so with
    /// [`CallEvent::Lagged`](crate::CallEvent::Lagged)): exactly this many (at least 1; 4,096 by
    /// default). One queue serves every subscriber, and it holds memory only for events some
    /// subscriber has yet to read: an idle call keeps none.
    pub event_capacity: usize,
    /// How long connecting and logging in may take.
    pub connect_timeout: Duration,
    /// How often the call pings the server (2.5 s); each ping also tells the server what the
    /// call has taken, so it can forget it.
    pub keepalive: Duration,
    /// The call counts the connection as lost when nothing at all has come from the server for
    /// this long (7.5 s), and reconnects.
    pub idle_timeout: Duration,
    /// How the call reconnects after a lost connection.
    pub reconnect: ReconnectPolicy,
    /// Requests a call may hold unanswered while it is reconnecting (64: they are all sent
    /// again at once when it is back, within the server's default request burst); more are
    /// refused with [`CallError::Offline`].
    pub offline_queue: usize,
    /// Where the call's peer connections bind their UDP sockets; `None`: loopback for a server
    /// on this machine, any address otherwise.
    pub media_bind: Option<std::net::SocketAddr>,
    /// Which certificate authorities a `wss://` server's certificate must come from (the
    /// platform's by default).
    pub tls: TlsRoots,
    /// Where the call gets a new access token before its current one expires; `None`: the
    /// application refreshes it ([`Call::refresh_token`](crate::Call::refresh_token)) or the
    /// session ends at expiry.
    pub token_provider: Option<TokenProvider>,
    /// Which videos the call publishes with simulcast (none by default; see [`Simulcast`](super::Simulcast)).
    pub simulcast: super::Simulcast,
}

/// What a [`TokenProvider`] gives: a new token, or why there is none.
pub type TokenResult = Result<String, Box<dyn std::error::Error + Send + Sync>>;

type ProvideFn = dyn Fn() -> futures::future::BoxFuture<'static, TokenResult> + Send + Sync;

/// Where a call gets fresh access tokens: an async function, typically asking the
/// application's backend. Made with [`TokenProvider::new`].
#[derive(Clone)]
pub struct TokenProvider(pub(crate) std::sync::Arc<ProvideFn>);

impl TokenProvider {
    /// A provider that calls `f` for each new token.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = TokenResult> + Send + 'static,
    {
        TokenProvider(std::sync::Arc::new(move || Box::pin(f())))
    }
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenProvider")
    }
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            event_capacity: 4096,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_millis(2500),
            idle_timeout: Duration::from_millis(7500),
            reconnect: ReconnectPolicy::default(),
            offline_queue: 64,
            media_bind: None,
            tls: TlsRoots::Platform,
            token_provider: None,
            simulcast: super::Simulcast::default(),
        }
    }
}

impl CallOptions {
    /// Checks every option's range (done when connecting): a broken rule is
    /// [`CallError::InvalidParam`] naming the option.
    pub fn validate(&self) -> Result<(), CallError> {
        let invalid = |message: &str| {
            Err(CallError::InvalidParam {
                message: message.to_owned(),
            })
        };
        if self.event_capacity == 0 {
            return invalid("event_capacity must be at least 1");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout must be more than 0");
        }
        if self.keepalive.is_zero() || self.keepalive >= self.idle_timeout {
            return invalid("keepalive must be more than 0 and shorter than idle_timeout");
        }
        if self.offline_queue == 0 {
            return invalid("offline_queue must be at least 1");
        }
        if let TlsRoots::Pem(pem) = &self.tls
            && crate::tls::certificates(pem).is_none_or(|c| c.is_empty())
        {
            return invalid("tls: the PEM text holds no readable certificate");
        }
        self.simulcast.validate()?;
        let r = &self.reconnect;
        if r.max_attempts > 0 && (r.max_delay < r.first_delay || r.max_delay.is_zero()) {
            return invalid("reconnect.max_delay must be more than 0 and at least first_delay");
        }
        if r.max_attempts > 0 && !(0.0..=1.0).contains(&r.jitter) {
            return invalid("reconnect.jitter must be between 0 and 1");
        }
        Ok(())
    }

    /// Sets [`CallOptions::tls`].
    pub fn tls(mut self, roots: TlsRoots) -> Self {
        self.tls = roots;
        self
    }

    /// Sets [`CallOptions::simulcast`].
    pub fn simulcast(mut self, simulcast: super::Simulcast) -> Self {
        self.simulcast = simulcast;
        self
    }

    /// Sets [`CallOptions::token_provider`].
    pub fn token_provider(mut self, provider: TokenProvider) -> Self {
        self.token_provider = Some(provider);
        self
    }

    /// Sets [`CallOptions::reconnect`].
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Sets [`CallOptions::offline_queue`] (at least 1).
    pub fn offline_queue(mut self, requests: usize) -> Self {
        self.offline_queue = requests;
        self
    }

    /// Sets [`CallOptions::event_capacity`] (at least 1; checked by
    /// [`Call::connect_with`](crate::Call::connect_with)).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Sets [`CallOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`CallOptions::keepalive`] (more than 0, shorter than the idle timeout; checked
    /// when connecting).
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets [`CallOptions::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

/// How to appear when joining a room. `JoinOptions::default()`: login display name, audio and
/// video off, empty state, receive every track.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JoinOptions {
    /// Display name in this room, instead of the login's.
    pub display_name: Option<String>,
    /// Start with the microphone flag on.
    pub audio: bool,
    /// Start with the camera flag on.
    pub video: bool,
    /// Initial custom state (at most 1 KiB).
    pub state: String,
    /// Receive every track published in the room (the default); `false`: only the tracks asked
    /// for with [`Call::subscribe_track`](crate::Call::subscribe_track).
    pub auto_subscribe: bool,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            display_name: None,
            audio: false,
            video: false,
            state: String::new(),
            auto_subscribe: true,
        }
    }
}

impl JoinOptions {
    /// Sets [`JoinOptions::display_name`].
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
    /// Sets [`JoinOptions::audio`].
    pub fn audio(mut self, on: bool) -> Self {
        self.audio = on;
        self
    }
    /// Sets [`JoinOptions::video`].
    pub fn video(mut self, on: bool) -> Self {
        self.video = on;
        self
    }
    /// Sets [`JoinOptions::state`].
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = state.into();
        self
    }
    /// Sets [`JoinOptions::auto_subscribe`].
    pub fn auto_subscribe(mut self, on: bool) -> Self {
        self.auto_subscribe = on;
        self
    }
}

/// How to invite. `InviteOptions::default()`: audio call, no extra info, the server's timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InviteOptions {
    /// Ask for a video call.
    pub video: bool,
    /// Free-form information for the callees (at most 1 KiB).
    pub extra: String,
    /// How long the invitations stay open (at most 10 minutes); `None`: the server's default.
    pub timeout: Option<Duration>,
}

impl InviteOptions {
    /// Sets [`InviteOptions::video`].
    pub fn video(mut self, on: bool) -> Self {
        self.video = on;
        self
    }
    /// Sets [`InviteOptions::extra`].
    pub fn extra(mut self, extra: impl Into<String>) -> Self {
        self.extra = extra.into();
        self
    }
    /// Sets [`InviteOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// What went wrong on the client side of a call.
///
/// A failure with a cause keeps it: [`source()`](std::error::Error::source) gives the
/// underlying error (the WebSocket's `tungstenite::Error`, whose own source is the
/// [`std::io::Error`] of a refused or reset connection; the JSON error of an undecodable
/// frame; the [`MediaError`](crate::MediaError) of a peer connection), and `message` says the
/// same in words. The causes are shared (`Arc`), so the error stays `Clone`; they are not
/// serialized.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallError {
    /// The server could not be reached, the WebSocket handshake failed, or the connection
    /// broke while logging in.
    Connect {
        /// The URL tried.
        url: String,
        /// What failed.
        message: String,
        /// The cause: the WebSocket's error (a `tungstenite::Error`: its source is the
        /// [`std::io::Error`] when the connection was refused or reset); `None` when the
        /// server closed the connection or the TLS roots were not usable.
        #[serde(skip)]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The server refused the login.
    Rejected(OpError),
    /// Connecting and logging in took longer than [`CallOptions::connect_timeout`].
    Timeout,
    /// The server answered with something this client does not understand.
    Protocol {
        /// What was wrong.
        message: String,
        /// The cause: the JSON error of a frame that does not decode; `None` for a frame
        /// that decodes but comes out of turn.
        #[serde(skip)]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The call is closed; nothing more can be sent.
    Closed {
        /// Why it closed.
        reason: Reason,
    },
    /// A parameter was refused before anything was sent.
    InvalidParam {
        /// Which rule it broke.
        message: String,
    },
    /// The server refused the operation (from [`Call::outcome`](crate::Call::outcome)).
    Refused {
        /// The operation.
        op: OperationId,
        /// Why.
        error: OpError,
    },
    /// Media could not be set up (a peer connection failed, or its negotiation).
    Media {
        /// What failed.
        message: String,
        /// The cause: the [`MediaError`](crate::MediaError) (whose source is the `webrtc`
        /// crate's error); `None` when the server did not answer in time or accepted no
        /// codec.
        #[serde(skip)]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// [`Call::outcome`](crate::Call::outcome) was asked about an operation this call does not
    /// know: never sent, or finished long ago and already forgotten.
    UnknownOperation(OperationId),
    /// The call is reconnecting and already holds [`CallOptions::offline_queue`] unanswered
    /// requests; this one was not taken (nothing was sent).
    Offline {
        /// Requests waiting.
        queued: usize,
    },
}

// Written out rather than derived: a derived `source` would hand out the `Arc` itself, which
// is not the error it holds (`downcast_ref::<std::io::Error>` would fail on it).
impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect { url, message, .. } => {
                write!(f, "cannot connect to {url}: {message}")
            }
            CallError::Rejected(error) => write!(f, "login refused: {error}"),
            CallError::Timeout => write!(f, "connecting timed out"),
            CallError::Protocol { message, .. } => write!(f, "protocol violation: {message}"),
            CallError::Closed { reason } => write!(f, "the call is closed ({reason})"),
            CallError::InvalidParam { message } => write!(f, "invalid parameter: {message}"),
            CallError::Refused { op, error } => write!(f, "{op} refused: {error}"),
            CallError::Media { message, .. } => write!(f, "media: {message}"),
            CallError::UnknownOperation(op) => write!(f, "{op} is not known to this call"),
            CallError::Offline { queued } => {
                write!(f, "reconnecting, and {queued} requests are waiting already")
            }
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Connect { source, .. }
            | CallError::Protocol { source, .. }
            | CallError::Media { source, .. } => source.as_deref().map(|e| e as _),
            _ => None,
        }
    }
}

impl CallError {
    /// [`CallError::Connect`] to `url`, caused by `source`.
    pub(crate) fn connect(
        url: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        CallError::Connect {
            url: url.to_owned(),
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// [`CallError::Connect`] to `url` with no error behind it.
    pub(crate) fn connect_message(url: &str, message: impl Into<String>) -> Self {
        CallError::Connect {
            url: url.to_owned(),
            message: message.into(),
            source: None,
        }
    }

    /// [`CallError::Protocol`] caused by `source` (a frame that does not decode).
    pub(crate) fn protocol(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        CallError::Protocol {
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// [`CallError::Protocol`] with no error behind it (a frame out of turn).
    pub(crate) fn protocol_message(message: impl Into<String>) -> Self {
        CallError::Protocol {
            message: message.into(),
            source: None,
        }
    }

    /// [`CallError::Media`] caused by `source`.
    pub(crate) fn media(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        CallError::Media {
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// [`CallError::Media`] with no error behind it.
    pub(crate) fn media_message(message: impl Into<String>) -> Self {
        CallError::Media {
            message: message.into(),
            source: None,
        }
    }
}

/// How a [`Call`](crate::Call) reconnects after losing its connection: the first attempt at
/// once, then waits growing from `first_delay` by `multiplier` up to `max_delay`, each shortened
/// by up to `jitter` of itself at random (so clients cut together do not come back together),
/// until `max_attempts` attempts or `max_duration` have passed. `max_attempts: 0` turns
/// reconnecting off (a lost connection closes the call, as before).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Most attempts (20).
    pub max_attempts: u32,
    /// Give up after this long without a connection (45 s).
    pub max_duration: Duration,
    /// The wait before the second attempt (300 ms).
    pub first_delay: Duration,
    /// Longest wait between attempts (5 s).
    pub max_delay: Duration,
    /// Growth of the wait per attempt (2).
    pub multiplier: f64,
    /// Share of each wait taken off at random, 0 to 1 (0.3).
    pub jitter: f64,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 20,
            max_duration: Duration::from_secs(45),
            first_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.3,
        }
    }
}

impl ReconnectPolicy {
    /// Never reconnect.
    pub fn never() -> Self {
        ReconnectPolicy {
            max_attempts: 0,
            ..Default::default()
        }
    }

    /// Sets [`ReconnectPolicy::max_attempts`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`ReconnectPolicy::max_duration`].
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = duration;
        self
    }

    /// Sets [`ReconnectPolicy::first_delay`] and [`ReconnectPolicy::max_delay`].
    pub fn delays(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max;
        self
    }

    /// The wait before attempt `attempt` (from 1), given `random` in [0, 1): none before the
    /// first, `None` once the policy gives up (by attempts; the caller checks the duration).
    pub fn delay(&self, attempt: u32, random: f64) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_attempts {
            return None;
        }
        if attempt == 1 {
            return Some(Duration::ZERO);
        }
        let grown = self.first_delay.as_secs_f64() * self.multiplier.powi(attempt as i32 - 2);
        let capped = grown.min(self.max_delay.as_secs_f64());
        Some(Duration::from_secs_f64(
            capped * (1.0 - self.jitter * random),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconnect_policy_starts_at_once_then_doubles_up_to_its_cap() {
        let p = ReconnectPolicy::default();
        let ms = |a| p.delay(a, 0.0).map(|d| d.as_millis());
        assert_eq!(
            (1..=7).map(ms).collect::<Vec<_>>(),
            [0, 300, 600, 1200, 2400, 4800, 5000].map(Some)
        );
        assert_eq!(ms(21), None);
        // Jitter only shortens a wait.
        assert_eq!(p.delay(3, 0.999).unwrap().as_millis(), 420);
        assert_eq!(ReconnectPolicy::never().delay(1, 0.0), None);
    }

    /// Every error in `e`'s chain, itself first.
    fn chain<'a>(
        e: &'a (dyn std::error::Error + 'static),
    ) -> Vec<&'a (dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e), |e| e.source()).collect()
    }

    #[tokio::test]
    async fn a_refused_connection_keeps_the_io_error_as_its_source() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}");
        let err = match crate::Call::connect(&url, "token").await {
            Err(err) => err,
            Ok(_) => panic!("connected to a closed port"),
        };
        let CallError::Connect { url: tried, .. } = &err else {
            panic!("expected a connect error, got {err:?}");
        };
        assert_eq!(tried, &url);
        let chain = chain(&err);
        assert!(
            chain[1].is::<tokio_tungstenite::tungstenite::Error>(),
            "{chain:?}"
        );
        let io = chain
            .iter()
            .find_map(|e| e.downcast_ref::<std::io::Error>())
            .unwrap_or_else(|| panic!("no io::Error in {chain:?}"));
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        // The message still says it in words, and a clone keeps the cause.
        assert!(
            err.to_string()
                .starts_with(&format!("cannot connect to {url}: ")),
            "{err}"
        );
        assert!(std::error::Error::source(&err.clone()).is_some());
    }

    #[test]
    fn a_media_error_keeps_the_webrtc_error_as_its_source() {
        let err = CallError::from(crate::MediaError::from(
            webrtc::error::Error::ErrConnectionClosed,
        ));
        let chain = chain(&err);
        assert!(chain[1].is::<crate::MediaError>(), "{chain:?}");
        assert!(chain[2].is::<webrtc::error::Error>(), "{chain:?}");
        // Not serialized: a round trip keeps the words, not the cause.
        let json = serde_json::to_string(&err).unwrap();
        let back: CallError = serde_json::from_str(&json).unwrap();
        assert!(
            matches!(back, CallError::Media { source: None, .. }),
            "{back:?}"
        );
        assert_eq!(back.to_string(), err.to_string());
    }
}

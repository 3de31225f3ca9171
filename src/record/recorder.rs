//! The recorder: a client of the server that takes recording jobs. It logs in with a token
//! that has the `recorder` grant (minted here from the server's secret), says
//! `recorder_ready`, and runs each job it is handed on a call of its own. The server runs one
//! inside itself when none is connected ([`ServerOptions::embedded_recorder`]); `jrtc-server
//! recorder` runs one as a process of its own.
//!
//! [`ServerOptions::embedded_recorder`]: crate::ServerOptions::embedded_recorder

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::storage::{LocalDir, Storage};
use crate::auth::{AccessToken, Grants};
use crate::call::{Call, CallError, CallOptions, TokenProvider};
use crate::event::{CallEvent, RecordingEvent};
use crate::model::{RecordingId, UserId};

/// How a [`Recorder`] works. `Default`: user `recorder`, files under `recordings/`, a job
/// aborted after 30 s without media, a video key frame asked for every 2 s
/// ([`RecorderOptions::DEFAULT_KEYFRAME_INTERVAL`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct RecorderOptions {
    /// The recorder's user id (members see it in the `recorder` role).
    pub user: UserId,
    /// Where the files go.
    pub storage: Arc<dyn Storage>,
    /// A job with unmuted tracks that receives no packet for this long is aborted
    /// (`no_media`).
    pub no_media_timeout: Duration,
    /// Options of the recorder's calls (TLS roots for a `wss://` server, …).
    pub call: CallOptions,
    /// While recording, a video track that sent no key frame for this long is asked for one
    /// (a picture loss indication, which the server relays to the publisher), so that a player
    /// seeking in the file decodes about this much video at most before the point it seeks
    /// to. Taken as 500 ms when shorter. `None`: key frames are asked for only at a track's
    /// start and after lost frames; browsers send them rarely on their own (45 s of a
    /// browser's camera held one), and a seek then decodes from far back. The default:
    /// [`RecorderOptions::DEFAULT_KEYFRAME_INTERVAL`].
    pub keyframe_interval: Option<Duration>,
}

impl std::fmt::Debug for RecorderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderOptions")
            .field("user", &self.user)
            .field("no_media_timeout", &self.no_media_timeout)
            .field("keyframe_interval", &self.keyframe_interval)
            .finish_non_exhaustive()
    }
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            user: UserId::from("recorder"),
            storage: Arc::new(LocalDir::new("recordings")),
            no_media_timeout: Duration::from_secs(30),
            call: CallOptions::default(),
            keyframe_interval: Some(Self::DEFAULT_KEYFRAME_INTERVAL),
        }
    }
}

impl RecorderOptions {
    /// The default [`RecorderOptions::keyframe_interval`], 2 s: a seek then decodes about 1 s
    /// of video on average (2 s at worst) before it shows the picture asked for, the interval
    /// live-streaming services ask of their senders. Key frames are not free: one weighs
    /// several delta frames (the publisher's rate control keeps its bitrate and spends a little
    /// picture quality on it), and the publisher sends it to every member of the room, not
    /// only to the recorder. Shorter intervals seek faster and cost the room more; longer ones
    /// the reverse.
    pub const DEFAULT_KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);

    /// Sets the user id.
    pub fn user(mut self, user: &str) -> Self {
        self.user = UserId::from(user);
        self
    }
    /// Writes to `storage`.
    pub fn storage(mut self, storage: impl Storage) -> Self {
        self.storage = Arc::new(storage);
        self
    }
    /// Writes under directory `dir` ([`LocalDir`]).
    pub fn dir(self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.storage(LocalDir::new(dir))
    }
    /// Sets the no-media timeout.
    pub fn no_media_timeout(mut self, timeout: Duration) -> Self {
        self.no_media_timeout = timeout;
        self
    }
    /// Sets the options of the recorder's calls.
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.call = options;
        self
    }
    /// Sets the key-frame interval (`None`: key frames only after losses).
    pub fn keyframe_interval(mut self, interval: Option<Duration>) -> Self {
        self.keyframe_interval = interval;
        self
    }
}

/// What the recorder's jobs share.
pub(crate) struct RecorderContext {
    url: String,
    secret: Vec<u8>,
    user: UserId,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) no_media_timeout: Duration,
    pub(crate) keyframe_interval: Option<Duration>,
    call: CallOptions,
}

impl RecorderContext {
    fn token(&self) -> Result<String, crate::TokenError> {
        AccessToken::new(self.user.as_str())
            .name("Recorder")
            .ttl(Duration::from_secs(3600))
            .grants(Grants::none().recorder(true))
            .sign(&self.secret)
    }

    /// A call of the recorder's user, refreshing its own tokens.
    pub(crate) async fn connect(self: &Arc<Self>) -> Result<Call, CallError> {
        let token = self.token().map_err(|e| CallError::InvalidParam {
            message: e.to_string(),
        })?;
        let me = Arc::downgrade(self);
        let provider = TokenProvider::new(move || {
            let me = me.upgrade();
            async move {
                match me {
                    Some(me) => Ok(me.token()?),
                    None => Err("the recorder is gone".into()),
                }
            }
        });
        let options = self.call.clone().token_provider(provider);
        Call::connect_with(&self.url, token, options).await
    }
}

/// A recorder connected to a server (see the module docs).
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Connects to the server at `url`, whose token secret is `secret`, and records the jobs
    /// it is handed until its connection ends (the server shut down, or the connection was
    /// lost: the server has then aborted its jobs, reason `recorder_lost`). Jobs running then
    /// close their files.
    pub async fn run(url: &str, secret: &[u8], options: RecorderOptions) -> Result<(), CallError> {
        let ctx = Arc::new(RecorderContext {
            url: url.to_owned(),
            secret: secret.to_vec(),
            user: options.user,
            storage: options.storage,
            no_media_timeout: options.no_media_timeout,
            keyframe_interval: options.keyframe_interval,
            call: options.call,
        });
        let control = ctx.connect().await?;
        let mut events = control.events();
        let op = control.recorder_ready().await?;
        control.outcome(op).await?;
        tracing::info!(user = %ctx.user, %url, "recorder ready");
        let mut jobs: HashMap<RecordingId, mpsc::Sender<crate::StopReason>> = HashMap::new();
        while let Some(event) = events.next().await {
            match event {
                CallEvent::Recording(RecordingEvent::Job(job)) => {
                    tracing::info!(recording = %job.recording, room = %job.room, "recording job");
                    let (tx, rx) = mpsc::channel(1);
                    jobs.retain(|_, tx| !tx.is_closed());
                    jobs.insert(job.recording.clone(), tx);
                    tokio::spawn(super::job::run(ctx.clone(), control.clone(), job, rx));
                }
                CallEvent::Recording(RecordingEvent::StopAsked { recording, reason }) => {
                    if let Some(tx) = jobs.remove(&recording) {
                        let _ = tx.try_send(reason);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

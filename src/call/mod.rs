//! The client: [`Call`], a logged-in user's handle, its sans-IO core (`core/`) and the two
//! tasks that run it: the driver (the socket, the core's deadlines) and the media task (the peer
//! connections).
//!
//! Data flows one way: socket → the driver → `ClientCore::handle` → events → subscribers.
//! Requests go into the same core (under the lock that guards it), which says what to send; the
//! driver is woken to send it.

mod clock;
pub(crate) mod core;
mod driver;
mod media;
mod media_requests;
mod options;
pub(crate) mod policy;
pub(crate) mod ring;
pub(crate) mod session;
mod shared;
mod simulcast;
mod statistics;
mod stream;
mod tracks;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, oneshot, watch};

pub use options::{
    CallError, CallOptions, Credentials, InviteOptions, JoinOptions, ReconnectPolicy, TlsRoots,
    TokenProvider, TokenResult,
};
pub use simulcast::Simulcast;
pub use stream::{EventStream, KindStream, Lagged};

use crate::auth::Revocation;
use crate::event::{CallEvent, OperationKind, Outcome, RoomSnapshot};
use crate::model::{
    BanTerm, Invitation, InvitationId, MAX_INVITE_EXTRA_LEN, MAX_MESSAGE_LEN, OperationId,
    ParticipantUpdate, PropertyUpdate, Reason, RecordingId, RecordingOptions, Rejection, Role,
    RoomId, Text, UserId,
};
use crate::protocol::ClientFrame;
use shared::{Shared, lock};

/// A logged-in user's handle on the call system.
///
/// Cheap to clone (all clones are the same login), `Send + Sync`. Requests return an
/// [`OperationId`] at once; the outcome arrives on [`Call::events`] carrying that id, or through
/// [`Call::outcome`]. The connection closes when [`Call::close`] is called or the last clone is
/// dropped; every event stream then ends with [`CallEvent::Closed`].
#[derive(Clone)]
pub struct Call {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("user_id", &self.inner.user_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    user_id: UserId,
    shared: Arc<Mutex<Shared>>,
    /// Tells the driver to close the call (and, dropped with the last handle, too).
    close: mpsc::Sender<()>,
    finished: watch::Receiver<bool>,
    media: Arc<media::ClientMedia>,
}

/// Frames waiting for the driver at most before a request waits for room.
const SOCKET_QUEUE: usize = 256;

impl Call {
    /// Connects to a jrtc server (`ws://host:port`) and logs in with an access token.
    pub async fn connect(
        url: &str,
        credentials: impl Into<Credentials>,
    ) -> Result<Call, CallError> {
        Self::connect_with(url, credentials, CallOptions::default()).await
    }

    /// [`Call::connect`] with options; options out of range are refused
    /// ([`CallOptions::validate`]) before anything is sent.
    pub async fn connect_with(
        url: &str,
        credentials: impl Into<Credentials>,
        options: CallOptions,
    ) -> Result<Call, CallError> {
        options.validate()?;
        let credentials = credentials.into();
        let connector = driver::connector(url, &options.tls)?;
        let (ws, welcome) = tokio::time::timeout(
            options.connect_timeout,
            driver::login(url, &credentials, &connector),
        )
        .await
        .map_err(|_| CallError::Timeout)??;
        let driver::Welcome {
            user_id,
            resume_key,
            expires_at,
        } = welcome;
        let (events, _) = ring::channel(options.event_capacity);
        let media_settings = crate::media::PeerSettings {
            bind: options
                .media_bind
                .unwrap_or_else(|| default_media_bind(url)),
            public_ips: Vec::new(),
            shared: None,
            // Active ICE-over-TCP candidates: media still flows where UDP is blocked.
            tcp: true,
        };
        let media = Arc::new(media::ClientMedia::new(
            media_settings,
            user_id.clone(),
            options.simulcast.clone(),
        ));
        let seed = u64::from(crate::media::rand_u32()) << 32 | u64::from(crate::media::rand_u32());
        let start = core::Start {
            seed,
            expires_at,
            ..core::Start::new(user_id.clone(), resume_key, credentials.token, &options)
        };
        let (peer_tx, peer_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Mutex::new(Shared {
            core: core::ClientCore::new(start, clock::now()),
            events: Some(events),
            waiters: HashMap::new(),
            kept: VecDeque::new(),
            remote_tracks: HashMap::new(),
            local: media.clone(),
            socket: VecDeque::new(),
            wake: wake.clone(),
            drained: Arc::new(Notify::new()),
            peer: Some(peer_tx),
        }));
        let (close, close_rx) = mpsc::channel(1);
        let (done_tx, finished) = watch::channel(false);
        tokio::spawn(media::run(media.clone(), Arc::downgrade(&shared), peer_rx));
        let link = driver::Link {
            url: url.to_owned(),
            connector,
            provider: options.token_provider.clone(),
        };
        tokio::spawn(driver::run(
            ws,
            shared.clone(),
            wake,
            close_rx,
            done_tx,
            link,
        ));
        Ok(Call {
            inner: Arc::new(Inner {
                user_id,
                shared,
                close,
                finished,
                media,
            }),
        })
    }

    /// When the session's access token expires: the server ends the session then (reason
    /// [`Reason::TokenExpired`]) unless it was refreshed ([`Call::refresh_token`], or a
    /// [`CallOptions::token_provider`]).
    /// `None` when the server did not say (a server from before token expiry).
    pub fn token_expires_at(&self) -> Option<std::time::SystemTime> {
        match self.shared().core.expires_at() {
            0 => None,
            secs => std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs)),
        }
    }

    /// Hands the server a new access token of the same user before the current one expires;
    /// the session goes on with it (its expiry and rights), and a resume after a lost
    /// connection sends it. The outcome is [`CallEvent::Completed`] with
    /// [`OperationKind::RefreshToken`]; a token of another user is refused
    /// ([`ErrorCode::WrongUser`](crate::ErrorCode::WrongUser)).
    pub async fn refresh_token(&self, token: impl Into<String>) -> Result<OperationId, CallError> {
        let token = token.into();
        self.room_to_send().await;
        self.shared().step(|core, _| core.refresh_token(token))
    }

    /// Removes a member (or someone not in the room) and bans them for `term` (host with the
    /// `moderate` grant): their joins, invitation acceptances and re-creations of the room are
    /// refused with [`ErrorCode::Banned`](crate::ErrorCode::Banned), on any connection and with
    /// any token. The outcome is [`CallEvent::Completed`] with [`OperationKind::Ban`].
    pub async fn ban(&self, user: &str, term: BanTerm) -> Result<OperationId, CallError> {
        let user_id = UserId::from(user);
        self.request(OperationKind::Ban, |op| ClientFrame::Kick {
            op,
            user_id,
            ban: Some(term),
        })
        .await
    }

    /// Lifts a ban (host with the `moderate` grant).
    pub async fn unban(&self, user: &str) -> Result<OperationId, CallError> {
        let user_id = UserId::from(user);
        self.request(OperationKind::Unban, |op| ClientFrame::Unban {
            op,
            user_id,
        })
        .await
    }

    /// Asks for the room's bans (host with the `moderate` grant); the outcome is
    /// [`CallEvent::Bans`] ([`Outcome::Bans`]).
    pub async fn list_bans(&self) -> Result<OperationId, CallError> {
        self.request(OperationKind::ListBans, |op| ClientFrame::ListBans { op })
            .await
    }

    /// Revokes tokens on the server (needs the `admin` grant): sessions logged in with them
    /// end, and they are refused from now on.
    pub async fn revoke(&self, revocation: Revocation) -> Result<OperationId, CallError> {
        let (jti, user_id, issued_before) = match revocation {
            Revocation::Token { jti } => (Some(jti), None, None),
            Revocation::User {
                user_id,
                issued_before,
            } => (None, Some(user_id), Some(issued_before)),
        };
        self.request(OperationKind::Revoke, |op| ClientFrame::Revoke {
            op,
            jti,
            user_id,
            issued_before,
        })
        .await
    }

    /// The logged-in user.
    pub fn user_id(&self) -> &UserId {
        &self.inner.user_id
    }

    /// A new subscriber to every event from now on.
    pub fn events(&self) -> EventStream {
        self.subscribe().1
    }

    /// The room as it is now, and a subscriber to every later event: the first room event the
    /// stream yields is the one numbered `snapshot.seq + 1`, with no gap and no duplicate.
    pub fn subscribe(&self) -> (Option<RoomSnapshot>, EventStream) {
        let shared = self.shared();
        let room = shared.core.session().room().cloned();
        let rx = match (&shared.events, shared.core.closed()) {
            (Some(tx), _) => tx.subscribe(),
            (None, reason) => {
                // Closed already: a stream that says so and ends.
                let (tx, rx) = ring::channel(1);
                tx.send(CallEvent::Closed {
                    reason: reason.unwrap_or(Reason::Quit),
                });
                rx
            }
        };
        (room, EventStream::new(rx))
    }

    /// The room as this call sees it now, if it is in one.
    pub fn room(&self) -> Option<RoomSnapshot> {
        self.shared().core.session().room().cloned()
    }

    /// Why the call closed, once it has.
    pub fn closed_reason(&self) -> Option<Reason> {
        self.shared().core.closed()
    }

    /// Joins room `room` (created if absent). Fails with `AlreadyJoined` when in a room already.
    pub async fn join(&self, room: &str, options: JoinOptions) -> Result<OperationId, CallError> {
        self.join_room(Some(RoomId::from(room)), options).await
    }

    /// Joins a new room whose id the server makes up; the id is in the join's snapshot.
    pub async fn join_new(&self, options: JoinOptions) -> Result<OperationId, CallError> {
        self.join_room(None, options).await
    }

    async fn join_room(
        &self,
        room: Option<RoomId>,
        options: JoinOptions,
    ) -> Result<OperationId, CallError> {
        self.request(OperationKind::Join, |op| ClientFrame::Join {
            op,
            room,
            display_name: options.display_name,
            audio: options.audio,
            video: options.video,
            state: options.state,
            auto_subscribe: options.auto_subscribe,
        })
        .await
    }

    /// Starts recording the room (a host with the `record` grant). The outcome says a
    /// recorder took the job; [`RecordingEvent::Started`](crate::RecordingEvent::Started)
    /// follows once it records, and the recording state (a call property) goes starting →
    /// recording. Refused with `already_recording`, `no_recorder`, `permission_denied` (not a
    /// host), `missing_grant`, or `invalid_param` for options that fail
    /// [`RecordingOptions::validate`] (those are refused here, before anything is sent).
    pub async fn start_recording(
        &self,
        options: RecordingOptions,
    ) -> Result<OperationId, CallError> {
        options
            .validate()
            .map_err(|message| CallError::InvalidParam {
                message: message.to_owned(),
            })?;
        self.request(OperationKind::StartRecording, |op| {
            ClientFrame::StartRecording { op, options }
        })
        .await
    }

    /// Stops the room's recording (a host with the `record` grant); the recorder closes its
    /// files and [`RecordingEvent::Stopped`](crate::RecordingEvent::Stopped) follows with
    /// them. Refused with `not_recording` when nothing is recorded.
    pub async fn stop_recording(&self) -> Result<OperationId, CallError> {
        self.request(OperationKind::StopRecording, |op| {
            ClientFrame::StopRecording { op }
        })
        .await
    }

    /// A recorder offers to take recording jobs (they arrive as
    /// [`RecordingEvent::Job`](crate::RecordingEvent::Job)).
    pub(crate) async fn recorder_ready(&self) -> Result<OperationId, CallError> {
        self.request(OperationKind::RecorderReady, |op| {
            ClientFrame::RecorderReady { op }
        })
        .await
    }

    /// A recorder joins the room of its job `recording` (the outcome is a `Joined` event).
    pub(crate) async fn recorder_join(
        &self,
        recording: RecordingId,
    ) -> Result<OperationId, CallError> {
        self.request(OperationKind::Join, |op| ClientFrame::RecorderJoin {
            op,
            recording,
        })
        .await
    }

    /// A recorder reports how its job goes (no answer is sent).
    pub(crate) async fn report_recording(
        &self,
        recording: RecordingId,
        report: crate::protocol::RecorderReport,
    ) -> Result<(), CallError> {
        let frame = ClientFrame::RecordingReport { recording, report };
        self.room_to_send().await;
        self.shared().step(|core, _| core.send_frame(&frame))
    }

    /// Leaves the room; the outcome is [`CallEvent::Left`] with reason `Quit` and this id.
    pub async fn leave(&self) -> Result<OperationId, CallError> {
        self.request(OperationKind::Leave, |op| ClientFrame::Leave { op })
            .await
    }

    /// Ends the call for every member (host only): each gets [`CallEvent::Left`] with `Over`.
    pub async fn end(&self) -> Result<OperationId, CallError> {
        self.request(OperationKind::End, |op| ClientFrame::End { op })
            .await
    }

    /// Removes a member (host only).
    pub async fn kick(&self, user: &str) -> Result<OperationId, CallError> {
        let user_id = UserId::from(user);
        self.request(OperationKind::Kick, |op| ClientFrame::Kick {
            op,
            user_id,
            ban: None,
        })
        .await
    }

    /// Gives a member another role (host only). A room keeps at least one host.
    pub async fn set_role(&self, user: &str, role: Role) -> Result<OperationId, CallError> {
        let user_id = UserId::from(user);
        self.request(OperationKind::SetRole, |op| ClientFrame::SetRole {
            op,
            user_id,
            role,
        })
        .await
    }

    /// Changes your own participant fields (audio, video, display name, state).
    pub async fn update(&self, update: ParticipantUpdate) -> Result<OperationId, CallError> {
        self.request(OperationKind::Update, |op| ClientFrame::Update {
            op,
            update,
        })
        .await
    }

    /// Changes call properties (screen sharer, recording, custom keys), all or nothing.
    pub async fn set_properties(&self, update: PropertyUpdate) -> Result<OperationId, CallError> {
        self.request(OperationKind::SetProperties, |op| {
            ClientFrame::SetProperties { op, update }
        })
        .await
    }

    /// Sends a message to one member (`to`) or to every other member (`None`). Content is at
    /// most 4 KiB; larger content is refused here with [`CallError::InvalidParam`].
    pub async fn send_message(
        &self,
        to: Option<&str>,
        content_type: &str,
        content: impl Into<Text>,
    ) -> Result<OperationId, CallError> {
        let content: Text = content.into();
        if content.len() > MAX_MESSAGE_LEN {
            return Err(CallError::InvalidParam {
                message: format!(
                    "message content is {} bytes; the limit is {MAX_MESSAGE_LEN}",
                    content.len()
                ),
            });
        }
        let to = to.map(UserId::from);
        let content_type = Text::from(content_type);
        self.request(OperationKind::SendMessage, |op| ClientFrame::SendMessage {
            op,
            to,
            content_type,
            content,
        })
        .await
    }

    /// Invites `callees` (1 to 16 users). In a room, to that room; outside a room, the call starts:
    /// you join a new room (a [`CallEvent::Joined`] carrying this id comes first) and the callees
    /// are invited to it. The outcome is [`InviteEvent::Sent`](crate::InviteEvent::Sent) listing
    /// the invitations made and the callees not reached (`Offline`, `Busy`).
    pub async fn invite(
        &self,
        callees: &[&str],
        options: InviteOptions,
    ) -> Result<OperationId, CallError> {
        if options.extra.len() > MAX_INVITE_EXTRA_LEN {
            return Err(CallError::InvalidParam {
                message: format!(
                    "extra is {} bytes; the limit is {MAX_INVITE_EXTRA_LEN}",
                    options.extra.len()
                ),
            });
        }
        let callees = callees.iter().map(|c| UserId::from(*c)).collect();
        let timeout_ms = options
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        self.request(OperationKind::Invite, |op| ClientFrame::Invite {
            op,
            callees,
            video: options.video,
            extra: options.extra,
            timeout_ms,
        })
        .await
    }

    /// Withdraws an invitation you made; the callee gets
    /// [`InviteEvent::Canceled`](crate::InviteEvent::Canceled) with reason `Canceled`.
    pub async fn cancel_invite(&self, invitation: InvitationId) -> Result<OperationId, CallError> {
        self.request_about(OperationKind::CancelInvite, Some(invitation), |op| {
            ClientFrame::CancelInvite { op, invitation }
        })
        .await
    }

    /// Accepts an invitation: you join its room, leaving the room you are in, if any. A
    /// [`CallEvent::Joined`] with the room's snapshot and this id comes first, then
    /// [`InviteEvent::AcceptResult`](crate::InviteEvent::AcceptResult).
    pub async fn accept_invite(
        &self,
        invitation: InvitationId,
        video: bool,
    ) -> Result<OperationId, CallError> {
        self.request_about(OperationKind::AcceptInvite, Some(invitation), |op| {
            ClientFrame::AcceptInvite {
                op,
                invitation,
                video,
            }
        })
        .await
    }

    /// Turns an invitation down; the caller gets
    /// [`InviteEvent::Rejected`](crate::InviteEvent::Rejected) with `Rejected` or `Busy`.
    pub async fn reject_invite(
        &self,
        invitation: InvitationId,
        rejection: Rejection,
    ) -> Result<OperationId, CallError> {
        self.request_about(OperationKind::RejectInvite, Some(invitation), |op| {
            ClientFrame::RejectInvite {
                op,
                invitation,
                reason: rejection,
            }
        })
        .await
    }

    /// Invitations to you that are still open, oldest first.
    pub fn invitations(&self) -> Vec<Invitation> {
        self.shared()
            .core
            .session()
            .received_invitations()
            .cloned()
            .collect()
    }

    /// Invitations you made that are still open, oldest first.
    pub fn sent_invitations(&self) -> Vec<Invitation> {
        self.shared()
            .core
            .session()
            .sent_invitations()
            .cloned()
            .collect()
    }

    /// Waits for the outcome of operation `op`: `Ok` with what it produced, or
    /// [`CallError::Refused`] with the server's reason.
    ///
    /// Any number of callers may await one operation, before or after it finished, and each
    /// gets the same outcome: outcomes are kept for the last 256 operations that finished
    /// (awaited or not); older ones are forgotten ([`CallError::UnknownOperation`]). A request
    /// still unanswered when the call ends finishes then, refused with `session_lost`.
    pub async fn outcome(&self, op: OperationId) -> Result<Outcome, CallError> {
        let rx = {
            let mut shared = self.shared();
            if let Some((_, outcome)) = shared.kept.iter().find(|(id, _)| *id == op) {
                return outcome
                    .clone()
                    .map_err(|error| CallError::Refused { op, error });
            }
            if !shared.core.session().is_pending(op) {
                return Err(match shared.core.closed() {
                    Some(reason) => CallError::Closed { reason },
                    None => CallError::UnknownOperation(op),
                });
            }
            let (tx, rx) = oneshot::channel();
            shared.waiters.entry(op).or_default().push(tx);
            rx
        };
        rx.await.unwrap_or(Err(CallError::Closed {
            reason: Reason::InternalError,
        }))
    }

    /// Closes the connection (leaving any room) and waits until the call has shut down.
    pub async fn close(&self) {
        let _ = self.inner.close.send(()).await;
        let mut finished = self.inner.finished.clone();
        let _ = finished.wait_for(|done| *done).await;
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.inner.shared)
    }

    async fn request(
        &self,
        kind: OperationKind,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) -> Result<OperationId, CallError> {
        self.request_about(kind, None, frame).await
    }

    async fn request_about(
        &self,
        kind: OperationKind,
        invitation: Option<InvitationId>,
        frame: impl FnOnce(OperationId) -> ClientFrame,
    ) -> Result<OperationId, CallError> {
        self.room_to_send().await;
        self.shared()
            .step(|core, _| core.request(kind, invitation, frame))
    }

    /// Waits while the driver has [`SOCKET_QUEUE`] frames or more still to send: a caller
    /// faster than the socket is held here, and the queue stays bounded.
    pub(super) async fn room_to_send(&self) {
        loop {
            let drained = {
                let s = self.shared();
                if s.socket.len() < SOCKET_QUEUE || s.core.closed().is_some() {
                    return;
                }
                s.drained.clone()
            };
            let notified = drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared().socket.len() < SOCKET_QUEUE {
                return;
            }
            notified.await;
        }
    }
}

/// Where the call's peer connections bind: loopback for a server on this machine, any address
/// otherwise.
fn default_media_bind(url: &str) -> std::net::SocketAddr {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|authority| authority.rsplit_once(':').map_or(authority, |(h, _)| h))
        .unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        std::net::SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        std::net::SocketAddr::from(([0, 0, 0, 0], 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_streams_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Call>();
        send::<EventStream>();
        send::<KindStream<crate::MessageEvent>>();
        send_sync::<CallEvent>();
        send_sync::<CallError>();
    }
}

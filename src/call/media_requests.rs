//! A call's media requests: publishing its own tracks (and muting them, or someone else's), and
//! the remote tracks it receives.

use crate::event::OperationKind;
use crate::media::{LocalTrack, RemoteTrack};
use crate::model::{OperationId, Reason, TrackSource, UserId, VideoSize};
use crate::protocol::ClientFrame;

use super::{Call, CallError};

impl Call {
    /// Publishes a track of `source` in the room (microphone: Opus; camera and screen: VP8).
    /// Returns the operation's id at once; the negotiation with the server runs in the
    /// background, and its outcome is [`CallEvent::Completed`](crate::CallEvent::Completed) (kind
    /// [`OperationKind::Publish`]) or [`Call::outcome`]. Once it succeeded, write RTP payloads
    /// to [`Call::local_track`]; the room gets [`MediaEvent::Published`](crate::MediaEvent::Published) when the first packets
    /// reach the server, and every other member then receives the track.
    ///
    /// Refusals are the op's outcome: `ScreenShareBusy` when someone else shares the screen,
    /// `MissingGrant` without the `publish` grant, `NotInRoom`. [`Call::publish_track`] does
    /// all of it and returns the track.
    pub async fn publish(&self, source: TrackSource) -> Result<OperationId, CallError> {
        self.room_to_send().await;
        self.shared().step(|core, now| core.publish(now, source))
    }

    /// [`Call::publish`], then waits for its outcome and returns the track.
    pub async fn publish_track(&self, source: TrackSource) -> Result<LocalTrack, CallError> {
        let op = self.publish(source).await?;
        self.outcome(op).await?;
        self.local_track(source).ok_or_else(|| CallError::Closed {
            reason: self.closed_reason().unwrap_or(Reason::Quit),
        })
    }

    /// The track of `source` this call publishes now, if any.
    pub fn local_track(&self, source: TrackSource) -> Option<LocalTrack> {
        self.inner.media.local_track(source)
    }

    /// Stops publishing `source`; everyone gets [`MediaEvent::Unpublished`](crate::MediaEvent::Unpublished).
    pub async fn unpublish(&self, source: TrackSource) -> Result<OperationId, CallError> {
        self.room_to_send().await;
        self.shared().step(|core, _| core.unpublish(source))
    }

    /// Mutes or unmutes a published track: a muted track sends nothing, and everyone gets
    /// [`MediaEvent::Muted`](crate::MediaEvent::Muted) / [`MediaEvent::Unmuted`](crate::MediaEvent::Unmuted) (the audio or video flag follows).
    pub async fn set_muted(
        &self,
        track: &LocalTrack,
        muted: bool,
    ) -> Result<OperationId, CallError> {
        track.set_muted(muted);
        let source = track.source();
        self.room_to_send().await;
        self.shared().step(|core, _| core.set_muted(source, muted))
    }

    /// Mutes another member's track of `source` (host, with the `moderate` grant). The server
    /// stops forwarding it to everyone (recordings included), the member's client stops
    /// sending it, and everyone gets [`MediaEvent::Muted`](crate::MediaEvent::Muted) with `by`
    /// set to this call's user. Only the member unmutes it. Refused with `no_such_track` when
    /// the member does not publish that source, `invalid_param` for the recorder, and
    /// `permission_denied` for a guest. A track muted already stays so, with no new event.
    pub async fn mute_member(
        &self,
        user: &str,
        source: TrackSource,
    ) -> Result<OperationId, CallError> {
        let user_id = Some(UserId::from(user));
        self.request(OperationKind::Mute, |op| ClientFrame::Mute {
            op,
            source,
            muted: true,
            user_id,
        })
        .await
    }

    /// Starts receiving publication `id` (`"{user}/{source}"`), for a call that joined with
    /// [`JoinOptions::auto_subscribe`](super::JoinOptions::auto_subscribe) off or unsubscribed earlier; [`MediaEvent::Subscribed`](crate::MediaEvent::Subscribed)
    /// follows when the track arrives.
    pub async fn subscribe_track(&self, id: &str) -> Result<OperationId, CallError> {
        self.track_request(id, true).await
    }

    /// Stops receiving publication `id`; [`MediaEvent::Unsubscribed`](crate::MediaEvent::Unsubscribed) follows. The track stays
    /// negotiated, so subscribing again resumes it at once.
    pub async fn unsubscribe_track(&self, id: &str) -> Result<OperationId, CallError> {
        self.track_request(id, false).await
    }

    /// Asks for remote video `publication` (`"{user}/{source}"`) at most `size`: the server
    /// forwards the largest simulcast layer of it that fits (the smallest when none does), and
    /// switches at that layer's next key frame, so the track goes on without a gap. The request
    /// holds for the track until the next one; a track never asked for gets its largest layer,
    /// and [`VideoSize::FULL`] asks for that again. A publication sent without simulcast has one
    /// layer, which every request gets. Pausing is [`Call::unsubscribe_track`].
    ///
    /// Refused (the op's outcome) with `no_such_track` when `publication` is not published in
    /// the room, `invalid_param` for an audio track, one's own, or a side of 0 or over
    /// [`VideoSize::MAX_SIDE`].
    pub async fn request_video(
        &self,
        publication: &str,
        size: VideoSize,
    ) -> Result<OperationId, CallError> {
        let publication = publication.to_owned();
        self.request(OperationKind::RequestVideo, |op| {
            ClientFrame::RequestVideo {
                op,
                publication,
                width: size.width,
                height: size.height,
            }
        })
        .await
    }

    async fn track_request(&self, id: &str, subscribe: bool) -> Result<OperationId, CallError> {
        self.room_to_send().await;
        self.shared()
            .step(|core, _| core.track_request(id, subscribe))
    }

    /// Another member's track reaching this call, by publication id (`"{user}/{source}"`); it
    /// is there from [`MediaEvent::Subscribed`](crate::MediaEvent::Subscribed) on.
    pub fn remote_track(&self, publication: &str) -> Option<RemoteTrack> {
        let shared = self.shared();
        if !shared.core.session().tracks.receiving(publication) {
            return None;
        }
        shared.remote_tracks.get(publication).cloned()
    }

    /// Every remote track reaching this call now.
    pub fn remote_tracks(&self) -> Vec<RemoteTrack> {
        let shared = self.shared();
        shared
            .core
            .session()
            .tracks
            .received()
            .filter_map(|id| shared.remote_tracks.get(id).cloned())
            .collect()
    }
}

//! Simulcast in a room, sans-IO: a receiver asks for a size of a remote video, a publisher's
//! key frames show each layer's size, and every change of either tells the legs concerned
//! which layer to forward ([`VideoLayers`](super::video_layers::VideoLayers) decides which).

use crate::model::{MediaKind, TrackSource, VideoSize};
use crate::protocol::{ErrorCode, ServerFrame};

use super::io::{Emit, Layer, MediaAction, MediaId, Refusal, SessionId, refuse};
use super::negotiation::command;
use super::room::Room;

impl Room {
    /// `conn` asks for publication `id` at most `size`.
    pub(crate) fn request_video(
        &mut self,
        conn: SessionId,
        id: &str,
        size: VideoSize,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let (publisher, publication) = self.find_publication(id)?;
        if publisher == conn {
            return refuse(ErrorCode::InvalidParam, "that is your own track");
        }
        if publication.kind != MediaKind::Video {
            return refuse(ErrorCode::InvalidParam, format!("`{id}` is not a video"));
        }
        if !size.is_valid() {
            return refuse(
                ErrorCode::InvalidParam,
                format!(
                    "a video size is 1 to {} pixels a side, not {size}",
                    VideoSize::MAX_SIDE
                ),
            );
        }
        self.video.request(conn, id, size);
        self.tell_layer(conn, id, out);
        Ok(())
    }

    /// Membership `media`'s track of `source` sends layer `layer` at `size` (or, `None`, has
    /// stopped sending it): the legs whose choice that changes are told.
    pub(super) fn layer_measured(
        &mut self,
        media: MediaId,
        source: TrackSource,
        layer: Layer,
        size: Option<VideoSize>,
        out: &mut Vec<Emit>,
    ) {
        let Some(member) = self.members.iter().find(|m| m.key.media == media) else {
            return;
        };
        let id = crate::model::Publication::new(member.participant.user_id.clone(), source).id;
        if !self.video.measured(&id, layer, size) {
            return;
        }
        let receivers: Vec<SessionId> = self
            .subscriptions
            .iter()
            .chain(&self.paused)
            .filter(|(_, p)| *p == id)
            .map(|(c, _)| *c)
            .collect();
        for conn in receivers {
            self.tell_layer(conn, &id, out);
        }
        self.dynacast(&id, out);
    }

    /// Tells `conn`'s leg of video publication `id` its layer, if that changed (a leg of a
    /// video without simulcast forwards its only layer, and is told nothing).
    pub(super) fn tell_layer(&mut self, conn: SessionId, id: &str, out: &mut Vec<Emit>) {
        if self.video.count(id) <= 1 {
            return;
        }
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        if !self.subscriptions.contains(&(conn, id.to_owned()))
            && !self.paused.contains(&(conn, id.to_owned()))
        {
            return;
        }
        if let Some(layer) = self.video.update(conn, id) {
            let key = self.members[i].key.clone();
            out.push(command(
                &key,
                MediaAction::SetLayer {
                    publication: id.to_owned(),
                    layer,
                },
            ));
        }
        self.dynacast(id, out);
    }

    /// Tells the publisher of video `id` which of its simulcast streams somebody wants, if that
    /// changed (see [`VideoLayers::dynacast`](super::video_layers::VideoLayers::dynacast)).
    pub(super) fn dynacast(&mut self, id: &str, out: &mut Vec<Emit>) {
        let receivers = self
            .subscriptions
            .iter()
            .filter(|(_, p)| p == id)
            .map(|(c, _)| *c);
        let Some(count) = self.video.dynacast(id, receivers) else {
            return;
        };
        let Some((publisher, publication)) = self.publication_by_id(id) else {
            return;
        };
        let Some(i) = self.index_of_conn(publisher) else {
            return;
        };
        let rids = self.members[i].publishing.rids(publication.source);
        out.push(Emit::Send {
            to: publisher,
            frame: ServerFrame::PublishLayers {
                source: publication.source,
                rids: rids.iter().take(count).cloned().collect(),
            },
        });
    }
}

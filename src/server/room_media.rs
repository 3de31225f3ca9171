//! A room's published tracks: who publishes what, who must receive it. Sans-IO like the rest of
//! the room: the peer connections live in the media shell (`server/media.rs`), which carries out
//! the [`MediaCommand`]s emitted here.

use crate::model::{ParticipantChanges, PropertyChanges, Publication, ScreenShare, TrackSource};
use crate::protocol::{ErrorCode, ServerFrame};

use super::hub::{ConnId, MediaCommand, Output};
use super::room::{Refusal, Room};

impl Room {
    /// `conn`'s track of `source` has arrived at the server: announce it, update the publisher's
    /// flags (and the screen sharer), and have every other member receive it.
    pub(crate) fn publish(
        &mut self,
        conn: ConnId,
        source: TrackSource,
        out: &mut Vec<Output>,
    ) -> Result<Publication, Refusal> {
        let i = self
            .index_of_conn(conn)
            .ok_or((ErrorCode::NotInRoom, "not a member".to_owned()))?;
        let user = self.members[i].participant.user_id.clone();
        let publication = Publication::new(user.clone(), source);
        if self
            .publications
            .iter()
            .any(|(_, p)| p.id == publication.id)
        {
            return Ok(publication);
        }
        if source == TrackSource::Screen
            && let Some(sharer) = &self.properties.screen_share
            && sharer.user_id != user
        {
            return Err((
                ErrorCode::ScreenShareBusy,
                format!("`{}` is sharing their screen", sharer.user_id),
            ));
        }
        self.publications.push((conn, publication.clone()));
        let seq = self.next_seq();
        let frame = ServerFrame::TrackPublished {
            room: self.id.clone(),
            seq,
            publication: publication.clone(),
        };
        self.broadcast(self.conns(), frame, out);
        self.set_flag(i, source, true, out);
        if source == TrackSource::Screen && self.properties.screen_share.is_none() {
            self.properties.screen_share = Some(ScreenShare {
                user_id: user.clone(),
                stream_id: publication.id.clone(),
            });
            let changes = PropertyChanges {
                screen_share: true,
                ..Default::default()
            };
            self.emit_properties(changes, user, out);
        }
        for other in self.conns_except(conn) {
            if !self.manual.contains(&other) {
                self.start_subscription(other, publication.clone(), out);
            }
        }
        Ok(publication)
    }

    pub(super) fn start_subscription(
        &mut self,
        conn: ConnId,
        publication: Publication,
        out: &mut Vec<Output>,
    ) {
        self.paused.remove(&(conn, publication.id.clone()));
        if self.subscriptions.insert((conn, publication.id.clone())) {
            out.push(Output::Media(MediaCommand::Subscribe {
                conn,
                room: self.id.clone(),
                publication,
            }));
        }
    }

    fn end_subscription(
        &mut self,
        conn: ConnId,
        publication: &Publication,
        pause: bool,
        out: &mut Vec<Output>,
    ) {
        let key = (conn, publication.id.clone());
        let was_paused = !pause && self.paused.remove(&key);
        if self.subscriptions.remove(&key) || was_paused {
            if pause {
                self.paused.insert(key);
            }
            out.push(Output::Media(MediaCommand::Unsubscribe {
                conn,
                room: self.id.clone(),
                publication: publication.clone(),
                pause,
            }));
        }
    }

    /// `conn` asks to receive publication `id`.
    pub(crate) fn subscribe(
        &mut self,
        conn: ConnId,
        id: &str,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let (publisher, publication) = self.find_publication(id)?;
        if publisher == conn {
            return Err((ErrorCode::InvalidParam, "that is your own track".to_owned()));
        }
        self.start_subscription(conn, publication, out);
        Ok(())
    }

    /// `conn` stops receiving publication `id`.
    pub(crate) fn unsubscribe(
        &mut self,
        conn: ConnId,
        id: &str,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let (_, publication) = self.find_publication(id)?;
        self.end_subscription(conn, &publication, true, out);
        Ok(())
    }

    /// Where `conn`'s publication of `source` is.
    fn own_publication(&self, conn: ConnId, source: TrackSource) -> Result<usize, Refusal> {
        self.publications
            .iter()
            .position(|(c, p)| *c == conn && p.source == source)
            .ok_or_else(|| {
                (
                    ErrorCode::NoSuchTrack,
                    format!("no {} track is published", source.as_str()),
                )
            })
    }

    /// The publication named `id`, with its publisher.
    fn find_publication(&self, id: &str) -> Result<(ConnId, Publication), Refusal> {
        self.publications
            .iter()
            .find(|(_, p)| p.id == id)
            .cloned()
            .ok_or_else(|| {
                (
                    ErrorCode::NoSuchTrack,
                    format!("`{id}` is not published here"),
                )
            })
    }

    /// `conn` stops publishing `source`.
    pub(crate) fn unpublish(
        &mut self,
        conn: ConnId,
        source: TrackSource,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let at = self.own_publication(conn, source)?;
        let (_, publication) = self.publications.remove(at);
        // The flag first: whoever hears the track is gone sees the flag already down.
        if let Some(i) = self.index_of_conn(conn) {
            self.set_flag(i, source, false, out);
        }
        self.announce_unpublished(&publication, out);
        if source == TrackSource::Screen
            && self
                .properties
                .screen_share
                .as_ref()
                .is_some_and(|s| s.stream_id == publication.id)
        {
            self.properties.screen_share = None;
            let changes = PropertyChanges {
                screen_share: true,
                ..Default::default()
            };
            self.emit_properties(changes, publication.participant.clone(), out);
        }
        Ok(())
    }

    /// `conn` mutes or unmutes its `source`; the audio or video flag follows.
    pub(crate) fn mute(
        &mut self,
        conn: ConnId,
        source: TrackSource,
        muted: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let at = self.own_publication(conn, source)?;
        if self.publications[at].1.muted == muted {
            return Ok(());
        }
        self.publications[at].1.muted = muted;
        if let Some(i) = self.index_of_conn(conn) {
            self.set_flag(i, source, !muted, out);
        }
        let seq = self.next_seq();
        let frame = ServerFrame::TrackMuted {
            room: self.id.clone(),
            seq,
            publication: self.publications[at].1.clone(),
        };
        self.broadcast(self.conns(), frame, out);
        Ok(())
    }

    /// Ends every publication of a member who left (its flags leave with it), and what it
    /// received.
    pub(super) fn drop_publications(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        self.subscriptions.retain(|(c, _)| *c != conn);
        self.paused.retain(|(c, _)| *c != conn);
        self.manual.remove(&conn);
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.publications)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.publications = kept;
        for (_, publication) in gone {
            self.announce_unpublished(&publication, out);
        }
    }

    fn announce_unpublished(&mut self, publication: &Publication, out: &mut Vec<Output>) {
        let seq = self.next_seq();
        let frame = ServerFrame::TrackUnpublished {
            room: self.id.clone(),
            seq,
            publication: publication.clone(),
        };
        self.broadcast(self.conns(), frame, out);
        for conn in self.conns() {
            self.end_subscription(conn, publication, false, out);
        }
    }

    /// Microphone → audio flag, camera → video flag, announced when it changes.
    fn set_flag(&mut self, i: usize, source: TrackSource, on: bool, out: &mut Vec<Output>) {
        let p = &mut self.members[i].participant;
        let mut changes = ParticipantChanges::default();
        match source {
            TrackSource::Microphone => {
                changes.audio = std::mem::replace(&mut p.audio, on) != on;
            }
            TrackSource::Camera => {
                changes.video = std::mem::replace(&mut p.video, on) != on;
            }
            TrackSource::Screen => {}
        }
        if !changes.is_empty() {
            self.emit_updated(i, changes, out);
        }
    }
}

#[cfg(any(test, feature = "internals"))]
impl Room {
    /// The publications, in order.
    pub(crate) fn publication_list(&self) -> Vec<Publication> {
        self.publications.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Every subscription, running or paused, is a member receiving someone else's published
    /// track, and no track is both running and paused for one member.
    pub(crate) fn check_subscriptions(&self) {
        for (conn, id) in self.subscriptions.iter().chain(self.paused.iter()) {
            assert!(
                self.index_of_conn(*conn).is_some(),
                "a subscriber is a member"
            );
            let (publisher, _) = self
                .publications
                .iter()
                .find(|(_, p)| &p.id == id)
                .expect("a subscription is to a published track");
            assert_ne!(publisher, conn, "nobody receives its own track");
        }
        assert!(self.subscriptions.is_disjoint(&self.paused));
    }
}

//! A room's media, sans-IO: who publishes what, who receives it, and each member's two
//! negotiations ([`negotiation`](super::negotiation)). Every media command names a membership
//! of this room, and every leg copies a publication of this room to a member of this room: one
//! room's media cannot reach another's. The media shell carries out the commands and reports
//! back ([`Room::media_report`]). Failed peer connections are in `room_media/faults.rs`.

mod faults;

use crate::model::{
    MediaKind, OperationId, ParticipantChanges, PropertyChanges, Publication, Reason, ScreenShare,
    TrackSource,
};
use crate::protocol::{ErrorCode, IceCandidate, MediaConnection, ServerFrame};

use super::io::{
    Emit, ExtensionMap, LegStart, MediaAction, MediaFact, MediaId, MediaKey, Refusal, SessionId,
    refuse,
};
use super::negotiation::{Started, command, media_failed, op_failed};
use super::room::{Member, Room};

impl Room {
    /// `conn` offers to publish (`source`, or every new source its offer sends).
    pub(crate) fn publish_offer(
        &mut self,
        conn: SessionId,
        op: OperationId,
        sdp: String,
        source: Option<TrackSource>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let i = self.member_index(conn)?;
        let request = self.members[i].publishing.check_offer(&sdp, source)?;
        if request.sources.contains(&TrackSource::Screen) {
            self.check_screen_free(i)?;
        }
        let rids = request.rids.clone();
        let levels = request.levels.clone();
        let member = &mut self.members[i];
        member.publishing.offer_sent(op, request);
        let key = member.key.clone();
        out.push(command(
            &key,
            MediaAction::AnswerPublish {
                op,
                sdp,
                rids,
                levels,
            },
        ));
        Ok(())
    }

    /// Refuses a screen share while someone else shares.
    fn check_screen_free(&self, i: usize) -> Result<(), Refusal> {
        match &self.properties.screen_share {
            Some(sharer) if sharer.user_id != self.members[i].participant.user_id => refuse(
                ErrorCode::ScreenShareBusy,
                format!("`{}` is sharing their screen", sharer.user_id),
            ),
            _ => Ok(()),
        }
    }

    /// `conn` answers the server's offer `negotiation`.
    pub(crate) fn subscribe_answer(
        &mut self,
        conn: SessionId,
        op: OperationId,
        negotiation: u64,
        sdp: String,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let i = self.member_index(conn)?;
        let member = &mut self.members[i];
        let key = member.key.clone();
        let output = member.receiving.answer(&key, op, negotiation, sdp)?;
        out.push(output);
        Ok(())
    }

    /// An ICE candidate from `conn`'s side of one of its connections; dropped (with a
    /// refusal) for a connection that was never negotiated.
    pub(crate) fn remote_candidate(
        &mut self,
        conn: SessionId,
        connection: MediaConnection,
        candidate: IceCandidate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let i = self.member_index(conn)?;
        let member = &self.members[i];
        let negotiated = match connection {
            MediaConnection::Publish => member.publishing.negotiated(),
            MediaConnection::Subscribe => member.receiving.negotiated(),
        };
        if !negotiated {
            return refuse(
                ErrorCode::InvalidParam,
                "a candidate for a connection that has no offer yet",
            );
        }
        let key = member.key.clone();
        out.push(command(
            &key,
            MediaAction::AddCandidate {
                connection,
                candidate,
            },
        ));
        Ok(())
    }

    /// What the media shell reports about membership `media` of this room. Reports about a
    /// membership that is over are dropped.
    pub(crate) fn media_report(&mut self, media: MediaId, fact: MediaFact, out: &mut Vec<Emit>) {
        let Some(i) = self.members.iter().position(|m| m.key.media == media) else {
            return;
        };
        let conn = self.members[i].conn;
        let key = self.members[i].key.clone();
        // Any report may leave an offer to make (an answer applied, an offer failed).
        self.offers_due = true;
        match fact {
            MediaFact::PublishAnswered { op, result } => {
                let Some(ready) = self.members[i].publishing.answered(op, &result) else {
                    return;
                };
                let frame = match result {
                    Ok(sdp) => ServerFrame::PublishAnswer { op, sdp },
                    Err(message) => ServerFrame::Error {
                        op: Some(op),
                        code: ErrorCode::MediaFailed,
                        message,
                    },
                };
                out.push(Emit::Send { to: conn, frame });
                for source in ready {
                    self.publish(conn, source, out);
                }
            }
            MediaFact::OfferReady {
                negotiation,
                result,
            } => self.members[i]
                .receiving
                .offer_ready(conn, negotiation, result, out),
            MediaFact::AnswerApplied {
                op,
                negotiation,
                result,
            } => {
                let started =
                    self.members[i]
                        .receiving
                        .answer_applied(conn, op, negotiation, result, out);
                self.start_legs(&key, started, out);
            }
            MediaFact::TrackArrived { track_id } => {
                let Some(source) = TrackSource::from_track_id(&track_id) else {
                    out.push(media_failed(
                        conn,
                        MediaConnection::Publish,
                        None,
                        format!("a track named `{track_id}` is not a source; it is not forwarded"),
                    ));
                    return;
                };
                if self.members[i].publishing.arrived(source) {
                    self.publish(conn, source, out);
                }
            }
            MediaFact::LocalCandidate {
                connection,
                mut candidate,
            } => {
                let member = &self.members[i];
                let (announced, mid) = match connection {
                    MediaConnection::Publish => (
                        member.publishing.announced(&candidate),
                        member.publishing.first_mid().map(str::to_owned),
                    ),
                    MediaConnection::Subscribe => (
                        member.receiving.announced(&candidate),
                        member.receiving.first_mid().map(str::to_owned),
                    ),
                };
                if announced {
                    return;
                }
                if connection == MediaConnection::Subscribe
                    && self.members[i].receiving.hold(candidate.candidate.clone())
                {
                    return;
                }
                if candidate.sdp_mid.as_deref().is_none_or(str::is_empty) {
                    candidate.sdp_mid = mid;
                    candidate.sdp_mline_index = Some(0);
                }
                out.push(Emit::Send {
                    to: conn,
                    frame: ServerFrame::IceCandidate {
                        connection,
                        candidate,
                    },
                });
            }
            MediaFact::LayerSize {
                source,
                layer,
                size,
            } => self.layer_measured(media, source, layer, size, out),
            // The hub takes failures (they start a grace period: `media_interrupted`) and
            // levels (they need its clock).
            MediaFact::PeerFailed { .. }
            | MediaFact::AudioLevel { .. }
            | MediaFact::LinkMeasured(_) => {}
            MediaFact::PeerConnected { connection } => self.media_restored(i, connection, out),
        }
    }

    /// The media id of `conn`'s membership.
    pub(crate) fn media_id_of(&self, conn: SessionId) -> Result<MediaId, Refusal> {
        Ok(self.members[self.member_index(conn)?].key.media)
    }

    /// Starts legs on membership `key`'s receiving connection, each with its payload type and
    /// the header extensions its publisher's track and its own line both carry, and asks
    /// their publishers for key frames.
    fn start_legs(&self, key: &MediaKey, started: Vec<Started>, out: &mut Vec<Emit>) {
        if started.is_empty() {
            return;
        }
        let mut legs = Vec::new();
        let mut keyframes = Vec::new();
        for (id, payload_type, extensions) in started {
            let Some((conn, publication)) = self.publication_by_id(&id) else {
                continue;
            };
            let publisher = self.member(conn);
            let map = ExtensionMap::between(
                publisher.publishing.extensions(publication.source),
                &extensions,
            );
            legs.push(LegStart {
                publication: id,
                payload_type,
                extensions: map,
            });
            keyframes.push((publisher.key.clone(), publication));
        }
        if !legs.is_empty() {
            out.push(command(key, MediaAction::StartLegs { legs }));
        }
        for (publisher, publication) in keyframes {
            request_keyframe(&publisher, &publication, out);
        }
    }

    /// Publishes `conn`'s track of `source`: announce it, update the publisher's flags (and
    /// the screen sharer), and have every other member receive it.
    fn publish(&mut self, conn: SessionId, source: TrackSource, out: &mut Vec<Emit>) {
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        let user = self.members[i].participant.user_id.clone();
        let publication = Publication::new(user.clone(), source);
        if self
            .publications
            .iter()
            .any(|(c, p)| *c == conn && p.source == source)
        {
            return;
        }
        if source == TrackSource::Screen
            && let Err(refusal) = self.check_screen_free(i)
        {
            // Someone else started sharing between the offer and the track's arrival.
            self.members[i].publishing.unpublished(source);
            out.push(media_failed(
                conn,
                MediaConnection::Publish,
                Some(publication.id),
                refusal.message,
            ));
            return;
        }
        self.publications.push((conn, publication.clone()));
        if publication.kind == MediaKind::Video {
            let layers = self.members[i].publishing.layer_count(source);
            self.video.published(&publication.id, layers);
        }
        // A new publication is forwarded, even if its track was muted under an earlier one.
        let key = self.members[i].key.clone();
        out.push(command(
            &key,
            MediaAction::Forward {
                source,
                muted: false,
            },
        ));
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
        self.dynacast(&publication.id, out);
    }

    /// Makes the offers that changed legs call for: one per member and input, with every leg
    /// the input added (the hub calls it after each input that touched the room).
    pub(crate) fn flush_offers(&mut self, out: &mut Vec<Emit>) {
        // Most inputs (messages, properties) touch no leg: nothing to look at.
        if !std::mem::take(&mut self.offers_due) {
            return;
        }
        for member in &mut self.members {
            member.receiving.flush(&member.key, out);
        }
    }

    /// Has `conn` receive `publication` (or resumes it, if `conn` paused it).
    pub(super) fn start_subscription(
        &mut self,
        conn: SessionId,
        publication: Publication,
        out: &mut Vec<Emit>,
    ) {
        let key = (conn, publication.id.clone());
        let Some(publisher) = self.publisher_key(&publication.id) else {
            return;
        };
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        let to = self.members[i].key.clone();
        if self.paused.remove(&key) {
            self.subscriptions.insert(key);
            self.dynacast(&publication.id, out);
            out.push(command(
                &to,
                MediaAction::PauseLeg {
                    publication: publication.id.clone(),
                    paused: false,
                },
            ));
            if self.members[i].receiving.started(&publication.id) {
                request_keyframe(&publisher, &publication, out);
            }
            return;
        }
        if !self.subscriptions.insert(key) {
            return;
        }
        self.offers_due = true;
        self.members[i]
            .receiving
            .add_leg(&to, &publication, publisher.media, out);
        self.tell_layer(conn, &publication.id, out);
    }

    /// Stops `conn` receiving `publication`: for good, or paused (kept negotiated).
    fn end_subscription(
        &mut self,
        conn: SessionId,
        publication: &Publication,
        pause: bool,
        out: &mut Vec<Emit>,
    ) {
        let key = (conn, publication.id.clone());
        let Some(i) = self.index_of_conn(conn) else {
            return;
        };
        let to = self.members[i].key.clone();
        if pause {
            if self.subscriptions.remove(&key) {
                self.paused.insert(key);
                out.push(command(
                    &to,
                    MediaAction::PauseLeg {
                        publication: publication.id.clone(),
                        paused: true,
                    },
                ));
                self.dynacast(&publication.id, out);
            }
            return;
        }
        let running = self.subscriptions.remove(&key);
        let paused = self.paused.remove(&key);
        self.video.forget(conn, Some(&publication.id));
        self.dynacast(&publication.id, out);
        if running || paused {
            self.offers_due = true;
            self.members[i]
                .receiving
                .remove_leg(&to, &publication.id, out);
        }
    }

    /// `conn` asks to receive publication `id`.
    pub(crate) fn subscribe(
        &mut self,
        conn: SessionId,
        id: &str,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let (publisher, publication) = self.find_publication(id)?;
        if publisher == conn {
            return refuse(ErrorCode::InvalidParam, "that is your own track");
        }
        self.start_subscription(conn, publication, out);
        Ok(())
    }

    /// `conn` stops receiving publication `id` (paused: `subscribe` resumes it).
    pub(crate) fn unsubscribe(
        &mut self,
        conn: SessionId,
        id: &str,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let (_, publication) = self.find_publication(id)?;
        self.end_subscription(conn, &publication, true, out);
        Ok(())
    }

    /// Where `conn`'s publication of `source` is.
    pub(super) fn own_publication(
        &self,
        conn: SessionId,
        source: TrackSource,
    ) -> Result<usize, Refusal> {
        self.publications
            .iter()
            .position(|(c, p)| *c == conn && p.source == source)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NoSuchTrack,
                    format!("no {} track is published", source.as_str()),
                )
            })
    }

    /// The publication named `id`, with its publisher.
    pub(super) fn publication_by_id(&self, id: &str) -> Option<(SessionId, Publication)> {
        self.publications.iter().find(|(_, p)| p.id == id).cloned()
    }

    /// The media key of the membership publishing `id`.
    fn publisher_key(&self, id: &str) -> Option<MediaKey> {
        let (conn, _) = self.publications.iter().find(|(_, p)| p.id == id)?;
        Some(self.member(*conn).key.clone())
    }

    /// The publication named `id`, with its publisher, or a refusal.
    pub(super) fn find_publication(&self, id: &str) -> Result<(SessionId, Publication), Refusal> {
        self.publication_by_id(id).ok_or_else(|| {
            Refusal::new(
                ErrorCode::NoSuchTrack,
                format!("`{id}` is not published here"),
            )
        })
    }

    /// `conn` stops publishing `source`.
    pub(crate) fn unpublish(
        &mut self,
        conn: SessionId,
        source: TrackSource,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        self.end_publication(conn, source, Reason::Quit, out)
    }

    /// `conn`'s publication of `source` ends, for `reason`.
    fn end_publication(
        &mut self,
        conn: SessionId,
        source: TrackSource,
        reason: Reason,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let i = self.member_index(conn)?;
        self.members[i].publishing.unpublished(source);
        let at = self.own_publication(conn, source)?;
        let (_, publication) = self.publications.remove(at);
        self.video.unpublished(&publication.id);
        // The flag first: whoever hears the track is gone sees the flag already down.
        self.set_flag(i, source, false, out);
        if source == TrackSource::Microphone {
            let user = self.members[i].participant.user_id.clone();
            self.speaker_silenced(&user, out);
        }
        self.announce_unpublished(&publication, reason, out);
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

    /// Ends everything of a member who left (its flags leave with it): its publications, what
    /// it received, and its peer connections. A negotiation of its still open is answered.
    pub(super) fn drop_media(&mut self, member: &Member, reason: Reason, out: &mut Vec<Emit>) {
        let conn = member.conn;
        self.speaker_silenced(&member.participant.user_id, out);
        self.subscriptions.retain(|(c, _)| *c != conn);
        self.paused.retain(|(c, _)| *c != conn);
        self.manual.remove(&conn);
        self.video.forget(conn, None);
        let videos: Vec<String> = self
            .publications
            .iter()
            .filter(|(c, p)| *c != conn && p.kind == MediaKind::Video)
            .map(|(_, p)| p.id.clone())
            .collect();
        for id in videos {
            self.dynacast(&id, out);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.publications)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.publications = kept;
        for (_, publication) in gone {
            self.video.unpublished(&publication.id);
            self.announce_unpublished(&publication, reason, out);
        }
        end_media(member, out);
    }

    fn announce_unpublished(
        &mut self,
        publication: &Publication,
        reason: Reason,
        out: &mut Vec<Emit>,
    ) {
        let seq = self.next_seq();
        let frame = ServerFrame::TrackUnpublished {
            room: self.id.clone(),
            seq,
            publication: publication.clone(),
            reason,
        };
        self.broadcast(self.conns(), frame, out);
        for conn in self.conns() {
            self.end_subscription(conn, publication, false, out);
        }
    }

    /// Microphone → audio flag, camera → video flag, an extra camera or screen → the
    /// participant's list of extra streams; announced when it changes.
    pub(super) fn set_flag(
        &mut self,
        i: usize,
        source: TrackSource,
        on: bool,
        out: &mut Vec<Emit>,
    ) {
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
            extra => {
                let had = p.streams.contains(&extra);
                if on && !had {
                    p.streams.push(extra);
                } else if !on && had {
                    p.streams.retain(|s| *s != extra);
                }
                changes.streams = on != had;
            }
        }
        if !changes.is_empty() {
            self.emit_updated(i, changes, out);
        }
    }
}

/// Asks the publisher (membership `publisher`) of `publication` for a key frame (video only).
pub(super) fn request_keyframe(
    publisher: &MediaKey,
    publication: &Publication,
    out: &mut Vec<Emit>,
) {
    if publication.kind == MediaKind::Video {
        out.push(command(
            publisher,
            MediaAction::RequestKeyframe {
                source: publication.source,
            },
        ));
    }
}

/// A departing member's membership is over: the ops of its open negotiations are answered
/// (they will not finish), and the shell closes its connections.
pub(super) fn end_media(member: &Member, out: &mut Vec<Emit>) {
    for op in [member.publishing.open_op(), member.receiving.open_op()]
        .into_iter()
        .flatten()
    {
        out.push(op_failed(
            member.conn,
            op,
            ErrorCode::NotInRoom,
            "left the room before the media negotiation finished",
        ));
    }
    out.push(command(&member.key, MediaAction::Teardown));
}

#[cfg(any(test, feature = "internals"))]
impl Room {
    /// A member's media id and the publication ids of its legs.
    pub(crate) fn legs_of(&self, conn: SessionId) -> (MediaId, std::collections::BTreeSet<String>) {
        let member = self.member(conn);
        (
            member.key.media,
            member.receiving.leg_ids().map(str::to_owned).collect(),
        )
    }

    /// The publications, in order, with their publishers' media ids.
    pub(crate) fn publications_by_media(&self) -> Vec<(MediaId, Publication)> {
        self.publications
            .iter()
            .map(|(conn, p)| (self.member(*conn).key.media, p.clone()))
            .collect()
    }

    /// The publications, in order.
    pub(crate) fn publication_list(&self) -> Vec<Publication> {
        self.publications.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Every subscription, running or paused, is a member receiving someone else's published
    /// track of this room, with a leg on the member's receiving connection; no track is both
    /// running and paused for one member; and every leg is a subscription.
    pub(crate) fn check_subscriptions(&self) {
        for (conn, id) in self.subscriptions.iter().chain(self.paused.iter()) {
            let i = self.index_of_conn(*conn).expect("a subscriber is a member");
            let (publisher, _) = self
                .publications
                .iter()
                .find(|(_, p)| &p.id == id)
                .expect("a subscription is to a published track of this room");
            assert_ne!(publisher, conn, "nobody receives its own track");
            assert!(
                self.members[i].receiving.leg_ids().any(|l| l == id),
                "a subscription has its leg"
            );
        }
        for member in &self.members {
            for id in member.receiving.leg_ids() {
                let key = (member.conn, id.to_owned());
                assert!(
                    self.subscriptions.contains(&key) || self.paused.contains(&key),
                    "a leg is a subscription"
                );
            }
        }
        assert!(self.subscriptions.is_disjoint(&self.paused));
    }
}

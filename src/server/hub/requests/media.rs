//! Media requests: publishing, muting, negotiating, subscribing, and what a member's peer
//! connections report.
//! Each handler checks what its request needs and carries it out; `mod.rs` dispatches.

use crate::model::{OperationId, Role, TrackSource, UserId};
use crate::protocol::{ErrorCode, IceCandidate, MediaConnection};

use super::super::Hub;
use super::super::io::{Emit, Refusal, SessionId, refuse};
use super::{MODERATE, PUBLISH, done};

impl Hub {
    /// `publish_offer`: see [`ClientFrame::PublishOffer`](crate::protocol::ClientFrame::PublishOffer).
    pub(super) fn publish_offer_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        sdp: String,
        source: Option<TrackSource>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, Some(PUBLISH))?;
        if self.rooms[&room].member(conn).participant.role == Role::Recorder {
            return refuse(ErrorCode::PermissionDenied, "a recorder publishes nothing");
        }
        self.with_room(
            &room,
            |r, out| r.publish_offer(conn, op, sdp, source, out),
            out,
        )
    }

    /// `mute`: see [`ClientFrame::Mute`](crate::protocol::ClientFrame::Mute). One's own track needs no grant; someone else's
    /// (`user_id`) is moderation.
    pub(super) fn mute_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        source: TrackSource,
        muted: bool,
        user_id: Option<UserId>,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        match user_id {
            None => {
                let room = self.room_of_member(conn, None)?;
                self.with_room(&room, |r, out| r.mute(conn, source, muted, out), out)?;
            }
            Some(user) => {
                let own = self.sessions.get(conn).is_some_and(|l| *l.user() == user);
                let room = self.room_of_member(conn, (!own).then_some(MODERATE))?;
                self.with_room(
                    &room,
                    |r, out| r.mute_member(conn, &user, source, muted, out),
                    out,
                )?;
            }
        }
        out.push(done(conn, op, None));
        Ok(())
    }

    /// `subscribe_answer`: see [`ClientFrame::SubscribeAnswer`](crate::protocol::ClientFrame::SubscribeAnswer).
    pub(super) fn subscribe_answer_request(
        &mut self,
        conn: SessionId,
        op: OperationId,
        negotiation: u64,
        sdp: String,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, None)?;
        self.with_room(
            &room,
            |r, out| r.subscribe_answer(conn, op, negotiation, sdp, out),
            out,
        )
    }

    /// `ice_candidate`: see [`ClientFrame::IceCandidate`](crate::protocol::ClientFrame::IceCandidate).
    pub(super) fn ice_candidate_request(
        &mut self,
        conn: SessionId,
        connection: MediaConnection,
        candidate: IceCandidate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let room = self.room_of_member(conn, None)?;
        self.with_room(
            &room,
            |r, out| r.remote_candidate(conn, connection, candidate, out),
            out,
        )
    }
}

//! The application's backend in the simulated world: it follows the webhook notices the core
//! emits, and sends server API requests. [`Backend::check`] asserts that what the notices told
//! it is exactly the server's state: every room that exists was started and not finished, its
//! members and tracks are the ones announced, and nothing was announced twice or out of turn.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{RoomId, ServerEvent, UserId};
use crate::server::hub::Hub;

/// What the backend knows of one room.
#[derive(Debug, Default)]
struct RoomView {
    members: BTreeSet<UserId>,
    tracks: BTreeSet<String>,
}

/// The backend's view, built from notices alone.
#[derive(Debug, Default)]
pub(crate) struct Backend {
    rooms: BTreeMap<RoomId, RoomView>,
}

impl Backend {
    /// Takes one notice, checking it makes sense where the backend stands.
    pub(crate) fn notice(&mut self, event: &ServerEvent) {
        let room = event.room().clone();
        match event {
            ServerEvent::RoomStarted { .. } => {
                let fresh = self.rooms.insert(room.clone(), RoomView::default());
                assert!(fresh.is_none(), "{room} started twice");
            }
            ServerEvent::RoomFinished { .. } => {
                let view = self.rooms.remove(&room);
                let view = view.unwrap_or_else(|| panic!("{room} finished, never started"));
                assert!(
                    view.members.is_empty() && view.tracks.is_empty(),
                    "{room} finished with members or tracks announced: {view:?}"
                );
            }
            ServerEvent::ParticipantJoined { participant, .. } => {
                let new = self.view(&room).members.insert(participant.user_id.clone());
                assert!(new, "{} joined {room} twice", participant.user_id);
            }
            ServerEvent::ParticipantLeft { participant, .. } => {
                let was = self.view(&room).members.remove(&participant.user_id);
                assert!(was, "{} left {room} without joining", participant.user_id);
            }
            ServerEvent::TrackPublished { publication, .. } => {
                let new = self.view(&room).tracks.insert(publication.id.clone());
                assert!(new, "{} published twice", publication.id);
            }
            ServerEvent::TrackUnpublished { publication, .. } => {
                let was = self.view(&room).tracks.remove(&publication.id);
                assert!(was, "{} unpublished, never published", publication.id);
            }
            _ => {
                self.view(&room);
            }
        }
    }

    fn view(&mut self, room: &RoomId) -> &mut RoomView {
        self.rooms
            .get_mut(room)
            .unwrap_or_else(|| panic!("an event of {room}, which is not started"))
    }

    /// The backend's view is the server's state.
    pub(crate) fn check(&self, hub: &Hub) {
        let ids = hub.room_ids();
        let known: BTreeSet<RoomId> = self.rooms.keys().cloned().collect();
        assert_eq!(ids, known, "the rooms the backend was told of");
        for (id, view) in &self.rooms {
            let room = hub.room(id).expect("listed above");
            let members: BTreeSet<UserId> =
                room.participants().into_iter().map(|p| p.user_id).collect();
            assert_eq!(view.members, members, "{id}'s members, as announced");
            let tracks: BTreeSet<String> =
                room.publication_list().into_iter().map(|p| p.id).collect();
            assert_eq!(view.tracks, tracks, "{id}'s tracks, as announced");
        }
    }
}

/// The server API request `kind` (0 to 7) names, about `room` and `user`.
pub(crate) fn request(room: &str, kind: u8, user: UserId) -> crate::server::hub::AdminRequest {
    use crate::server::hub::AdminRequest as R;
    let room = RoomId::from(room);
    match kind % 8 {
        0 => R::CreateRoom {
            room,
            options: crate::model::RoomOptions::default()
                .max_participants(2)
                .empty_timeout_secs(20),
        },
        1 => R::EndRoom { room },
        2 => R::RemoveParticipant {
            room,
            user,
            ban: None,
        },
        3 => R::RemoveParticipant {
            room,
            user,
            ban: Some(crate::model::BanTerm::room()),
        },
        4 => R::SendMessage {
            room,
            to: None,
            content_type: "text/plain".into(),
            content: "from the backend".into(),
        },
        5 => R::SendMessage {
            room,
            to: Some(user),
            content_type: "text/plain".into(),
            content: "to you".into(),
        },
        6 => R::SetProperties {
            room,
            custom: [("topic".to_owned(), Some("set by the backend".to_owned()))].into(),
        },
        _ => R::MuteTrack {
            room,
            user,
            source: crate::model::TrackSource::Microphone,
        },
    }
}

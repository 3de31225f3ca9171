//! The rooms, as one component ([`RoomBook`]): each room by id, the managed rooms waiting out
//! their empty timeout, and the counters that name new rooms and memberships. What happens in a
//! room is `room.rs` and its companions; when rooms start and end is the hub's (`mod.rs`).

use std::collections::{BTreeSet, HashMap};

use crate::model::RoomId;

use super::room::Room;
use super::{Millis, io::MediaId};

/// Every room alive, and what names the next ones.
#[derive(Default)]
pub(super) struct RoomBook {
    rooms: HashMap<RoomId, Room>,
    /// When managed rooms with no member are gone (entries of rooms that have members again,
    /// or are gone, are dropped when due).
    empty: BTreeSet<(Millis, RoomId)>,
    /// The last server-made room number.
    next_room: u64,
    /// The last membership's media id (see [`MediaId`]).
    next_media: MediaId,
}

impl RoomBook {
    pub(super) fn get(&self, id: &RoomId) -> Option<&Room> {
        self.rooms.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(id)
    }

    pub(super) fn contains(&self, id: &RoomId) -> bool {
        self.rooms.contains_key(id)
    }

    /// Rooms alive.
    pub(super) fn len(&self) -> usize {
        self.rooms.len()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    #[cfg(any(test, feature = "internals"))]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&RoomId, &Room)> {
        self.rooms.iter()
    }

    #[cfg(any(test, feature = "internals"))]
    pub(super) fn keys(&self) -> impl Iterator<Item = &RoomId> {
        self.rooms.keys()
    }

    /// Room `id`, made (with `make`) if it does not exist.
    pub(super) fn get_or_make(&mut self, id: &RoomId, make: impl FnOnce() -> Room) -> &mut Room {
        self.rooms.entry(id.clone()).or_insert_with(make)
    }

    /// Adds room `id` (made by the server API).
    pub(super) fn insert(&mut self, id: RoomId, room: Room) {
        self.rooms.insert(id, room);
    }

    /// Room `id` is gone.
    pub(super) fn remove(&mut self, id: &RoomId) -> Option<Room> {
        self.rooms.remove(id)
    }

    /// A fresh server-made room id: `prefix` and the next number no room has.
    pub(super) fn new_id(&mut self, prefix: &str) -> RoomId {
        loop {
            self.next_room += 1;
            let id = RoomId::from(format!("{prefix}{}", self.next_room));
            if !self.rooms.contains_key(&id) {
                break id;
            }
        }
    }

    /// The media id of a new membership (never used before in this run).
    pub(super) fn new_media_id(&mut self) -> MediaId {
        self.next_media += 1;
        self.next_media
    }

    /// Managed room `id` is empty: it is gone at `at` unless someone comes back.
    pub(super) fn gone_at(&mut self, at: Millis, id: &RoomId) {
        self.empty.insert((at, id.clone()));
    }

    /// Someone is in managed room `id` again: it no longer waits for its empty timeout.
    pub(super) fn occupied(&mut self, id: &RoomId) {
        if let Some(room) = self.rooms.get_mut(id) {
            if let Some(at) = room.empty_deadline() {
                self.empty.remove(&(at, id.clone()));
            }
            room.empty_since = None;
        }
    }

    /// When the first empty managed room is due to go.
    pub(super) fn next_empty_deadline(&self) -> Option<Millis> {
        self.empty.first().map(|(at, _)| *at)
    }

    /// The first empty managed room due by `now` (taken off the list), with its deadline.
    pub(super) fn pop_empty_due(&mut self, now: Millis) -> Option<(Millis, RoomId)> {
        let (at, _) = self.empty.first()?;
        if *at > now {
            return None;
        }
        self.empty.pop_first()
    }
}

impl std::ops::Index<&RoomId> for RoomBook {
    type Output = Room;

    /// Room `id`; it must exist.
    fn index(&self, id: &RoomId) -> &Room {
        &self.rooms[id]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::hub::speakers::SpeakerConfig;

    fn room(id: &RoomId) -> Room {
        Room::new(id.clone(), SpeakerConfig::default())
    }

    #[test]
    fn new_ids_skip_rooms_that_exist_and_media_ids_are_never_reused() {
        let mut book = RoomBook::default();
        let taken = RoomId::from("r2");
        book.insert(taken.clone(), room(&taken));
        assert_eq!(book.new_id("r"), RoomId::from("r1"));
        assert_eq!(book.new_id("r"), RoomId::from("r3"), "r2 is taken");
        let (a, b) = (book.new_media_id(), book.new_media_id());
        assert!(a < b);
        book.remove(&taken);
        assert!(book.new_media_id() > b);
    }

    #[test]
    fn empty_rooms_go_in_deadline_order_unless_occupied_again() {
        let mut book = RoomBook::default();
        let (a, b) = (RoomId::from("a"), RoomId::from("b"));
        for id in [&a, &b] {
            let mut r = room(id);
            r.managed = true;
            r.options = crate::model::RoomOptions::default().empty_timeout_secs(1);
            book.insert(id.clone(), r);
        }
        book.get_mut(&b).unwrap().empty_since = Some(0);
        book.gone_at(book[&b].empty_deadline().unwrap(), &b);
        book.get_mut(&a).unwrap().empty_since = Some(500);
        book.gone_at(book[&a].empty_deadline().unwrap(), &a);
        assert_eq!(book.next_empty_deadline(), Some(1_000));
        // Someone came back to b: it no longer waits.
        book.occupied(&b);
        assert_eq!(book.get(&b).unwrap().empty_since, None);
        assert_eq!(book.pop_empty_due(1_000), None);
        assert_eq!(book.pop_empty_due(1_500), Some((1_500, a)));
        assert_eq!(book.pop_empty_due(10_000), None);
    }
}

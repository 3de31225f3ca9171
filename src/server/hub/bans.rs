//! Bans: who a host kicked out of a room for good, and for how long. Kept by room id, apart
//! from the rooms themselves, so that a timed ban outlives the room emptying and stops the
//! banned user from making it again; a ban "for the room" ends with the room.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Ban, BanTerm, MAX_BAN_MS, RoomId, UserId, valid_id};
use crate::protocol::ErrorCode;

use super::io::{Millis, Refusal, refuse};

/// Bans one room may hold.
pub(super) const MAX_BANS_PER_ROOM: usize = 1024;

/// Bans one host may hold in force, in all rooms (so one user who may make rooms cannot fill
/// the server's limit alone).
pub(super) const MAX_BANS_PER_HOST: usize = 1024;

/// Every ban the server holds.
#[derive(Debug, Default)]
pub(super) struct BanBook {
    rooms: HashMap<RoomId, HashMap<UserId, Ban>>,
    /// Timed bans by their end.
    ends: BTreeSet<(Millis, RoomId, UserId)>,
    /// Bans in force by the host who made them.
    by_host: HashMap<UserId, usize>,
    total: usize,
}

impl BanBook {
    /// Whether `user` is banned from `room` at `now`.
    pub(super) fn is_banned(&self, room: &RoomId, user: &UserId, now: Millis) -> bool {
        self.rooms
            .get(room)
            .and_then(|bans| bans.get(user))
            .is_some_and(|ban| ban.until_ms.is_none_or(|until| until > now))
    }

    /// The refusal for a banned user, if `user` is banned from `room`.
    pub(super) fn check(&self, room: &RoomId, user: &UserId, now: Millis) -> Result<(), Refusal> {
        if self.is_banned(room, user, now) {
            return refuse(
                ErrorCode::Banned,
                format!("`{user}` is banned from room `{room}`"),
            );
        }
        Ok(())
    }

    /// Checks that `by` may ban `user` from `room` for `term` (the ids, the term, the limits),
    /// so a kick with a ban is refused before anything changes.
    pub(super) fn check_room_for(
        &self,
        room: &RoomId,
        user: &UserId,
        term: BanTerm,
        by: &UserId,
        max_total: usize,
    ) -> Result<(), Refusal> {
        if !valid_id(user.as_str()) {
            return refuse(ErrorCode::InvalidParam, "user_id breaks the id rules");
        }
        if term.for_ms.is_some_and(|ms| ms == 0 || ms > MAX_BAN_MS) {
            return refuse(
                ErrorCode::InvalidParam,
                format!("ban.for_ms must be 1 to {MAX_BAN_MS} (a year)"),
            );
        }
        let bans = self.rooms.get(room);
        if let Some(old) = bans.and_then(|b| b.get(user)) {
            // A replacement: the counts change only if another host made the old ban.
            if &old.by == by || self.by_host.get(by).copied().unwrap_or(0) < MAX_BANS_PER_HOST {
                return Ok(());
            }
        }
        if bans.map_or(0, HashMap::len) >= MAX_BANS_PER_ROOM {
            return refuse(
                ErrorCode::TooManyBans,
                format!("a room holds at most {MAX_BANS_PER_ROOM} bans"),
            );
        }
        if self.by_host.get(by).copied().unwrap_or(0) >= MAX_BANS_PER_HOST {
            return refuse(
                ErrorCode::TooManyBans,
                format!("a host holds at most {MAX_BANS_PER_HOST} bans"),
            );
        }
        if self.total >= max_total {
            return refuse(
                ErrorCode::TooManyBans,
                format!("the server holds at most {max_total} bans"),
            );
        }
        Ok(())
    }

    /// Bans `user` from `room` (checked with [`BanBook::check_room_for`] first); a second ban
    /// of the same user replaces the first.
    pub(super) fn add(
        &mut self,
        room: &RoomId,
        user: &UserId,
        term: BanTerm,
        by: &UserId,
        now: Millis,
    ) {
        self.remove(room, user);
        let until_ms = term.for_ms.map(|ms| now.saturating_add(ms));
        if let Some(until) = until_ms {
            self.ends.insert((until, room.clone(), user.clone()));
        }
        self.rooms.entry(room.clone()).or_default().insert(
            user.clone(),
            Ban {
                user_id: user.clone(),
                until_ms,
                by: by.clone(),
            },
        );
        *self.by_host.entry(by.clone()).or_default() += 1;
        self.total += 1;
    }

    /// Lifts a ban; false if there was none.
    pub(super) fn remove(&mut self, room: &RoomId, user: &UserId) -> bool {
        let Some(bans) = self.rooms.get_mut(room) else {
            return false;
        };
        let Some(ban) = bans.remove(user) else {
            return false;
        };
        if bans.is_empty() {
            self.rooms.remove(room);
        }
        if let Some(until) = ban.until_ms {
            self.ends.remove(&(until, room.clone(), user.clone()));
        }
        self.forget_one(&ban.by);
        true
    }

    /// One ban by `by` is over.
    fn forget_one(&mut self, by: &UserId) {
        if let Some(count) = self.by_host.get_mut(by) {
            *count -= 1;
            if *count == 0 {
                self.by_host.remove(by);
            }
        }
        self.total -= 1;
    }

    /// The room's bans in force at `now`, by user id.
    pub(super) fn list(&self, room: &RoomId, now: Millis) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|b| b.values())
            .filter(|b| b.until_ms.is_none_or(|until| until > now))
            .cloned()
            .collect();
        bans.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        bans
    }

    /// The room ended: its bans "for the room" end with it.
    pub(super) fn room_ended(&mut self, room: &RoomId) {
        let Some(bans) = self.rooms.get_mut(room) else {
            return;
        };
        let mut ended = Vec::new();
        bans.retain(|_, ban| {
            let timed = ban.until_ms.is_some();
            if !timed {
                ended.push(ban.by.clone());
            }
            timed
        });
        if bans.is_empty() {
            self.rooms.remove(room);
        }
        for by in ended {
            self.forget_one(&by);
        }
    }

    /// When the next timed ban ends.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.ends.first().map(|(at, ..)| *at)
    }

    /// Forgets the bans that ended by `now`.
    pub(super) fn expire(&mut self, now: Millis) {
        while let Some((at, room, user)) = self.ends.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&room, &user);
        }
    }

    /// Bans held in all (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (RoomId, UserId, UserId) {
        ("r".into(), "mallory".into(), "hana".into())
    }

    #[test]
    fn a_timed_ban_outlives_the_room_and_ends_on_time() {
        let (room, user, host) = ids();
        let mut book = BanBook::default();
        let term = BanTerm::lasting(std::time::Duration::from_secs(10));
        book.check_room_for(&room, &user, term, &host, 10).unwrap();
        book.add(&room, &user, term, &host, 1_000);
        book.room_ended(&room);
        assert!(book.is_banned(&room, &user, 10_999));
        assert_eq!(book.next_deadline(), Some(11_000));
        book.expire(11_000);
        assert!(!book.is_banned(&room, &user, 11_000));
        assert_eq!(book.len(), 0);
        assert_eq!(book.next_deadline(), None);
    }

    #[test]
    fn a_room_ban_ends_with_the_room() {
        let (room, user, host) = ids();
        let mut book = BanBook::default();
        book.add(&room, &user, BanTerm::room(), &host, 0);
        assert_eq!(book.list(&room, 5).len(), 1);
        book.room_ended(&room);
        assert!(!book.is_banned(&room, &user, 5));
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn one_host_cannot_fill_the_server_alone() {
        let (room, _, host) = ids();
        let mut book = BanBook::default();
        for i in 0..MAX_BANS_PER_HOST {
            let user: UserId = format!("u{i}").into();
            let room: RoomId = format!("r{}", i / MAX_BANS_PER_ROOM.min(512)).into();
            book.check_room_for(&room, &user, BanTerm::room(), &host, usize::MAX)
                .unwrap();
            book.add(&room, &user, BanTerm::room(), &host, 0);
        }
        let refused = book
            .check_room_for(&room, &"late".into(), BanTerm::room(), &host, usize::MAX)
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManyBans);
        // Another host still may; and once rooms end, the host's count goes down.
        book.check_room_for(
            &room,
            &"late".into(),
            BanTerm::room(),
            &"other".into(),
            usize::MAX,
        )
        .unwrap();
        book.room_ended(&"r0".into());
        book.check_room_for(&room, &"late".into(), BanTerm::room(), &host, usize::MAX)
            .unwrap();
    }

    #[test]
    fn limits_and_terms_are_checked_before_anything_changes() {
        let (room, user, host) = ids();
        let mut book = BanBook::default();
        let zero = BanTerm { for_ms: Some(0) };
        assert_eq!(
            book.check_room_for(&room, &user, zero, &host, 10)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParam
        );
        book.add(&room, &"a".into(), BanTerm::room(), &host, 0);
        assert_eq!(
            book.check_room_for(&room, &user, BanTerm::room(), &host, 1)
                .unwrap_err()
                .code,
            ErrorCode::TooManyBans
        );
        // Banning someone banned already replaces the ban: no new entry.
        book.check_room_for(&room, &"a".into(), BanTerm::room(), &host, 1)
            .unwrap();
        let bad: UserId = "../x".into();
        assert_eq!(
            book.check_room_for(&room, &bad, BanTerm::room(), &host, 10)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParam
        );
        assert!(book.remove(&room, &"a".into()));
        assert!(!book.remove(&room, &"a".into()));
    }
}

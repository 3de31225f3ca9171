//! The sessions and their connections, as one component ([`SessionBook`]): which session each
//! connection carries, which sessions each user has, and which lost sessions wait for a resume
//! until when. The flows that use it (login, resume, loss, routing) are `sessions.rs`.

use std::collections::{BTreeSet, HashMap};

use crate::auth::Identity;
use crate::model::{Participant, Role, RoomId, UserId};
use crate::protocol::ErrorCode;

use super::outbox::Outbox;
use super::{ConnId, Millis, Refusal, SessionId, refuse};

/// A logged-in session: it outlives its connection for the grace period (see `sessions.rs`).
pub(super) struct Login {
    pub(super) identity: Identity,
    pub(super) room: Option<RoomId>,
    /// The connection carrying the session now; `None` while it is lost (the book keeps it
    /// in step with its index of connections).
    transport: Option<ConnId>,
    /// When the connection was lost: the grace period runs from here.
    lost_at: Option<Millis>,
    /// What the session was sent and has not acknowledged, and its recent requests.
    pub(super) outbox: Outbox,
}

impl Login {
    pub(super) fn user(&self) -> &UserId {
        &self.identity.user
    }

    /// The connection carrying the session now; `None` while it is lost.
    pub(super) fn transport(&self) -> Option<ConnId> {
        self.transport
    }

    /// When its connection was lost, while it is.
    pub(super) fn lost_at(&self) -> Option<Millis> {
        self.lost_at
    }

    /// Refuses a request whose grant the token lacks.
    pub(super) fn require(&self, granted: bool, what: &str) -> Result<(), Refusal> {
        if granted {
            Ok(())
        } else {
            refuse(
                ErrorCode::MissingGrant,
                format!("the access token does not allow {what}"),
            )
        }
    }

    /// Refuses a room the token does not allow.
    pub(super) fn may_enter(&self, room: Option<&RoomId>) -> Result<(), Refusal> {
        let allowed = match room {
            Some(room) => self.identity.may_enter(room),
            None => self.identity.rooms.is_none(),
        };
        if allowed {
            Ok(())
        } else {
            refuse(
                ErrorCode::WrongRoom,
                match room {
                    Some(room) => format!("the access token does not allow room `{room}`"),
                    None => "the access token allows named rooms only".to_owned(),
                },
            )
        }
    }

    /// The participant this login joins a room as (a guest: `Hub::join` decides the role, from
    /// the token's claims for that room and the room's first member).
    pub(super) fn participant(&self, display_name: Option<String>) -> Participant {
        Participant {
            user_id: self.identity.user.clone(),
            display_name: display_name.unwrap_or_else(|| self.identity.name.clone()),
            role: Role::Guest,
            audio: false,
            video: false,
            state: String::new(),
            connection: Default::default(),
            volume: Default::default(),
            net: Default::default(),
            streams: Vec::new(),
        }
    }
}

/// Every session, indexed by the connection carrying it and by its user. A session's id is the
/// id of the connection that said `hello`.
pub(super) struct SessionBook {
    logins: HashMap<SessionId, Login>,
    /// Each carrying connection's session.
    transports: HashMap<ConnId, SessionId>,
    /// Sessions whose connection is lost, by the end of their grace period.
    lost: BTreeSet<(Millis, SessionId)>,
    /// Each user's sessions, in login order.
    users: HashMap<UserId, Vec<SessionId>>,
    /// How long a lost session waits for its resume.
    grace_ms: Millis,
}

impl SessionBook {
    /// An empty book whose lost sessions wait `grace_ms` for a resume.
    pub(super) fn new(grace_ms: Millis) -> SessionBook {
        SessionBook {
            logins: HashMap::new(),
            transports: HashMap::new(),
            lost: BTreeSet::new(),
            users: HashMap::new(),
            grace_ms,
        }
    }

    pub(super) fn get(&self, session: SessionId) -> Option<&Login> {
        self.logins.get(&session)
    }

    pub(super) fn get_mut(&mut self, session: SessionId) -> Option<&mut Login> {
        self.logins.get_mut(&session)
    }

    pub(super) fn contains(&self, session: SessionId) -> bool {
        self.logins.contains_key(&session)
    }

    /// The session connection `conn` carries.
    pub(super) fn carried_by(&self, conn: ConnId) -> Option<SessionId> {
        self.transports.get(&conn).copied()
    }

    /// Whether connection `conn` carries a session.
    pub(super) fn carries(&self, conn: ConnId) -> bool {
        self.transports.contains_key(&conn)
    }

    /// `user`'s sessions, in login order.
    pub(super) fn of_user(&self, user: &UserId) -> &[SessionId] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// Sessions, lost sessions, and connections carrying one.
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        (self.logins.len(), self.lost.len(), self.transports.len())
    }

    /// When the first lost session's grace period ends.
    pub(super) fn next_grace_end(&self) -> Option<Millis> {
        self.lost.first().map(|(at, _)| *at)
    }

    /// Every session's id.
    pub(super) fn ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.logins.keys().copied()
    }

    /// Every session, for the benchmarks' bulk acknowledgement.
    #[cfg(feature = "internals")]
    pub(super) fn logins_mut(&mut self) -> impl Iterator<Item = &mut Login> {
        self.logins.values_mut()
    }

    /// A session logs in on connection `conn`; its id is the connection's.
    pub(super) fn open(&mut self, conn: ConnId, identity: Identity) -> SessionId {
        let session = SessionId(conn);
        self.users
            .entry(identity.user.clone())
            .or_default()
            .push(session);
        self.logins.insert(
            session,
            Login {
                identity,
                room: None,
                transport: Some(conn),
                lost_at: None,
                outbox: Outbox::default(),
            },
        );
        self.transports.insert(conn, session);
        session
    }

    /// Session `session` ends: it is taken out of every index, and returned.
    pub(super) fn close(&mut self, session: SessionId) -> Option<Login> {
        let login = self.logins.remove(&session)?;
        if let Some(transport) = login.transport {
            self.transports.remove(&transport);
        }
        if let Some(at) = login.lost_at {
            self.lost.remove(&(at + self.grace_ms, session));
        }
        if let Some(sessions) = self.users.get_mut(login.user()) {
            sessions.retain(|s| *s != session);
            if sessions.is_empty() {
                self.users.remove(login.user());
            }
        }
        Some(login)
    }

    /// Connection `conn` takes session `session` over (a resume); returns the connection that
    /// carried it until now, if the server still held one (a ghost, to be closed).
    pub(super) fn reconnect(&mut self, session: SessionId, conn: ConnId) -> Option<ConnId> {
        let login = self.logins.get_mut(&session)?;
        let old = login.transport.replace(conn);
        if let Some(old) = old {
            self.transports.remove(&old);
        }
        if let Some(at) = login.lost_at.take() {
            self.lost.remove(&(at + self.grace_ms, session));
        }
        self.transports.insert(conn, session);
        old
    }

    /// Connection `conn` is gone: it carries nothing any more. Returns the session it was
    /// carrying, if it was that session's connection.
    pub(super) fn disconnect(&mut self, conn: ConnId) -> Option<SessionId> {
        let session = self.transports.remove(&conn)?;
        let login = self.logins.get(&session)?;
        (login.transport == Some(conn)).then_some(session)
    }

    /// Session `session`, whose connection was lost at `now`, waits for a resume until its
    /// grace period ends.
    pub(super) fn hold(&mut self, session: SessionId, now: Millis) {
        if let Some(login) = self.logins.get_mut(&session) {
            login.transport = None;
            login.lost_at = Some(now);
            self.lost.insert((now + self.grace_ms, session));
        }
    }

    /// The first lost session whose grace period has ended by `now`, taken off the lost list.
    pub(super) fn pop_expired(&mut self, now: Millis) -> Option<SessionId> {
        let &(at, session) = self.lost.first()?;
        if at > now {
            return None;
        }
        self.lost.pop_first();
        Some(session)
    }
}

impl std::ops::Index<&SessionId> for SessionBook {
    type Output = Login;

    /// Session `session`'s login; it must exist.
    fn index(&self, session: &SessionId) -> &Login {
        &self.logins[session]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::auth::Grants;

    const GRACE: Millis = 1_000;

    fn identity(user: u8) -> Identity {
        Identity {
            user: UserId::from(format!("u{user}")),
            name: format!("u{user}"),
            rooms: None,
            role: None,
            hosts: Vec::new(),
            grants: Grants::none(),
            jti: None,
            issued_at: 0,
            expires_at: u64::MAX,
            record: None,
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// A new connection logs in as this user.
        Open(u8),
        /// The n-th session ends.
        Close(usize),
        /// A new connection resumes the n-th session.
        Reconnect(usize),
        /// The n-th connection ever made is gone (orderly or not: `hold` when it carried one).
        Disconnect(usize),
        /// Time passes; expired sessions end.
        Wait(Millis),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3u8).prop_map(Step::Open),
            (0..8usize).prop_map(Step::Close),
            (0..8usize).prop_map(Step::Reconnect),
            (0..12usize).prop_map(Step::Disconnect),
            (0..1_500u64).prop_map(Step::Wait),
        ]
    }

    /// Every index agrees with the logins.
    fn check(book: &SessionBook, now: Millis) {
        for (conn, session) in &book.transports {
            assert_eq!(
                book.logins[session].transport,
                Some(*conn),
                "{conn} carries {session}"
            );
        }
        let mut lost = 0;
        for (session, login) in &book.logins {
            match (login.transport, login.lost_at) {
                (Some(conn), None) => assert_eq!(book.carried_by(conn), Some(*session)),
                (None, Some(at)) => {
                    assert!(book.lost.contains(&(at + GRACE, *session)));
                    assert!(at + GRACE > now, "an expired session was not ended");
                    lost += 1;
                }
                other => panic!("session {session}: {other:?}"),
            }
            assert!(book.of_user(login.user()).contains(session));
        }
        assert_eq!(book.lost.len(), lost);
        let indexed: usize = book.users.values().map(Vec::len).sum();
        assert_eq!(indexed, book.logins.len());
        assert!(book.users.values().all(|s| !s.is_empty()));
    }

    proptest! {
        #[test]
        fn the_indexes_agree_whatever_happens(steps in proptest::collection::vec(step(), 1..80)) {
            let mut book = SessionBook::new(GRACE);
            let mut now = 0;
            let mut next_conn: ConnId = 0;
            let mut sessions: Vec<SessionId> = Vec::new();
            for step in steps {
                match step {
                    Step::Open(user) => {
                        next_conn += 1;
                        sessions.push(book.open(next_conn, identity(user)));
                    }
                    Step::Close(n) => {
                        if let Some(&session) = sessions.get(n) {
                            let was = book.contains(session);
                            prop_assert_eq!(book.close(session).is_some(), was);
                            prop_assert!(!book.contains(session));
                        }
                    }
                    Step::Reconnect(n) => {
                        if let Some(&session) = sessions.get(n) && book.contains(session) {
                            let before = book.get(session).and_then(Login::transport);
                            next_conn += 1;
                            let old = book.reconnect(session, next_conn);
                            prop_assert_eq!(old, before);
                            prop_assert_eq!(book.carried_by(next_conn), Some(session));
                            if let Some(old) = old {
                                prop_assert!(!book.carries(old));
                            }
                        }
                    }
                    Step::Disconnect(n) => {
                        let conn = n as ConnId + 1;
                        if let Some(session) = book.disconnect(conn) {
                            book.hold(session, now);
                        }
                        prop_assert!(!book.carries(conn));
                    }
                    Step::Wait(ms) => {
                        now += ms;
                        while let Some(session) = book.pop_expired(now) {
                            prop_assert!(book.close(session).is_some());
                        }
                    }
                }
                check(&book, now);
            }
        }
    }
}

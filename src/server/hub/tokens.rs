//! Token lifetimes and revocations: when each session's token expires (the session ends then
//! unless it was refreshed), and which tokens the server refuses though their signature is good.
//! A revocation is kept only as long as a token it covers could still be valid: the server
//! refuses tokens valid for longer than its maximum lifetime, so after that long every token a
//! revocation covers has expired anyway.

use std::collections::{BTreeSet, HashMap};

use crate::auth::{Identity, MAX_TOKEN_ID_LEN, Revocation, valid_token_id};
use crate::model::{OperationId, Reason, UserId, valid_id};
use crate::protocol::{ErrorCode, ServerFrame};

use super::io::{Millis, Refusal, SessionId, refuse};
use super::{Emit, Hub};

/// Revocations the server keeps at most (each is forgotten after the maximum token lifetime).
pub(super) const MAX_REVOCATIONS: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct TokenBook {
    /// Sessions by when their token expires.
    expiries: BTreeSet<(Millis, SessionId)>,
    /// Revoked token ids, with when they may be forgotten.
    jtis: HashMap<String, Millis>,
    /// Per user: tokens issued before this (seconds) are refused; with when it may be forgotten.
    users: HashMap<UserId, (u64, Millis)>,
    /// Revocations by when they may be forgotten.
    forget: BTreeSet<(Millis, Revocation)>,
}

impl TokenBook {
    /// Refuses a revoked token.
    pub(super) fn check(&self, identity: &Identity) -> Result<(), Refusal> {
        let by_id = identity
            .jti
            .as_ref()
            .is_some_and(|jti| self.jtis.contains_key(jti));
        let by_user = self
            .users
            .get(&identity.user)
            .is_some_and(|(before, _)| identity.issued_at < *before);
        if by_id || by_user {
            return refuse(ErrorCode::TokenRevoked, "the access token was revoked");
        }
        Ok(())
    }

    /// Records a revocation at `now`. A token it covers is valid at most `keep` ms after it was
    /// issued, so the revocation is kept until then: `keep` from now (a token id: only tokens
    /// issued by now carry it), or from `issued_before` if that is later.
    pub(super) fn revoke(
        &mut self,
        revocation: Revocation,
        now: Millis,
        keep: Millis,
    ) -> Result<(), Refusal> {
        let known = match &revocation {
            Revocation::Token { jti } => self.jtis.contains_key(jti),
            Revocation::User { user_id, .. } => self.users.contains_key(user_id),
        };
        if !known && self.forget.len() >= MAX_REVOCATIONS {
            return refuse(
                ErrorCode::TooManyRevocations,
                format!("the server holds at most {MAX_REVOCATIONS} revocations"),
            );
        }
        match revocation {
            Revocation::Token { jti } => {
                if !valid_token_id(&jti) {
                    return refuse(
                        ErrorCode::InvalidParam,
                        format!("jti must be 1 to {MAX_TOKEN_ID_LEN} bytes"),
                    );
                }
                let until = now.saturating_add(keep);
                let revocation = Revocation::Token { jti: jti.clone() };
                if let Some(old) = self.jtis.insert(jti, until) {
                    self.forget.remove(&(old, revocation.clone()));
                }
                self.forget.insert((until, revocation));
            }
            Revocation::User {
                user_id,
                issued_before,
            } => {
                if !valid_id(user_id.as_str()) {
                    return refuse(ErrorCode::InvalidParam, "user_id breaks the id rules");
                }
                let mut before = issued_before;
                if let Some((old_before, old_until)) = self.users.remove(&user_id) {
                    self.forget.remove(&(
                        old_until,
                        Revocation::User {
                            user_id: user_id.clone(),
                            issued_before: old_before,
                        },
                    ));
                    before = before.max(old_before);
                }
                let until = now.max(before.saturating_mul(1000)).saturating_add(keep);
                self.users.insert(user_id.clone(), (before, until));
                self.forget.insert((
                    until,
                    Revocation::User {
                        user_id,
                        issued_before: before,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Session `session`'s token expires at `at` (replacing what it had).
    pub(super) fn session_expires(&mut self, session: SessionId, old: Option<Millis>, at: Millis) {
        if let Some(old) = old {
            self.expiries.remove(&(old, session));
        }
        self.expiries.insert((at, session));
    }

    /// Session `session` (whose token expired at `at`) is over.
    pub(super) fn session_ended(&mut self, session: SessionId, at: Millis) {
        self.expiries.remove(&(at, session));
    }

    /// The sessions whose token expired by `now`, taken out of the book.
    pub(super) fn expired(&mut self, now: Millis) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while let Some(&(at, session)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            expired.push(session);
        }
        expired
    }

    /// Forgets the revocations no valid token can be covered by any more.
    pub(super) fn forget_old(&mut self, now: Millis) {
        while let Some((at, revocation)) = self.forget.first().cloned() {
            if at > now {
                break;
            }
            self.forget.pop_first();
            match revocation {
                Revocation::Token { jti } => {
                    self.jtis.remove(&jti);
                }
                Revocation::User { user_id, .. } => {
                    self.users.remove(&user_id);
                }
            }
        }
    }

    /// When the book next needs the clock: a token expiring or a revocation to forget.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let expiry = self.expiries.first().map(|(at, _)| *at);
        let forget = self.forget.first().map(|(at, _)| *at);
        expiry.into_iter().chain(forget).min()
    }
}

impl Hub {
    /// Ends session `session` for good: its connection (if it has one) gets a goodbye with
    /// `reason` and no reconnecting; its room sees it leave with `reason`.
    pub(super) fn close_session(
        &mut self,
        session: SessionId,
        reason: Reason,
        out: &mut Vec<Emit>,
    ) {
        if let Some(transport) = self.sessions.get(session).and_then(|l| l.transport()) {
            self.end_session(session, reason, out);
            out.push(Emit::Close {
                conn: transport,
                reason,
            });
        } else {
            self.end_session(session, reason, out);
        }
    }

    /// Ends the sessions whose token expired (they were not refreshed in time).
    pub(super) fn expire_tokens(&mut self, out: &mut Vec<Emit>) {
        for session in self.tokens.expired(self.now) {
            self.close_session(session, Reason::TokenExpired, out);
        }
        self.tokens.forget_old(self.now);
    }

    /// Refuses the tokens `revocation` covers from now on, and ends the sessions logged in with
    /// one. Returns how many sessions ended.
    pub(super) fn revoke(
        &mut self,
        revocation: Revocation,
        out: &mut Vec<Emit>,
    ) -> Result<usize, Refusal> {
        self.tokens.revoke(
            revocation.clone(),
            self.now,
            self.config.max_token_lifetime_ms,
        )?;
        let mut ended: Vec<SessionId> = self
            .sessions
            .ids()
            .filter(|session| revocation.covers(&self.sessions[session].identity))
            .collect();
        ended.sort_unstable();
        for session in &ended {
            self.close_session(*session, Reason::TokenRevoked, out);
        }
        Ok(ended.len())
    }

    /// `refresh`: session `session` goes on with a new token of its user, which decides its
    /// expiry and rights from now on.
    pub(super) fn refresh(
        &mut self,
        session: SessionId,
        op: OperationId,
        token: &str,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let identity = self.verify_token(token)?;
        let expires_at = identity.expires_at;
        self.replace_identity(session, identity)?;
        out.push(Emit::Send {
            to: session,
            frame: ServerFrame::Refreshed { op, expires_at },
        });
        Ok(())
    }

    /// Session `session` goes on with `identity`, a newer token of its user (`refresh`,
    /// `resume`): its expiry and rights hold from now on. It must allow the room the session
    /// is in. Changes nothing when refused.
    pub(super) fn replace_identity(
        &mut self,
        session: SessionId,
        identity: Identity,
    ) -> Result<(), Refusal> {
        let login = self
            .sessions
            .get_mut(session)
            .ok_or_else(|| Refusal::new(ErrorCode::NotLoggedIn, "send hello first"))?;
        if identity.user != login.identity.user {
            return refuse(
                ErrorCode::WrongUser,
                format!(
                    "the token is for `{}`, the session is `{}`'s",
                    identity.user, login.identity.user
                ),
            );
        }
        if let Some(room) = &login.room
            && !identity.may_enter(room)
        {
            return refuse(
                ErrorCode::WrongRoom,
                format!("the access token does not allow room `{room}`"),
            );
        }
        self.tokens.session_expires(
            session,
            Some(login.identity.expires_at_ms()),
            identity.expires_at_ms(),
        );
        login.identity = identity;
        Ok(())
    }

    /// Checks a token: signature, time window, lifetime, claims, revocation.
    pub(super) fn verify_token(&self, token: &str) -> Result<Identity, Refusal> {
        let identity = crate::auth::verify(
            token,
            &self.config.secret,
            self.now / 1000,
            self.config.max_token_lifetime_ms / 1000,
        )?;
        self.tokens.check(&identity)?;
        Ok(identity)
    }
}
